"""Callbacks: once per task after ``COMPLETED`` or ``FAILED``, with the Task; never fatal."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flowweaver import Task, TaskStatus, Workflow, WorkflowExecutionError, task
from tests.helpers import CallbackLog, Flaky, async_returning


@pytest.mark.anyio
async def test_callback_runs_once_with_the_completed_task(executor_cls: type) -> None:
    log = CallbackLog()
    seen: list[Task] = []
    wf = Workflow("callbacks")
    t = wf.add_task(Task("a", lambda: 41, callbacks=[log.sync, seen.append]))
    await executor_cls().execute(wf)
    assert log.calls == [("a", TaskStatus.COMPLETED, 41)]
    assert seen == [t]


@pytest.mark.anyio
async def test_callback_runs_once_after_all_retries_of_a_failed_task(executor_cls: type) -> None:
    log = CallbackLog()
    wf = Workflow("failed_callback")
    wf.add_task(Task("flaky", Flaky(failures=9), retries=2, callbacks=[log.sync]))
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    assert log.calls == [("flaky", TaskStatus.FAILED, None)]


@pytest.mark.anyio
async def test_callback_runs_once_after_retries_that_succeed(executor_cls: type) -> None:
    log = CallbackLog()
    wf = Workflow("retried_callback")
    wf.add_task(Task("flaky", Flaky(failures=2, value="v"), retries=2, callbacks=[log.sync]))
    await executor_cls().execute(wf)
    assert log.calls == [("flaky", TaskStatus.COMPLETED, "v")]


@pytest.mark.anyio
async def test_async_callback_is_awaited_before_execute_returns(executor_cls: type) -> None:
    log = CallbackLog()
    wf = Workflow("async_callback")
    wf.add_task(Task("sync_task", lambda: 1, callbacks=[log.coroutine]))
    wf.add_task(Task("async_task", async_returning(2), callbacks=[log.coroutine]))
    await executor_cls().execute(wf)
    assert sorted(log.calls) == [
        ("async_task", TaskStatus.COMPLETED, 2),
        ("sync_task", TaskStatus.COMPLETED, 1),
    ]


@pytest.mark.anyio
async def test_callbacks_run_in_order(executor_cls: type) -> None:
    order: list[str] = []
    wf = Workflow("order")
    wf.add_task(
        Task(
            "a",
            lambda: None,
            callbacks=[lambda t: order.append("first"), lambda t: order.append("second")],
        )
    )
    await executor_cls().execute(wf)
    assert order == ["first", "second"]


@pytest.mark.anyio
async def test_raising_callback_is_logged_and_does_not_change_status(
    executor_cls: type, caplog: pytest.LogCaptureFixture
) -> None:
    log = CallbackLog()

    def broken(t: Task) -> None:
        raise RuntimeError("callback broke")

    wf = Workflow("broken_callback")
    t = wf.add_task(Task("a", lambda: "fine", callbacks=[broken, log.sync]))
    wf.add_task(Task("after", lambda a: a + "!"), depends_on=["a"])
    with caplog.at_level(logging.ERROR, logger="flowweaver"):
        await executor_cls().execute(wf)
    assert t.snapshot() == (TaskStatus.COMPLETED, "fine", None)
    assert wf.get_task("after").result == "fine!"  # type: ignore[union-attr]
    # the next callback still runs
    assert log.calls == [("a", TaskStatus.COMPLETED, "fine")]
    records = [r for r in caplog.records if r.name == "flowweaver" and r.exc_info]
    assert any("callback broke" in str(r.exc_info[1]) for r in records)  # type: ignore[index]
    assert any("'a'" in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_raising_callback_of_a_failed_task_keeps_it_failed(executor_cls: type) -> None:
    def broken(t: Task) -> None:
        raise RuntimeError("callback broke")

    wf = Workflow("broken_on_failure")
    t = wf.add_task(Task("bad", Flaky(failures=1), callbacks=[broken]))
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert t.status is TaskStatus.FAILED
    assert info.value.failed_task == "bad"
    assert isinstance(t.error, RuntimeError)
    assert str(t.error) == "attempt 1 fails"


@pytest.mark.anyio
async def test_skipped_tasks_get_no_callback(executor_cls: type) -> None:
    log = CallbackLog()
    wf = Workflow("skipped_callback")
    wf.add_task(Task("bad", Flaky(failures=1)))
    wf.add_task(Task("skipped", lambda: None, callbacks=[log.sync]), depends_on=["bad"])
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    assert log.calls == []


@pytest.mark.anyio
async def test_decorator_callbacks_are_used_by_the_workflow(executor_cls: type) -> None:
    log = CallbackLog()

    @task(callbacks=[log.sync, log.coroutine])
    def decorated() -> str:
        return "d"

    wf = Workflow("decorated_callbacks")
    wf.add_task(decorated)
    await executor_cls().execute(wf)
    assert log.calls == [("decorated", TaskStatus.COMPLETED, "d")] * 2


@pytest.mark.anyio
async def test_callback_receives_result_of_its_own_run(executor_cls: type) -> None:
    results: list[Any] = []
    counter = iter(range(10))
    wf = Workflow("each_run")
    wf.add_task(Task("n", lambda: next(counter), callbacks=[lambda t: results.append(t.result)]))
    ex = executor_cls()
    await ex.execute(wf)
    await ex.execute(wf)
    assert results == [0, 1]
