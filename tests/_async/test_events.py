"""The executor's ``observer`` sees every task state change, as run events."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flowweaver import (
    RunEvent,
    RunFinished,
    RunStarted,
    Task,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
)
from tests.helpers import (
    CoroutineObserver,
    EventLog,
    Flaky,
    async_returning,
    raising_coroutine_observer,
)


def _kinds(events: list[RunEvent], task: str | None = None) -> list[str]:
    return [
        type(e).__name__
        for e in events
        if task is None or (isinstance(e, TaskEvent) and e.task == task)
    ]


@pytest.mark.anyio
async def test_successful_run_emits_started_completed_and_finished(executor_cls: type) -> None:
    wf = Workflow("events")
    log = EventLog(wf)
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", async_returning(2)), depends_on=["a"])
    await executor_cls(observer=log).execute(wf)
    assert _kinds(log.events) == [
        "RunStarted",
        "TaskStarted",
        "TaskCompleted",
        "TaskStarted",
        "TaskCompleted",
        "RunFinished",
    ]
    started = log.of(RunStarted)[0]
    assert started.total == 2
    finished = log.of(RunFinished)[0]
    assert finished.status == "COMPLETED"
    assert finished.duration >= 0
    assert all(e.workflow == "events" for e in log.events)
    stamps = [e.timestamp for e in log.events]
    assert stamps == sorted(stamps)
    assert [e.attempt for e in log.of(TaskStarted)] == [1, 1]
    assert [e.attempts for e in log.of(TaskCompleted)] == [1, 1]
    # the status at the moment of each event is already the new one
    by_kind = dict(zip(_kinds(log.events), log.statuses, strict=False))
    assert by_kind["TaskStarted"] is TaskStatus.RUNNING
    assert by_kind["TaskCompleted"] is TaskStatus.COMPLETED


@pytest.mark.anyio
async def test_failed_run_emits_retrying_failed_and_skipped(executor_cls: type) -> None:
    wf = Workflow("events_failed")
    log = EventLog(wf)
    wf.add_task(Task("bad", Flaky(failures=9), retries=1))
    wf.add_task(Task("child", lambda: None), depends_on=["bad"])
    with pytest.raises(WorkflowExecutionError):
        await executor_cls(observer=log).execute(wf)
    assert _kinds(log.events, "bad") == ["TaskStarted", "TaskRetrying", "TaskStarted", "TaskFailed"]
    assert _kinds(log.events, "child") == ["TaskSkipped"]
    failed = log.of(TaskFailed)[0]
    assert failed.attempts == 2
    assert str(failed.error) == "attempt 2 fails"
    skipped = log.of(TaskSkipped)[0]
    assert skipped.upstream == "bad"
    retrying = log.of(TaskRetrying)[0]
    assert (retrying.attempt, retrying.delay) == (1, 0)
    assert log.of(RunFinished)[0].status == "FAILED"
    assert log.statuses[_kinds(log.events).index("TaskSkipped")] is TaskStatus.SKIPPED


@pytest.mark.anyio
async def test_observer_object_with_on_event_method(executor_cls: type) -> None:
    class Watcher:
        def __init__(self) -> None:
            self.events: list[RunEvent] = []

        def on_event(self, event: RunEvent) -> None:
            self.events.append(event)

    watcher = Watcher()
    wf = Workflow("on_event")
    wf.add_task(Task("a", lambda: 1))
    await executor_cls(observer=watcher).execute(wf)
    assert _kinds(watcher.events) == ["RunStarted", "TaskStarted", "TaskCompleted", "RunFinished"]


@pytest.mark.anyio
async def test_async_observer_gets_every_event_in_order(executor_cls: type) -> None:
    wf = Workflow("async_observer")
    for i in range(5):
        wf.add_task(Task(f"t{i}", lambda: None), depends_on=[f"t{i - 1}"] if i else [])
    sync_log = EventLog()
    await executor_cls(observer=sync_log).execute(wf)
    observer = CoroutineObserver()
    await executor_cls(observer=observer).execute(wf)
    # a chain has one possible order of events; the slow async observer sees all of them,
    # in that order, before execute returns
    assert _kinds(observer.events) == _kinds(sync_log.events)
    assert [getattr(e, "task", None) for e in observer.events] == [
        getattr(e, "task", None) for e in sync_log.events
    ]


@pytest.mark.anyio
async def test_raising_observer_is_logged_and_run_goes_on(
    executor_cls: type, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[RunEvent] = []

    def broken(event: RunEvent) -> None:
        calls.append(event)
        raise RuntimeError("observer broke")

    wf = Workflow("broken_observer")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda a: a + 1), depends_on=["a"])
    with caplog.at_level(logging.ERROR, logger="flowweaver"):
        await executor_cls(observer=broken).execute(wf)
    assert wf.get_task("b").result == 2  # type: ignore[union-attr]
    assert len(calls) == 6
    assert any(
        r.name == "flowweaver" and r.exc_info and "observer broke" in str(r.exc_info[1])
        for r in caplog.records
    )


@pytest.mark.anyio
async def test_events_of_concurrent_tasks_keep_each_tasks_order(make_executor: Any) -> None:
    wf = Workflow("per_task_order")
    log = EventLog()
    for i in range(10):
        wf.add_task(Task(f"t{i}", Flaky(failures=i % 2), retries=1))
    await make_executor(4, observer=log).execute(wf)
    for i in range(10):
        expected = ["TaskStarted", "TaskCompleted"]
        if i % 2:
            expected = ["TaskStarted", "TaskRetrying", "TaskStarted", "TaskCompleted"]
        assert _kinds(log.events, f"t{i}") == expected
    assert _kinds(log.events)[0] == "RunStarted"
    assert _kinds(log.events)[-1] == "RunFinished"


def test_observer_must_be_callable_or_have_on_event(executor_cls: type) -> None:
    with pytest.raises(WorkflowValidationError, match="observer"):
        executor_cls(observer=42)


@pytest.mark.anyio
async def test_raising_async_observer_is_logged_and_gets_later_events(
    executor_cls: type, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []
    broken = raising_coroutine_observer(got, on=TaskStarted)
    wf = Workflow("broken_async_observer")
    wf.add_task(Task("a", lambda: 1))
    with caplog.at_level(logging.ERROR, logger="flowweaver"):
        await executor_cls(observer=broken).execute(wf)
    assert got == ["RunStarted", "TaskStarted", "TaskCompleted", "RunFinished"]
    assert any("async observer broke" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
