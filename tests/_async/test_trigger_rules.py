"""Trigger rules and skipping on purpose under every executor, asyncio and trio.

A clean-up task with ``all_done`` runs after a failure and sees ``Failed(error)``; a
``Skip`` ends a task SKIPPED without failing the run; ``none_failed`` runs after it;
``one_failed`` fires before slower upstream tasks end; ``fail_fast`` still runs clean-up,
Ctrl-C does not.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowweaver import (
    SKIPPED,
    Failed,
    Skip,
    Task,
    TaskSkipped,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
    WorkflowValidationError,
    task,
)
from tests.helpers import (
    CallbackLog,
    EventLog,
    async_raising,
    async_sleeping,
    cancellable_sleeper,
    final_statuses,
    raising,
)


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_all_done_clean_up_runs_after_a_failure_and_the_run_still_fails(
    executor_cls: type, form: str
) -> None:
    seen: dict[str, Any] = {}

    def clean_up(load: Any, extract: Any) -> str:
        seen.update(load=load, extract=extract)
        return "cleaned"

    wf = Workflow("clean_up")
    wf.add_task(Task("extract", lambda: 1))
    bad = (
        raising(ValueError("disk full"))
        if form == "sync"
        else async_raising(ValueError("disk full"))
    )
    wf.add_task(Task("load", bad), depends_on=["extract"])
    wf.add_task(Task("report", lambda: None), depends_on=["load"])
    wf.add_task(clean_up, depends_on=["load", "extract"], trigger="all_done")
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert info.value.failed_tasks == ["load"]
    assert info.value.skipped_tasks == ["report"]
    assert final_statuses(wf)["clean_up"] is TaskStatus.COMPLETED
    assert wf.get_task("clean_up").result == "cleaned"
    assert isinstance(seen["load"], Failed)
    assert str(seen["load"].error) == "disk full"
    assert seen["load"] == Failed(wf.get_task("load").error)
    assert seen["extract"] == 1
    assert wf.status is WorkflowStatus.FAILED


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_skip_ends_a_task_skipped_without_failing_the_run(
    executor_cls: type, form: str
) -> None:
    log = EventLog()
    callbacks = CallbackLog()
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        raise Skip("no new data")

    async def check_async() -> None:
        calls.append(1)
        raise Skip("no new data")

    seen: dict[str, Any] = {}

    def publish(check: Any) -> str:
        seen["check"] = check
        return "published"

    wf = Workflow("skips")
    wf.add_task(
        Task(
            "check",
            check if form == "sync" else check_async,
            retries=3,
            callbacks=[callbacks.sync],
        )
    )
    wf.add_task(Task("load", lambda: 1), depends_on=["check"])
    wf.add_task(Task("after_load", lambda: 2), depends_on=["load"])
    wf.add_task(publish, depends_on=["check"], trigger="none_failed")
    await executor_cls(observer=log).execute(wf)  # does not raise
    assert calls == [1]  # not retried
    assert final_statuses(wf) == {
        "check": TaskStatus.SKIPPED,
        "load": TaskStatus.SKIPPED,
        "after_load": TaskStatus.SKIPPED,
        "publish": TaskStatus.COMPLETED,
    }
    assert seen["check"] is SKIPPED
    assert wf.status is WorkflowStatus.COMPLETED
    assert callbacks.calls == [("check", TaskStatus.SKIPPED, None)]
    reasons = {e.task: (e.upstream, e.reason) for e in log.of(TaskSkipped)}
    assert reasons == {
        "check": ("", "no new data"),
        "load": ("check", "upstream task 'check' was skipped"),
        "after_load": ("check", "upstream task 'check' was skipped"),
    }


@pytest.mark.anyio
async def test_none_failed_is_skipped_below_a_failure_with_the_reason(
    executor_cls: type,
) -> None:
    log = EventLog()
    wf = Workflow("none_failed")
    wf.add_task(Task("bad", raising(ValueError("bad"))))
    wf.add_task(Task("between", lambda: 1), depends_on=["bad"])
    wf.add_task(Task("publish", lambda: 2, trigger="none_failed"), depends_on=["between"])
    # a skip caused by a failure counts as a failure below it (Airflow's upstream_failed)
    wf.add_task(Task("alert", lambda: 3, trigger="one_failed"), depends_on=["publish"])
    wf.add_task(Task("fine", lambda: 4))
    wf.add_task(Task("quiet", lambda: 5, trigger="one_failed"), depends_on=["fine"])
    with pytest.raises(WorkflowExecutionError):
        await executor_cls(observer=log).execute(wf)
    reasons = {e.task: (e.upstream, e.reason) for e in log.of(TaskSkipped)}
    assert reasons == {
        "between": ("bad", "upstream task 'bad' failed"),
        "publish": ("bad", "upstream task 'bad' failed (trigger rule 'none_failed')"),
        "quiet": ("fine", "no upstream task failed (trigger rule 'one_failed')"),
    }
    assert wf.get_task("alert").result == 3


@pytest.mark.anyio
async def test_one_success_is_skipped_when_every_upstream_task_failed(
    executor_cls: type,
) -> None:
    log = EventLog()
    wf = Workflow("one_success")
    wf.add_task(Task("a", raising(ValueError("a"))))
    wf.add_task(Task("b", raising(ValueError("b"))))
    wf.add_task(Task("either", lambda: 1, trigger="one_success"), depends_on=["a", "b"])
    with pytest.raises(WorkflowExecutionError):
        await executor_cls(observer=log).execute(wf)
    assert wf.get_task("either").status is TaskStatus.SKIPPED
    (event,) = log.of(TaskSkipped)
    assert event.reason == "no upstream task completed (trigger rule 'one_success')"


@pytest.mark.anyio
async def test_one_failed_fires_before_slower_upstream_tasks_end(parallel_cls: type) -> None:
    seen: dict[str, Any] = {}

    def alert(bad: Any, slow: Any) -> None:
        seen.update(bad=bad, slow=slow, at=time.monotonic())

    wf = Workflow("alert")
    wf.add_task(Task("slow", async_sleeping(0.5, "done")))
    wf.add_task(Task("bad", async_raising(ValueError("x"))))
    wf.add_task(Task("alert", alert, trigger="one_failed"), depends_on=["bad", "slow"])
    with pytest.raises(WorkflowExecutionError):
        await parallel_cls().execute(wf)
    assert isinstance(seen["bad"], Failed)
    assert seen["slow"] is SKIPPED  # had not ended when alert started
    assert wf.get_task("slow").status is TaskStatus.COMPLETED
    assert wf.get_task("alert").finished_at < wf.get_task("slow").finished_at  # type: ignore[operator]


@pytest.mark.anyio
async def test_fail_fast_still_runs_all_done_clean_up(parallel_cls: type) -> None:
    seen: dict[str, Any] = {}

    def clean_up(bad: Any, slow: Any) -> str:
        seen.update(bad=bad, slow=slow)
        return "cleaned"

    wf = Workflow("fail_fast_clean_up")
    log = EventLog(wf)
    wf.add_task(Task("slow", async_sleeping(30)))
    wf.add_task(Task("bad", async_raising(ValueError("stop"))))
    wf.add_task(Task("after", lambda: None), depends_on=["bad"])
    wf.add_task(Task("clean_up", clean_up, trigger="all_done"), depends_on=["bad", "slow"])
    wf.add_task(Task("after_clean_up", lambda: 1), depends_on=["clean_up"])
    wf.add_task(Task("last", lambda: 2, trigger="all_done"), depends_on=["clean_up"])
    started = time.monotonic()
    with pytest.raises(WorkflowExecutionError):
        await parallel_cls(fail_fast=True, observer=log).execute(wf)
    assert time.monotonic() - started < 10  # slow was cancelled, not waited for
    assert final_statuses(wf) == {
        "slow": TaskStatus.SKIPPED,
        "bad": TaskStatus.FAILED,
        "after": TaskStatus.SKIPPED,
        "clean_up": TaskStatus.COMPLETED,
        "after_clean_up": TaskStatus.SKIPPED,
        "last": TaskStatus.COMPLETED,
    }
    assert isinstance(seen["bad"], Failed)
    assert seen["slow"] is SKIPPED
    stopped = {e.task: e.upstream for e in log.of(TaskSkipped)}
    assert stopped == {"slow": "bad", "after": "bad", "after_clean_up": "bad"}


@pytest.mark.anyio
async def test_fail_fast_reruns_a_clean_up_task_caught_in_flight(parallel_cls: type) -> None:
    log: list[str] = []
    wf = Workflow("clean_up_in_flight")
    wf.add_task(Task("trigger", async_sleeping(0.05)))
    wf.add_task(Task("bad", async_raising(ValueError("x"))), depends_on=["trigger"])
    wf.add_task(Task("clean_up", cancellable_sleeper(0.3, log), trigger="all_done"))
    with pytest.raises(WorkflowExecutionError):
        await parallel_cls(fail_fast=True).execute(wf)
    assert log == ["cancelled", "finished"]
    assert wf.get_task("clean_up").status is TaskStatus.COMPLETED
    assert wf.get_task("clean_up").attempts == 2


@pytest.mark.anyio
async def test_an_interrupted_run_does_not_run_all_done_tasks(executor_cls: type) -> None:
    def exits() -> None:
        raise KeyboardInterrupt

    wf = Workflow("interrupted")
    wf.add_task(Task("exits", exits))
    wf.add_task(Task("clean_up", lambda: None, trigger="all_done"), depends_on=["exits"])
    with pytest.raises(KeyboardInterrupt):
        await executor_cls().execute(wf)
    assert wf.get_task("clean_up").status is TaskStatus.PENDING


@pytest.mark.anyio
async def test_triggers_from_the_decorator_and_add_task(executor_cls: type) -> None:
    @task(trigger="all_done")
    def tidy(bad: Any) -> str:
        return type(bad).__name__

    wf = Workflow("decorated")
    wf.add_task(Task("bad", raising(ValueError("bad"))))
    wf.add_task(tidy, depends_on=["bad"])
    overridden = wf.add_task(Task("plain", lambda: 1), depends_on=["bad"], trigger="all_done")
    assert overridden.trigger == "all_done"
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    assert wf.get_task("tidy").result == "Failed"
    assert wf.get_task("plain").result == 1


def test_a_bad_trigger_is_refused_naming_the_task_and_the_rules() -> None:
    with pytest.raises(WorkflowValidationError, match=r"task 'x': trigger must be one of"):
        Task("x", lambda: None, trigger="sometimes")  # type: ignore[arg-type]
    with pytest.raises(WorkflowValidationError, match="'all_done'"):
        Workflow("w").add_task(Task("y", lambda: None), trigger="never")  # type: ignore[arg-type]
    with pytest.raises(WorkflowValidationError, match="trigger"):
        task(trigger=1)  # type: ignore[arg-type]


def test_task_execute_of_a_skip_returns_none_without_raising() -> None:
    t = Task("skips", raising(Skip("nothing to do")))
    assert t.execute() is None
    assert t.status is TaskStatus.SKIPPED
    assert t.attempts == 1
