"""Per-attempt timeouts: async tasks are cancelled, sync ones abandoned on their thread."""

from __future__ import annotations

import threading
import time

import pytest

from flowweaver import (
    FlowWeaverError,
    Task,
    TaskStatus,
    TaskTimeoutError,
    Workflow,
    WorkflowExecutionError,
)
from tests.helpers import (
    async_sleeping,
    blocking_sleeper,
    cancellable_sleeper,
    slow_first_attempt,
    swallows_its_timeout,
)


@pytest.mark.anyio
async def test_async_task_is_cancelled_at_its_deadline(executor_cls: type) -> None:
    log: list[str] = []
    wf = Workflow("async_timeout")
    t = wf.add_task(Task("slow", cancellable_sleeper(30, log), timeout=0.1))
    wf.add_task(Task("after", lambda: None), depends_on=["slow"])
    started = time.monotonic()
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert time.monotonic() - started < 10
    assert log == ["cancelled"]
    assert t.status is TaskStatus.FAILED
    assert isinstance(t.error, TaskTimeoutError)
    assert isinstance(t.error, TimeoutError)
    assert isinstance(t.error, FlowWeaverError)
    assert "slow" in str(t.error)
    assert info.value.skipped_tasks == ["after"]


@pytest.mark.anyio
async def test_sync_task_attempt_fails_at_deadline_and_thread_is_abandoned(
    executor_cls: type,
) -> None:
    done = threading.Event()
    wf = Workflow("sync_timeout")
    t = wf.add_task(Task("slow", blocking_sleeper(0.4, done), timeout=0.05))
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    # the run did not wait for the thread: it is still sleeping
    assert not done.is_set()
    assert isinstance(t.error, TaskTimeoutError)
    assert t.status is TaskStatus.FAILED
    # ...and the abandoned thread finishes on its own, later
    assert done.wait(5)


@pytest.mark.anyio
async def test_timeout_applies_to_each_attempt(executor_cls: type) -> None:
    calls: list[int] = []

    def slow_then_fast() -> str:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.5)
        return "second attempt"

    wf = Workflow("per_attempt")
    t = wf.add_task(Task("task", slow_then_fast, retries=1, timeout=0.1))
    await executor_cls().execute(wf)
    assert t.attempts == 2
    assert t.result == "second attempt"


@pytest.mark.anyio
async def test_async_timeout_is_retried(executor_cls: type) -> None:
    slow_first, attempts = slow_first_attempt(30)
    wf = Workflow("async_retry_timeout")
    t = wf.add_task(Task("task", slow_first, retries=2, timeout=0.1))
    await executor_cls().execute(wf)
    assert t.status is TaskStatus.COMPLETED
    assert t.attempts == 2
    assert attempts == [1, 2]


@pytest.mark.anyio
async def test_tasks_within_their_timeout_complete(executor_cls: type) -> None:
    wf = Workflow("in_time")
    wf.add_task(Task("sync", lambda: "s", timeout=30))
    wf.add_task(Task("coro", async_sleeping(0.01, "a"), timeout=30))
    wf.add_task(
        Task("both", lambda sync, coro: sync + coro, timeout=30), depends_on=["sync", "coro"]
    )
    await executor_cls().execute(wf)
    assert wf.get_task("both").result == "sa"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_timed_out_task_error_names_task_and_limit(executor_cls: type) -> None:
    wf = Workflow("message")
    wf.add_task(Task("sleepy", async_sleeping(30), timeout=0.05))
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    error = info.value.errors["sleepy"]
    assert isinstance(error, TaskTimeoutError)
    assert error.task_name == "sleepy"
    assert error.timeout == 0.05
    assert "sleepy" in str(error)
    assert "0.05" in str(error)


@pytest.mark.anyio
async def test_a_value_returned_after_catching_the_timeout_is_a_timeout(
    executor_cls: type,
) -> None:
    swallower, log = swallows_its_timeout(30, swallowing=5)
    wf = Workflow("swallowed")
    t = wf.add_task(Task("sly", swallower, timeout=0.1))
    wf.add_task(Task("after", lambda sly: sly), depends_on=["sly"])
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert log == ["swallowed"]
    assert t.status is TaskStatus.FAILED
    assert t.result is None
    assert isinstance(t.error, TaskTimeoutError)
    assert info.value.skipped_tasks == ["after"]


@pytest.mark.anyio
async def test_an_attempt_that_caught_its_timeout_is_retried(executor_cls: type) -> None:
    swallower, log = swallows_its_timeout(30, swallowing=2)
    wf = Workflow("swallowed_then_fine")
    t = wf.add_task(Task("sly", swallower, timeout=0.1, retries=2, retry_delay=0))
    await executor_cls().execute(wf)
    assert log == ["swallowed", "swallowed", "on time"]
    assert t.attempts == 3
    assert t.result == "on time"
