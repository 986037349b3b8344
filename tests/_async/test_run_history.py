"""The run history of both built-in stores: what a run records, and reading it back.

Async in tests/_async (``flowweaver.aio`` executors and stores), the blocking twin in
tests/_sync.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    RunRecord,
    Task,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
)
from flowweaver.aio import JSONStateStore, SQLiteStateStore
from tests.helpers import EventLog, raising
from tests.store_helpers import holding_lease, recorded_runs, snapshot, write

ZERO = {"completed": 0, "failed": 0, "skipped": 0, "restored": 0, "pending": 0}


@pytest.fixture(params=["state.json", "state.db"])
def path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / str(request.param)


def open_store(path: Path, **kwargs: Any) -> Any:
    return JSONStateStore(path) if path.suffix == ".json" else SQLiteStateStore(path, **kwargs)


def daily(name: str = "daily", fail: bool = False) -> Workflow:
    """extract(day) -> check -> report; ``check`` raises when ``fail``."""
    wf = Workflow(name)
    wf.add_task(Task("extract", lambda day: f"rows of {day}"))
    check = raising(ValueError("bad rows")) if fail else (lambda extract: len(extract))
    wf.add_task(Task("check", check), depends_on=["extract"])
    wf.add_task(Task("report", lambda check: check * 2), depends_on=["check"])
    return wf


def running(run_id: str, workflow: str = "daily", minutes_ago: float = 1) -> RunRecord:
    """A run recorded RUNNING by this process."""
    started = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return RunRecord(
        run_id, workflow, {}, started, None, "RUNNING", {}, {}, [], os.getpid(), "here"
    )


async def record_begun(store: Any, run: RunRecord) -> None:
    session = await store._open_session()
    try:
        await session.begin_run(run)
    finally:
        await session.aclose()


@pytest.mark.anyio
async def test_a_completed_run_records_every_field(path: Path, make_executor: Any) -> None:
    store = open_store(path)
    before = datetime.now(timezone.utc)
    await make_executor(state_store=store).execute(daily(), params={"day": "2026-11-30"})
    after = datetime.now(timezone.utc)
    [run] = await store.runs()
    assert re.fullmatch("[0-9a-f]{16}", run.run_id)
    assert run.workflow == "daily"
    assert run.params == {"day": "2026-11-30"}
    assert run.ended is not None
    assert before <= run.started <= run.ended <= after
    assert run.started.utcoffset() == timedelta(0)
    assert run.status == "COMPLETED"
    assert run.counts == {**ZERO, "completed": 3}
    assert run.ran == dict.fromkeys(["extract", "check", "report"], "no saved result")
    assert run.restored == []
    assert (run.pid, run.host) == (os.getpid(), socket.gethostname())
    assert await store.get_run(run.run_id) == run
    assert await store.get_run("0" * 16) is None

    # the next run restores everything, and says so
    await make_executor(state_store=store).execute(daily(), params={"day": "2026-11-30"})
    newest, oldest = await store.runs()
    assert oldest == run
    assert newest.run_id != run.run_id
    assert newest.status == "COMPLETED"
    assert newest.counts == {**ZERO, "restored": 3}
    assert (newest.ran, newest.restored) == ({}, ["extract", "check", "report"])


@pytest.mark.anyio
async def test_a_changed_parameter_is_why_a_task_ran_and_an_early_cut_off_is_restored(
    path: Path, make_executor: Any
) -> None:
    store = open_store(path)
    wf = Workflow("daily")
    wf.add_task(Task("extract", lambda day: "the same rows every day"))
    wf.add_task(Task("check", lambda extract: len(extract)), depends_on=["extract"])
    await make_executor(state_store=store).execute(wf, params={"day": "1"})
    events = EventLog()
    await make_executor(state_store=store, observer=events).execute(wf, params={"day": "2"})
    newest, _ = await store.runs()
    assert newest.params == {"day": "2"}
    assert newest.ran == {"extract": "parameter `day` changed"}
    assert newest.restored == ["check"]  # restored mid-run: extract returned the same
    assert newest.counts == {**ZERO, "completed": 1, "restored": 1}
    assert {e.run_id for e in events.events} == {newest.run_id}  # the events' run id


@pytest.mark.anyio
async def test_a_partial_run_counts_its_selection_only(path: Path, make_executor: Any) -> None:
    store = open_store(path)
    wf = daily()
    wf.add_task(Task("other", lambda: 1))
    await make_executor(state_store=store).execute(wf, params={"day": "1"})
    await make_executor(state_store=store).execute(wf, params={"day": "1"}, from_tasks=["check"])
    newest, _ = await store.runs()
    # extract's saved result was taken as it is: neither run nor restored by this run
    assert newest.ran == {"check": "selected with from_tasks"}
    assert newest.restored == ["report"]  # check returned what it did
    assert newest.counts == {**ZERO, "completed": 1, "restored": 1}


@pytest.mark.anyio
async def test_a_plan_is_not_a_run_and_records_none(path: Path, make_executor: Any) -> None:
    store = open_store(path)
    await make_executor(state_store=store).execute(daily(), params={"day": "1"})
    plan = await make_executor(state_store=store).plan(daily(), params={"day": "2"})
    assert plan["extract"].action == "run"
    assert len(await store.runs()) == 1


@pytest.mark.anyio
async def test_a_failed_run_records_what_failed_and_what_was_skipped(
    path: Path, make_executor: Any
) -> None:
    store = open_store(path)
    with pytest.raises(WorkflowExecutionError):
        await make_executor(state_store=store).execute(daily(fail=True), params={"day": "d"})
    [run] = await store.runs()
    assert run.status == "FAILED"
    assert run.ended is not None
    assert run.counts == {**ZERO, "completed": 1, "failed": 1, "skipped": 1}
    assert run.ran == {"extract": "no saved result", "check": "no saved result"}
    assert run.restored == []

    # the next run runs the failed task again, and says why
    with pytest.raises(WorkflowExecutionError):
        await make_executor(state_store=store).execute(daily(fail=True), params={"day": "d"})
    newest = (await store.runs())[0]
    assert newest.restored == ["extract"]
    assert list(newest.ran) == ["check"]  # why: the plan's reason (see the README)
    assert newest.counts == {**ZERO, "restored": 1, "failed": 1, "skipped": 1}


@pytest.mark.anyio
async def test_runs_come_newest_first_by_workflow_and_limit(path: Path) -> None:
    store = open_store(path)
    for n, workflow in enumerate(["a", "b", "a", "b", "a"]):
        await record_begun(store, running(f"run{n}", workflow, minutes_ago=10 - n))
    assert [r.run_id for r in await store.runs()] == [f"run{n}" for n in (4, 3, 2, 1, 0)]
    assert [r.run_id for r in await store.runs(workflow="a")] == ["run4", "run2", "run0"]
    assert [r.run_id for r in await store.runs(limit=2)] == ["run4", "run3"]
    assert [r.run_id for r in await store.runs("b", limit=1)] == ["run3"]
    assert await store.runs(workflow="nope") == []
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(WorkflowValidationError, match="limit must be a whole number"):
            await store.runs(limit=bad)


@pytest.mark.anyio
async def test_a_running_run_is_reported_interrupted_once_nobody_holds_its_lease(
    path: Path,
) -> None:
    store = open_store(path)
    await record_begun(store, running("r1"))
    with holding_lease(path, "daily"):  # alive: a process holds the workflow's lease
        assert (await store.runs())[0].status == "RUNNING"
        assert (await store.get_run("r1")).status == "RUNNING"  # type: ignore[union-attr]
    assert (await store.runs())[0].status == "INTERRUPTED"
    assert (await store.get_run("r1")).status == "INTERRUPTED"  # type: ignore[union-attr]
    # reported so; the store itself is changed only by the workflow's next run
    assert recorded_runs(path) == {"r1": "RUNNING"}


@pytest.mark.anyio
async def test_a_run_whose_process_is_gone_is_reported_interrupted(path: Path) -> None:
    store = open_store(path)
    dead = running("r1")
    dead.pid, dead.host = 2**22 + 12345, socket.gethostname()  # above Linux's pid_max
    await record_begun(store, dead)
    with holding_lease(path, "daily"):  # even so: the pid decides first
        assert (await store.runs())[0].status == "INTERRUPTED"


@pytest.mark.anyio
async def test_the_next_run_records_older_running_runs_of_its_workflow_interrupted(
    path: Path, make_executor: Any
) -> None:
    store = open_store(path)
    await record_begun(store, running("old", "daily"))
    await record_begun(store, running("other", "weekly"))
    await make_executor(state_store=store).execute(daily(), params={"day": "d"})
    [new] = [r for r in await store.runs() if r.run_id not in ("old", "other")]
    recorded = recorded_runs(path)
    assert recorded == {"old": "INTERRUPTED", "other": "RUNNING", new.run_id: "COMPLETED"}
    old = await store.get_run("old")
    assert old is not None
    assert old.ended is None


@pytest.mark.anyio
async def test_gc_trims_runs_that_started_before_gc_days(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStateStore(path, enable_gc=False)
    await record_begun(store, running("ancient", minutes_ago=3 * 24 * 60))
    await record_begun(store, running("recent", minutes_ago=23 * 60))
    assert set(recorded_runs(path)) == {"ancient", "recent"}  # enable_gc=False keeps all
    trimmed = SQLiteStateStore(path, gc_days=1)
    assert [r.run_id for r in await trimmed.runs()] == ["recent"]
    assert set(recorded_runs(path)) == {"recent"}


@pytest.mark.anyio
async def test_a_damaged_history_line_is_skipped_and_the_state_file_left_alone(
    tmp_path: Path, make_executor: Any
) -> None:
    path = tmp_path / "state.json"
    store = JSONStateStore(path)
    await make_executor(state_store=store).execute(daily(), params={"day": "d"})
    [first] = await store.runs()
    history = tmp_path / "state.json.runs.jsonl"
    state = snapshot(path)
    good = history.read_bytes()
    # a line that is not a run, one that is not JSON, then a torn last line (a crash
    # mid-append: no newline)
    write(history, good + b'{"run_id": 3}\nnot json\n{"run_id": "torn", "workf')
    assert await store.runs() == [first]
    assert snapshot(path) == state
    assert history.read_bytes() == good + b'{"run_id": 3}\nnot json\n'  # torn line cut off

    write(history, history.read_bytes() + b'{"run_id": "torn", "workf')
    await make_executor(state_store=store).execute(daily(), params={"day": "d"})
    newest, oldest = await store.runs()
    assert (oldest, newest.status) == (first, "COMPLETED")
    assert b"torn" not in history.read_bytes()


@pytest.mark.anyio
async def test_a_line_torn_by_another_writer_during_a_run_is_cut_before_its_end(
    tmp_path: Path, make_executor: Any
) -> None:
    path = tmp_path / "state.json"
    history = tmp_path / "state.json.runs.jsonl"

    def crash_elsewhere() -> int:
        # another process killed mid-append while this run runs
        write(history, history.read_bytes() + b'{"run_id": "torn", "workf')
        return 1

    wf = Workflow("elsewhere")
    wf.add_task(Task("crash_elsewhere", crash_elsewhere))
    store = JSONStateStore(path)
    await make_executor(state_store=store).execute(wf)
    [run] = await store.runs()
    assert (run.status, run.counts["completed"]) == ("COMPLETED", 1)
    assert b"torn" not in history.read_bytes()
