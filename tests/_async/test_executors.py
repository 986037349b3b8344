"""Every executor runs a workflow and feeds upstream results to downstream functions.

Written once in awaitable form (``flowweaver.aio``); ``tests/_sync/test_executors.py`` is
its blocking twin. Task functions that must stay ``async def`` in both forms come from
``tests/helpers.py``.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import pytest

from flowweaver import (
    BaseExecutor,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
    WorkflowValidationError,
    task,
)
from tests.helpers import (
    async_collect,
    async_raising,
    async_returning,
    async_upper,
    final_statuses,
)


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


@pytest.mark.anyio
async def test_execute_returns_none(executor_cls: type) -> None:
    wf = Workflow("returns")
    wf.add_task(Task("a", lambda: 1))
    assert await executor_cls().execute(wf) is None


@pytest.mark.anyio
async def test_async_task_function_is_awaited_under_every_executor(executor_cls: type) -> None:
    wf = Workflow("awaited")
    wf.add_task(Task("fetch_data", async_returning({"name": "bob"})))
    wf.add_task(Task("process", async_upper), depends_on=["fetch_data"])
    await executor_cls().execute(wf)
    assert wf.get_task("fetch_data").result == {"name": "bob"}  # type: ignore[union-attr]
    assert wf.get_task("process").result == {"processed": "BOB"}  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no_timeout", "timeout"])
async def test_coroutine_returned_by_a_sync_callable_is_awaited(
    executor_cls: type, timeout: float | None
) -> None:
    # a lambda wrapping an async function returns a coroutine object; it must be awaited,
    # never stored as the result
    make = async_returning(7)
    wf = Workflow("lambda_coroutine")
    wf.add_task(Task("a", lambda: make(), timeout=timeout))
    await executor_cls().execute(wf)
    assert wf.get_task("a").result == 7  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_async_partial_and_async_callable_object_are_awaited(executor_cls: type) -> None:
    class Service:
        async def __call__(self) -> str:
            return "object"

    async def scaled(x: int, factor: int) -> int:
        return x * factor

    wf = Workflow("async_callables")
    wf.add_task(Task("obj", async_collect))
    wf.add_task(Task("partial", functools.partial(async_collect, extra=1)))
    wf.add_task(Task("x", lambda: 3))
    wf.add_task(Task("scaled", functools.partial(scaled, factor=5)), depends_on=["x"])
    wf.add_task(Task("service", Service()))
    await executor_cls().execute(wf)
    assert wf.get_task("obj").result == {}  # type: ignore[union-attr]
    assert wf.get_task("partial").result == {"extra": 1}  # type: ignore[union-attr]
    assert wf.get_task("scaled").result == 15  # type: ignore[union-attr]
    assert wf.get_task("service").result == "object"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_upstream_results_not_matching_a_parameter_are_not_passed(
    executor_cls: type,
) -> None:
    wf = Workflow("unmatched")
    wf.add_task(Task("step_1", lambda: 10))
    wf.add_task(Task("step_2", lambda: 20), depends_on=["step_1"])

    def only_b(b: int) -> int:
        return b + 1

    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda: 2))
    wf.add_task(Task("c", only_b), depends_on=["a", "b"])
    await executor_cls().execute(wf)
    assert wf.get_task("step_2").result == 20  # type: ignore[union-attr]
    assert wf.get_task("c").result == 3  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_var_keyword_function_receives_every_upstream_result(executor_cls: type) -> None:
    def collect(**upstream: Any) -> dict[str, Any]:
        return dict(upstream)

    wf = Workflow("kwargs")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", async_returning(2)))
    wf.add_task(Task("sync_collect", collect), depends_on=["a", "b"])
    wf.add_task(Task("async_collect", async_collect), depends_on=["a", "b"])
    await executor_cls().execute(wf)
    assert wf.get_task("sync_collect").result == {"a": 1, "b": 2}  # type: ignore[union-attr]
    assert wf.get_task("async_collect").result == {"a": 1, "b": 2}  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_parameters_without_upstream_keep_their_defaults(executor_cls: type) -> None:
    def f(a: int = 0, other: str = "default", *, kw_only: int = 5) -> tuple[int, str, int]:
        return a, other, kw_only

    wf = Workflow("defaults")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("kw_only", lambda: 9))
    wf.add_task(Task("f", f), depends_on=["a", "kw_only"])
    await executor_cls().execute(wf)
    # keyword-only parameters receive upstream results too
    assert wf.get_task("f").result == (1, "default", 9)  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_diamond_passes_each_upstream_result_once(executor_cls: type) -> None:
    calls: list[str] = []

    def source() -> int:
        calls.append("source")
        return 2

    def left(source: int) -> int:
        return source * 10

    def right(source: int) -> int:
        return source + 1

    def join(left: int, right: int, source: int) -> tuple[int, int, int]:
        return left, right, source

    wf = Workflow("diamond")
    wf.add_task(Task("join", join), depends_on=["left", "right", "source"])  # added first
    wf.add_task(Task("left", left), depends_on=["source"])
    wf.add_task(Task("right", right), depends_on=["source"])
    wf.add_task(Task("source", source))
    await executor_cls().execute(wf)
    assert wf.get_task("join").result == (20, 3, 2)  # type: ignore[union-attr]
    assert calls == ["source"]


@pytest.mark.anyio
async def test_each_task_runs_after_all_of_its_upstream_tasks(executor_cls: type) -> None:
    finished: list[str] = []
    lock = threading.Lock()

    def make(name: str, deps: list[str]) -> Task:
        def body() -> None:
            with lock:
                missing = [d for d in deps if d not in finished]
                assert not missing, f"{name} started before {missing}"
                finished.append(name)

        return Task(name, body)

    wf = Workflow("order")
    layout = {
        "a": [],
        "b": ["a"],
        "c": ["a"],
        "d": ["b", "c"],
        "e": [],
        "f": ["e", "d"],
        "g": ["f", "a"],
    }
    for name, deps in layout.items():
        wf.add_task(make(name, deps), depends_on=deps)
    await executor_cls().execute(wf)
    assert sorted(finished) == sorted(layout)
    assert all(s is TaskStatus.COMPLETED for s in final_statuses(wf).values())


@pytest.mark.anyio
async def test_depends_on_accepts_tasks_and_decorated_functions(executor_cls: type) -> None:
    @task(name="renamed")
    def source() -> int:
        return 4

    first = Task("first", lambda: 1)

    def sink(renamed: int, first: int) -> int:
        return renamed + first

    wf = Workflow("deps_objects")
    wf.add_task(source)
    wf.add_task(first)
    wf.add_task(Task("sink", sink), depends_on=[source, first])
    await executor_cls().execute(wf)
    assert wf.dependencies("sink") == ("renamed", "first")
    assert wf.get_task("sink").result == 5  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_empty_workflow_completes(executor_cls: type) -> None:
    wf = Workflow("empty")
    await executor_cls().execute(wf)
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_workflow_status_goes_idle_running_completed(executor_cls: type) -> None:
    wf = Workflow("status")
    seen: list[WorkflowStatus] = []
    wf.add_task(Task("look", lambda: seen.append(wf.status)))
    assert wf.status is WorkflowStatus.IDLE
    await executor_cls().execute(wf)
    assert seen == [WorkflowStatus.RUNNING]
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_task_status_is_running_inside_its_function(executor_cls: type) -> None:
    wf = Workflow("running")
    seen: list[TaskStatus] = []
    t = wf.add_task(Task("me", lambda: seen.append(t.status)))
    await executor_cls().execute(wf)
    assert seen == [TaskStatus.RUNNING]
    assert t.status is TaskStatus.COMPLETED
    assert t.attempts == 1


@pytest.mark.anyio
async def test_workflow_runs_again_from_pending(executor_cls: type) -> None:
    calls: list[int] = []
    states: list[tuple[TaskStatus, Any]] = []
    wf = Workflow("again")
    first = wf.add_task(Task("first", lambda: calls.append(1) or len(calls)))
    wf.add_task(
        Task("second", lambda: states.append((first.status, first.result))),
        depends_on=["first"],
    )
    ex = executor_cls()
    await ex.execute(wf)
    await ex.execute(wf)
    assert calls == [1, 1]
    assert first.result == 2
    assert first.attempts == 1  # counted per run
    assert wf.status is WorkflowStatus.COMPLETED
    assert states == [(TaskStatus.COMPLETED, 1), (TaskStatus.COMPLETED, 2)]


@pytest.mark.anyio
async def test_failed_workflow_succeeds_when_run_again(executor_cls: type) -> None:
    outcomes = iter([RuntimeError("first run"), "fine"])

    def sometimes() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    wf = Workflow("rerun_after_failure")
    wf.add_task(Task("sometimes", sometimes))
    wf.add_task(Task("after", lambda: "after"), depends_on=["sometimes"])
    with pytest.raises(WorkflowExecutionError, match="first run"):
        await executor_cls().execute(wf)
    assert final_statuses(wf) == {"sometimes": TaskStatus.FAILED, "after": TaskStatus.SKIPPED}
    assert wf.status is WorkflowStatus.FAILED
    await executor_cls().execute(wf)
    assert final_statuses(wf) == {
        "sometimes": TaskStatus.COMPLETED,
        "after": TaskStatus.COMPLETED,
    }
    assert wf.get_task("sometimes").error is None  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_one_executor_runs_many_workflows(executor_cls: type) -> None:
    ex = executor_cls()
    flows = []
    for n in range(3):
        wf = Workflow(f"wf{n}")
        wf.add_task(Task("value", lambda n=n: n))
        flows.append(wf)
    for wf in flows:
        await ex.execute(wf)
    assert [wf.get_task("value").result for wf in flows] == [0, 1, 2]  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_state_store_none_is_accepted(make_executor: Any) -> None:
    ex = make_executor(state_store=None)
    assert ex.state_store is None
    assert isinstance(ex, BaseExecutor)
    wf = Workflow("no_store")
    wf.add_task(Task("a", lambda: "a"))
    await ex.execute(wf)
    assert wf.get_task("a").result == "a"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_invalid_graph_raises_before_any_task_runs(executor_cls: type) -> None:
    ran: list[str] = []
    wf = Workflow("invalid")
    wf.add_task(Task("root", lambda: ran.append("root")))
    wf.add_task(Task("fetch_data", lambda: ran.append("fetch_data")))
    wf.add_task(Task("child", lambda: ran.append("child")), depends_on=["fetch_dta"])
    with pytest.raises(WorkflowValidationError, match="did you mean 'fetch_data'"):
        await executor_cls().execute(wf)
    assert ran == []
    assert wf.status is WorkflowStatus.IDLE
    assert all(t.status is TaskStatus.PENDING for t in wf.tasks)


@pytest.mark.anyio
async def test_cycle_raises_before_any_task_runs(executor_cls: type) -> None:
    ran: list[str] = []
    wf = Workflow("cycle")
    wf.add_task(Task("root", lambda: ran.append("root")))
    wf.add_task(Task("a", lambda: ran.append("a")), depends_on=["b"])
    wf.add_task(Task("b", lambda: ran.append("b")), depends_on=["a"])
    with pytest.raises(WorkflowValidationError, match="a -> b -> a"):
        await executor_cls().execute(wf)
    assert ran == []


@pytest.mark.anyio
async def test_failing_async_task_reports_its_exception(executor_cls: type) -> None:
    wf = Workflow("async_failure")
    wf.add_task(Task("boom", async_raising(KeyError("missing"))))
    with pytest.raises(WorkflowExecutionError, match="boom") as info:
        await executor_cls().execute(wf)
    t = wf.get_task("boom")
    assert t is not None
    assert isinstance(t.error, KeyError)
    assert info.value.errors == {"boom": t.error}


@pytest.mark.anyio
async def test_snapshot_matches_properties_after_a_run(executor_cls: type) -> None:
    wf = Workflow("snapshot")
    ok = wf.add_task(Task("ok", lambda: [1, 2]))
    await executor_cls().execute(wf)
    assert ok.snapshot() == (TaskStatus.COMPLETED, [1, 2], None)
    assert ok.started_at is not None
    assert ok.finished_at is not None
    assert ok.started_at <= ok.finished_at
    assert ok.duration is not None
    assert ok.duration >= 0
