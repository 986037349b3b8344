"""A failed task skips its downstream; independent branches finish; then the run raises.

Also ``fail_fast``, which cancels what is still running instead.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flowweaver import (
    FlowWeaverError,
    Task,
    TaskCancelled,
    TaskExecutionError,
    TaskSkipped,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
)
from tests.helpers import (
    CallbackLog,
    EventLog,
    Flaky,
    async_raising,
    async_sleeping,
    blocking_sleeper,
    final_statuses,
)


def _fail(message: str = "bad") -> Any:
    def fail() -> None:
        raise ValueError(message)

    return fail


@pytest.mark.anyio
async def test_failure_skips_whole_downstream_and_independent_branch_finishes(
    executor_cls: type,
) -> None:
    wf = Workflow("branches")
    wf.add_task(Task("root", lambda: 1))
    wf.add_task(Task("bad", _fail()), depends_on=["root"])
    wf.add_task(Task("child", lambda: 2), depends_on=["bad"])
    wf.add_task(Task("grandchild", lambda: 3), depends_on=["child", "root"])
    wf.add_task(Task("other", lambda: 4), depends_on=["root"])
    wf.add_task(Task("other_child", lambda: 5), depends_on=["other"])
    wf.add_task(Task("lonely", lambda: 6))
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert final_statuses(wf) == {
        "root": TaskStatus.COMPLETED,
        "bad": TaskStatus.FAILED,
        "child": TaskStatus.SKIPPED,
        "grandchild": TaskStatus.SKIPPED,
        "other": TaskStatus.COMPLETED,
        "other_child": TaskStatus.COMPLETED,
        "lonely": TaskStatus.COMPLETED,
    }
    assert wf.get_task("other_child").result == 5  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.FAILED
    err = info.value
    assert err.failed_task == "bad"
    assert err.failed_tasks == ["bad"]
    assert sorted(err.skipped_tasks) == ["child", "grandchild"]


@pytest.mark.anyio
async def test_skipped_tasks_never_run_and_have_no_result(executor_cls: type) -> None:
    ran: list[str] = []
    wf = Workflow("skipped")
    wf.add_task(Task("bad", _fail()))
    wf.add_task(Task("child", lambda: ran.append("child")), depends_on=["bad"])
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    child = wf.get_task("child")
    assert child is not None
    assert ran == []
    assert child.snapshot() == (TaskStatus.SKIPPED, None, None)
    assert child.attempts == 0


@pytest.mark.anyio
async def test_execution_error_chains_task_error_and_original(executor_cls: type) -> None:
    original = ValueError("the original")

    def bad() -> None:
        raise original

    wf = Workflow("chain")
    wf.add_task(Task("bad", bad, retries=1))
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    err = info.value
    assert isinstance(err, FlowWeaverError)
    assert err.errors == {"bad": original}
    cause = err.__cause__
    assert isinstance(cause, TaskExecutionError)
    assert cause.task_name == "bad"
    assert cause.attempts == 2
    assert cause.__cause__ is original
    t = wf.get_task("bad")
    assert t is not None
    assert t.error is original
    assert t.result is None
    assert "bad" in str(err)
    assert "the original" in str(err)


@pytest.mark.anyio
async def test_every_failure_is_listed_and_first_is_named(executor_cls: type) -> None:
    wf = Workflow("many_failures")
    wf.add_task(Task("early", _fail("early one")))
    wf.add_task(Task("gate", lambda: None), depends_on=["early"])
    # "late" depends on a task that is slow, so it fails after "early" in every executor
    wf.add_task(Task("slow", async_sleeping(0.05)))
    wf.add_task(Task("late", async_raising(KeyError("late one"))), depends_on=["slow"])
    wf.add_task(Task("after_late", lambda: None), depends_on=["late"])
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    err = info.value
    assert err.failed_task == "early"
    assert err.failed_tasks == ["early", "late"]
    assert set(err.errors) == {"early", "late"}
    assert isinstance(err.errors["late"], KeyError)
    assert sorted(err.skipped_tasks) == ["after_late", "gate"]
    assert "also failed: late" in str(err)


@pytest.mark.anyio
async def test_independent_slow_branch_finishes_after_a_failure(parallel_cls: type) -> None:
    done = threading.Event()
    wf = Workflow("slow_branch")
    wf.add_task(Task("bad", _fail()))
    wf.add_task(Task("slow", blocking_sleeper(0.2, done)))
    wf.add_task(Task("after_slow", lambda slow: slow + "!"), depends_on=["slow"])
    with pytest.raises(WorkflowExecutionError):
        await parallel_cls().execute(wf)
    assert done.is_set()
    assert wf.get_task("after_slow").result == "slept!"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_fail_fast_cancels_tasks_in_flight_and_skips_the_rest(parallel_cls: type) -> None:
    thread_done = threading.Event()
    wf = Workflow("fail_fast")
    wf.add_task(Task("slow_async", async_sleeping(30)))
    wf.add_task(Task("slow_sync", blocking_sleeper(1.0, thread_done)))
    wf.add_task(Task("trigger", async_sleeping(0.05)))
    wf.add_task(Task("bad", _fail("stop")), depends_on=["trigger"])
    wf.add_task(Task("after_slow", lambda: None), depends_on=["slow_async"])
    started = time.monotonic()
    with pytest.raises(WorkflowExecutionError) as info:
        await parallel_cls(fail_fast=True).execute(wf)
    elapsed = time.monotonic() - started
    assert elapsed < 10  # not the 30 s of slow_async
    statuses = final_statuses(wf)
    assert statuses == {
        "slow_async": TaskStatus.SKIPPED,
        "slow_sync": TaskStatus.SKIPPED,
        "trigger": TaskStatus.COMPLETED,
        "bad": TaskStatus.FAILED,
        "after_slow": TaskStatus.SKIPPED,
    }
    err = info.value
    assert err.failed_task == "bad"
    assert set(err.skipped_tasks) == {"slow_async", "slow_sync", "after_slow"}
    assert wf.status is WorkflowStatus.FAILED


@pytest.mark.anyio
async def test_fail_fast_does_not_start_independent_tasks(executor_cls: type) -> None:
    ran: list[str] = []
    wf = Workflow("fail_fast_sequential")
    wf.add_task(Task("bad", _fail()))
    wf.add_task(Task("gate", async_sleeping(0.2)))
    wf.add_task(Task("later", lambda: ran.append("later")), depends_on=["gate"])
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls(fail_fast=True).execute(wf)
    assert ran == []
    assert wf.get_task("later").status is TaskStatus.SKIPPED  # type: ignore[union-attr]
    assert "later" in info.value.skipped_tasks


@pytest.mark.anyio
async def test_without_fail_fast_independent_tasks_still_run(executor_cls: type) -> None:
    ran: list[str] = []
    wf = Workflow("no_fail_fast")
    wf.add_task(Task("bad", _fail()))
    wf.add_task(Task("gate", async_sleeping(0.05)))
    wf.add_task(Task("later", lambda: ran.append("later")), depends_on=["gate"])
    with pytest.raises(WorkflowExecutionError):
        await executor_cls(fail_fast=False).execute(wf)
    assert ran == ["later"]


@pytest.mark.anyio
async def test_fail_fast_leaves_completed_tasks_completed(executor_cls: type) -> None:
    wf = Workflow("fail_fast_keeps")
    wf.add_task(Task("first", lambda: "kept"))
    wf.add_task(Task("bad", _fail()), depends_on=["first"])
    with pytest.raises(WorkflowExecutionError):
        await executor_cls(fail_fast=True).execute(wf)
    first = wf.get_task("first")
    assert first is not None
    assert first.snapshot() == (TaskStatus.COMPLETED, "kept", None)


@pytest.mark.anyio
async def test_no_task_is_left_in_flight_after_a_failed_run(executor_cls: type) -> None:
    wf = Workflow("nothing_in_flight")
    for n in range(6):
        wf.add_task(Task(f"ok{n}", async_sleeping(0.01, n)))
    wf.add_task(Task("bad", async_raising(RuntimeError("x"))), depends_on=["ok0"])
    for fail_fast in (False, True):
        with pytest.raises(WorkflowExecutionError):
            await executor_cls(fail_fast=fail_fast).execute(wf)
        assert all(t.status.is_final for t in wf.tasks), final_statuses(wf)


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_base_exception_from_a_task_ends_the_run_and_propagates(
    executor_cls: type, form: str
) -> None:
    # SystemExit (or KeyboardInterrupt) is not a task failure: the run stops and re-raises
    def exits() -> None:
        raise SystemExit(3)

    wf = Workflow("exits")
    wf.add_task(Task("exits", exits if form == "sync" else async_raising(SystemExit(3))))
    wf.add_task(Task("slow", async_sleeping(30)))
    wf.add_task(Task("after", lambda: None), depends_on=["exits"])
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        await executor_cls().execute(wf)
    assert info.value.code == 3
    assert time.monotonic() - started < 10
    assert set(final_statuses(wf).values()) == {TaskStatus.PENDING}
    assert wf.status is WorkflowStatus.FAILED


@pytest.mark.anyio
async def test_fail_fast_reports_stopped_tasks_as_skipped_by_the_failure(
    parallel_cls: type,
) -> None:
    wf = Workflow("fail_fast_events")
    log = EventLog(wf)
    wf.add_task(Task("slow", async_sleeping(30)))
    wf.add_task(Task("bad", async_raising(ValueError("stop"))))
    wf.add_task(Task("after_slow", lambda: None), depends_on=["slow"])
    with pytest.raises(WorkflowExecutionError):
        await parallel_cls(fail_fast=True, observer=log).execute(wf)
    skipped = {e.task: e.upstream for e in log.of(TaskSkipped)}
    assert skipped == {"slow": "bad", "after_slow": "bad"}
    assert log.of(TaskCancelled) == []


@pytest.mark.anyio
async def test_fail_fast_still_runs_the_failed_tasks_callbacks(parallel_cls: type) -> None:
    log = CallbackLog()
    wf = Workflow("fail_fast_callbacks")
    wf.add_task(Task("slow", async_sleeping(30), callbacks=[log.sync]))
    wf.add_task(Task("retrying", Flaky(failures=1), retries=1, retry_delay=30))
    wf.add_task(Task("trigger", async_sleeping(0.05)))
    wf.add_task(Task("bad", _fail(), callbacks=[log.sync, log.coroutine]), depends_on=["trigger"])
    with pytest.raises(WorkflowExecutionError):
        await parallel_cls(fail_fast=True).execute(wf)
    # the stopped tasks never reached a final state of their own: no callback for them
    assert log.calls == [("bad", TaskStatus.FAILED, None)] * 2
    assert final_statuses(wf) == {
        "slow": TaskStatus.SKIPPED,
        "retrying": TaskStatus.SKIPPED,
        "trigger": TaskStatus.COMPLETED,
        "bad": TaskStatus.FAILED,
    }
