"""Living inside an asyncio service: pytest-asyncio's loop hosts the workflow.

These use ``@pytest.mark.asyncio`` (pytest-asyncio in strict mode), the way an
application's own test suite would; the anyio-marked tests elsewhere run on anyio's
runner. Both plugins are active in the same session without claiming each other's tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import flowweaver.aio
from flowweaver import (
    AsyncExecutor,
    SequentialExecutor,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
)
from tests.helpers import async_sleeping, async_upper, blocking_sleeper, final_statuses

AIO = [
    flowweaver.aio.SequentialExecutor,
    flowweaver.aio.ThreadedExecutor,
    flowweaver.aio.AsyncExecutor,
]


class Service:
    """A small async service that runs a workflow per request."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    async def handle(self, name: str) -> dict[str, str]:
        wf = Workflow(f"request_{name}")
        wf.add_task(Task("fetch_data", lambda: {"name": name}))
        wf.add_task(Task("process", async_upper), depends_on=["fetch_data"])
        await self.executor.execute(wf)
        return wf.get_task("process").result  # type: ignore[no-any-return, union-attr]


@pytest.mark.asyncio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_async_service_awaits_a_workflow(executor_cls: type) -> None:
    service = Service(executor_cls())
    assert await service.handle("ann") == {"processed": "ANN"}


@pytest.mark.asyncio
async def test_service_handles_concurrent_requests() -> None:
    service = Service(AsyncExecutor())
    results = await asyncio.gather(*(service.handle(n) for n in ("a", "b", "c")))
    assert results == [{"processed": "A"}, {"processed": "B"}, {"processed": "C"}]


@pytest.mark.asyncio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_sync_task_does_not_block_the_hosts_loop(executor_cls: type) -> None:
    # the host's own coroutine keeps ticking while a sync task sleeps 0.3 s
    beats: list[float] = []
    done = threading.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            beats.append(time.monotonic())
            await asyncio.sleep(0.01)

    wf = Workflow("blocking_sleep")
    wf.add_task(Task("sleep", blocking_sleeper(0.3, done)))
    ticker = asyncio.create_task(heartbeat())
    try:
        await executor_cls().execute(wf)
    finally:
        done.set()
        await ticker
    assert len(beats) >= 5


@pytest.mark.asyncio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_asyncio_task_cancel_cancels_the_run(executor_cls: type) -> None:
    wf = Workflow("cancel_me")
    wf.add_task(Task("slow", async_sleeping(30)))
    wf.add_task(Task("after", lambda: None), depends_on=["slow"])
    run = asyncio.create_task(executor_cls().execute(wf))
    await asyncio.sleep(0.1)
    run.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert time.monotonic() - started < 5
    assert final_statuses(wf) == {"slow": TaskStatus.PENDING, "after": TaskStatus.PENDING}
    assert wf.status is WorkflowStatus.CANCELLED


@pytest.mark.asyncio
async def test_wait_for_timeout_cancels_the_run() -> None:
    wf = Workflow("too_slow")
    wf.add_task(Task("slow", async_sleeping(30)))
    wf.add_task(Task("sync_slow", blocking_sleeper(0.5, threading.Event())))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(flowweaver.aio.ThreadedExecutor().execute(wf), 0.1)
    assert set(final_statuses(wf).values()) == {TaskStatus.PENDING}


@pytest.mark.asyncio
async def test_failure_reaches_the_service() -> None:
    wf = Workflow("fails")
    wf.add_task(Task("bad", lambda: 1 / 0))
    with pytest.raises(WorkflowExecutionError) as info:
        await AsyncExecutor().execute(wf)
    assert info.value.failed_task == "bad"


@pytest.mark.asyncio
async def test_blocking_execute_inside_an_asyncio_handler() -> None:
    # legacy code calling the blocking form from a handler neither raises nor deadlocks,
    # and the handler's loop is free again afterwards
    wf = Workflow("legacy")
    wf.add_task(Task("fetch_data", lambda: {"name": "x"}))
    wf.add_task(Task("process", async_upper), depends_on=["fetch_data"])
    SequentialExecutor().execute(wf)
    wf2 = Workflow("legacy_async")
    wf2.add_task(Task("a", async_sleeping(0.01, "a")))
    wf2.execute(AsyncExecutor())
    assert wf.get_task("process").result == {"processed": "X"}  # type: ignore[union-attr]
    assert wf2.get_task("a").result == "a"  # type: ignore[union-attr]
    await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_reference_async_executor_example_in_a_running_loop() -> None:
    # the reference's example, with main() awaited by the host instead of asyncio.run
    async def main() -> Workflow:
        workflow = Workflow("async_example")

        async def async_task() -> str:
            await asyncio.sleep(0.01)
            return "result"

        workflow.add_task(Task("async_1", async_task))
        executor = AsyncExecutor(max_concurrent=50)
        await executor.execute(workflow)
        return workflow

    workflow = await main()
    assert workflow.get_task("async_1").result == "result"  # type: ignore[union-attr]


def test_pytest_asyncio_is_in_strict_mode(pytestconfig: pytest.Config) -> None:
    # strict mode: pytest-asyncio only takes tests marked asyncio, leaving anyio's alone
    assert pytestconfig.getini("asyncio_mode") == "strict"
