"""Every executor, in its awaitable form here and its blocking form in tests/_sync."""

from __future__ import annotations

import pytest

from flowweaver import TaskStatus, Workflow, WorkflowStatus, task
from flowweaver.aio import AsyncExecutor, SequentialExecutor, ThreadedExecutor

EXECUTORS = [SequentialExecutor, ThreadedExecutor, AsyncExecutor]


@pytest.fixture(params=EXECUTORS, ids=lambda cls: cls.__name__)
def executor_cls(request: pytest.FixtureRequest) -> type:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_upstream_result_is_passed_by_parameter_name(executor_cls: type) -> None:
    @task()
    def fetch_data() -> dict[str, object]:
        return {"user_id": 1, "name": "Alice"}

    @task()
    async def process_data(fetch_data: dict[str, str] | None = None) -> dict[str, str]:
        assert fetch_data is not None
        return {"processed": fetch_data["name"].upper()}

    wf = Workflow("example")
    wf.add_task(fetch_data)
    wf.add_task(process_data, depends_on=["fetch_data"])
    await executor_cls().execute(wf)
    t = wf.get_task("process_data")
    assert t is not None
    assert t.result == {"processed": "ALICE"}
    assert t.status is TaskStatus.COMPLETED
    assert wf.status is WorkflowStatus.COMPLETED
