"""An awaited run never blocks its caller's event loop, on asyncio or trio.

Sync task functions go to worker threads under every awaitable executor (the sequential
one included), so the caller's other coroutines keep running.
"""

from __future__ import annotations

import threading
import time

import anyio
import pytest

import flowweaver.aio
from flowweaver import Task, Workflow
from tests.helpers import blocking_sleeper

AIO = [
    flowweaver.aio.SequentialExecutor,
    flowweaver.aio.ThreadedExecutor,
    flowweaver.aio.AsyncExecutor,
]


@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
@pytest.mark.parametrize("task_timeout", [None, 30.0], ids=["no_timeout", "timeout"])
async def test_heartbeat_keeps_ticking_while_a_sync_task_sleeps(
    executor_cls: type, task_timeout: float | None
) -> None:
    beats: list[float] = []
    done = threading.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            beats.append(time.monotonic())
            await anyio.sleep(0.01)

    wf = Workflow("heartbeat")
    wf.add_task(Task("sleep", blocking_sleeper(0.3, done), timeout=task_timeout))
    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        await executor_cls().execute(wf)
        done.set()
    assert wf.get_task("sleep").result == "slept"  # type: ignore[union-attr]
    assert len(beats) >= 5


@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_awaited_run_calls_sync_tasks_off_the_loop_thread(executor_cls: type) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    wf = Workflow("where")
    wf.add_task(Task("a", lambda: seen.append(threading.get_ident())))
    await executor_cls().execute(wf)
    assert len(seen) == 1
    assert seen[0] != loop_thread


@pytest.mark.anyio
async def test_two_workflows_run_side_by_side_on_one_loop() -> None:
    order: list[str] = []

    def step(name: str) -> Task:
        return Task(name, lambda: order.append(name))

    first = Workflow("first")
    first.add_task(Task("wait", blocking_sleeper(0.2, threading.Event())))
    first.add_task(step("first_done"), depends_on=["wait"])
    second = Workflow("second")
    second.add_task(step("second_done"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(flowweaver.aio.SequentialExecutor().execute, first)
        tg.start_soon(flowweaver.aio.AsyncExecutor().execute, second)
    assert order == ["second_done", "first_done"]
