"""Retries: at most ``retries + 1`` attempts, ``RETRYING`` between them, optional delays."""

from __future__ import annotations

import time

import pytest

from flowweaver import (
    Task,
    TaskRetrying,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
)
from tests.helpers import EventLog, Flaky, flaky_coroutine


@pytest.mark.anyio
async def test_task_succeeding_on_a_later_attempt_completes(executor_cls: type) -> None:
    flaky = Flaky(failures=2, value="third time")
    wf = Workflow("flaky")
    t = wf.add_task(Task("flaky", flaky, retries=2))
    wf.add_task(Task("after", lambda flaky: flaky.upper()), depends_on=["flaky"])
    await executor_cls().execute(wf)
    assert flaky.calls == 3
    assert t.attempts == 3
    assert t.snapshot() == (TaskStatus.COMPLETED, "third time", None)
    assert wf.get_task("after").result == "THIRD TIME"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_async_task_succeeding_on_a_later_attempt_completes(executor_cls: type) -> None:
    func, calls = flaky_coroutine(failures=1, value=5)
    wf = Workflow("flaky_async")
    t = wf.add_task(Task("flaky", func, retries=3))
    await executor_cls().execute(wf)
    assert calls == [1, 2]
    assert t.attempts == 2
    assert t.result == 5


@pytest.mark.anyio
async def test_at_most_retries_plus_one_attempts_then_failed(executor_cls: type) -> None:
    flaky = Flaky(failures=10)
    wf = Workflow("exhausted")
    t = wf.add_task(Task("flaky", flaky, retries=3))
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert flaky.calls == 4
    assert t.attempts == 4
    assert t.status is TaskStatus.FAILED
    # the error kept is the last attempt's
    assert str(t.error) == "attempt 4 fails"
    assert info.value.__cause__.attempts == 4  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_zero_retries_means_one_attempt(executor_cls: type) -> None:
    flaky = Flaky(failures=1)
    wf = Workflow("no_retry")
    wf.add_task(Task("flaky", flaky))
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    assert flaky.calls == 1


@pytest.mark.anyio
async def test_status_is_retrying_between_attempts(executor_cls: type) -> None:
    wf = Workflow("retrying")
    log = EventLog(wf)
    wf.add_task(Task("flaky", Flaky(failures=2), retries=2))
    await executor_cls(observer=log).execute(wf)
    retrying = log.of(TaskRetrying)
    assert [e.attempt for e in retrying] == [1, 2]
    assert [str(e.error) for e in retrying] == ["attempt 1 fails", "attempt 2 fails"]
    at_retry = [s for e, s in zip(log.events, log.statuses, strict=True) if e in retrying]
    assert at_retry == [TaskStatus.RETRYING, TaskStatus.RETRYING]


@pytest.mark.anyio
async def test_other_thread_sees_retrying_during_retry_delay(parallel_cls: type) -> None:
    seen: set[TaskStatus] = set()
    wf = Workflow("watch_retry")
    flaky = wf.add_task(Task("flaky", Flaky(failures=1), retries=1, retry_delay=0.3))

    def watch() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and flaky.status is not TaskStatus.COMPLETED:
            seen.add(flaky.status)
            time.sleep(0.005)

    wf.add_task(Task("watch", watch))
    await parallel_cls().execute(wf)
    assert TaskStatus.RETRYING in seen
    assert flaky.status is TaskStatus.COMPLETED


@pytest.mark.anyio
async def test_retry_delays_grow_by_backoff(executor_cls: type) -> None:
    log = EventLog()
    wf = Workflow("backoff")
    wf.add_task(
        Task("flaky", Flaky(failures=3), retries=3, retry_delay=0.01, retry_backoff=3.0),
    )
    started = time.monotonic()
    await executor_cls(observer=log).execute(wf)
    elapsed = time.monotonic() - started
    delays = [e.delay for e in log.of(TaskRetrying)]
    assert delays == pytest.approx([0.01, 0.03, 0.09])
    assert elapsed >= 0.13 * 0.9  # the waits really happened (lower bound only)


@pytest.mark.anyio
async def test_retry_jitter_keeps_delays_within_the_fraction(executor_cls: type) -> None:
    log = EventLog()
    wf = Workflow("jitter")
    wf.add_task(
        Task(
            "flaky",
            Flaky(failures=4),
            retries=4,
            retry_delay=0.01,
            retry_backoff=1.0,
            retry_jitter=0.5,
        ),
    )
    await executor_cls(observer=log).execute(wf)
    delays = [e.delay for e in log.of(TaskRetrying)]
    assert len(delays) == 4
    assert all(0.005 <= d <= 0.015 for d in delays), delays


@pytest.mark.anyio
async def test_retries_have_no_delay_by_default(executor_cls: type) -> None:
    log = EventLog()
    wf = Workflow("no_delay")
    wf.add_task(Task("flaky", Flaky(failures=2), retries=2))
    await executor_cls(observer=log).execute(wf)
    assert [e.delay for e in log.of(TaskRetrying)] == [0, 0]


@pytest.mark.anyio
async def test_retry_then_failure_skips_downstream_once(executor_cls: type) -> None:
    ran: list[str] = []
    wf = Workflow("retry_fail")
    wf.add_task(Task("flaky", Flaky(failures=5), retries=1))
    wf.add_task(Task("down", lambda: ran.append("down")), depends_on=["flaky"])
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert ran == []
    assert info.value.skipped_tasks == ["down"]


@pytest.mark.anyio
async def test_max_retry_delay_caps_each_wait(executor_cls: type) -> None:
    wf = Workflow("capped")
    log = EventLog(wf)
    t = wf.add_task(
        Task("flaky", Flaky(failures=2), retries=2, retry_delay=100, max_retry_delay=0.05)
    )
    started = time.monotonic()
    await executor_cls(observer=log).execute(wf)
    assert time.monotonic() - started < 10
    assert t.attempts == 3
    assert [e.delay for e in log.of(TaskRetrying)] == [0.05, 0.05]
