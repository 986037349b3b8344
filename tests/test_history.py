"""The run history around a run: cancellation, a store without history, a store that
fails to record, and a run killed with SIGKILL (see tests/_async/test_run_history.py for
what a run records)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import flowweaver.aio as aio
from flowweaver import (
    JSONStateStore,
    SequentialExecutor,
    SQLiteStateStore,
    StateStoreError,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
)
from flowweaver._engine._history import outcome
from flowweaver._sync._json_store import JSONSession
from flowweaver._sync._sqlite_store import SQLiteSession
from tests.helpers import async_returning, raising
from tests.store_helpers import completed, recorded_runs
from tests.test_crash_resume import CHILD, TOTAL, start_child, wait_started
from tests.test_store_sessions import AsyncDictStore, DictStore

ZERO = {"completed": 0, "failed": 0, "skipped": 0, "restored": 0, "pending": 0}
STORES = {"json": (JSONStateStore, JSONSession), "sqlite": (SQLiteStateStore, SQLiteSession)}


def store_file(tmp_path: Path, kind: str) -> Path:
    return tmp_path / ("state.json" if kind == "json" else "state.db")


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["json", "sqlite"])
async def test_a_cancelled_run_is_recorded_cancelled(tmp_path: Path, kind: str) -> None:
    path = store_file(tmp_path, kind)
    inside = anyio.Event()

    async def slow() -> None:
        inside.set()
        await anyio.sleep(60)

    wf = Workflow("cancelled")
    wf.add_task(Task("first", async_returning(1)))
    wf.add_task(Task("slow", slow), depends_on=["first"])
    wf.add_task(Task("after", async_returning(2)), depends_on=["slow"])
    store = aio.JSONStateStore(path) if kind == "json" else aio.SQLiteStateStore(path)
    executor = aio.AsyncExecutor(state_store=store)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(executor.execute, wf)
            await inside.wait()
            tg.cancel_scope.cancel()
    [run] = await store.runs()
    assert run.status == "CANCELLED"
    assert run.ended is not None
    assert run.counts == {**ZERO, "completed": 1, "pending": 2}
    assert run.ran == {"first": "no saved result", "slow": "no saved result"}
    assert recorded_runs(path) == {run.run_id: "CANCELLED"}


@pytest.mark.anyio
@pytest.mark.parametrize("store_cls", [DictStore, AsyncDictStore])
async def test_a_store_without_history_methods_runs_and_resumes_as_before(
    store_cls: type,
) -> None:
    store = store_cls()
    wf = Workflow("plain")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda a: a + 1), depends_on=["a"])
    await aio.AsyncExecutor(state_store=store).execute(wf)
    await aio.AsyncExecutor(state_store=store).execute(wf)
    assert wf.get_task("b").result == 2  # type: ignore[union-attr]
    assert sorted(store.states) == ["a", "b"]


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_store_that_cannot_record_the_begin_fails_the_run_before_any_task_runs(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_cls, session_cls = STORES[kind]
    store = store_cls(store_file(tmp_path, kind))

    def broken(self: Any, run: Any) -> None:
        raise StateStoreError("the disk is full")

    monkeypatch.setattr(session_cls, "begin_run", broken)
    ran: list[str] = []
    wf = Workflow("w")
    wf.add_task(Task("a", lambda: ran.append("a")))
    with pytest.raises(StateStoreError, match="the disk is full"):
        SequentialExecutor(state_store=store).execute(wf)
    assert ran == []
    monkeypatch.undo()
    SequentialExecutor(state_store=store).execute(wf)  # the lease was let go
    assert ran == ["a"]


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_failure_to_record_the_end_is_logged_for_a_failing_run_and_raised_otherwise(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store_cls, session_cls = STORES[kind]
    store = store_cls(store_file(tmp_path, kind))

    def broken(self: Any, run: Any) -> None:
        raise StateStoreError("the disk is full")

    monkeypatch.setattr(session_cls, "end_run", broken)
    failing = Workflow("failing")
    failing.add_task(Task("bad", raising(ValueError("boom"))))
    # the run's own failure, not the store's
    with caplog.at_level(logging.ERROR, logger="flowweaver"), pytest.raises(WorkflowExecutionError):
        SequentialExecutor(state_store=store).execute(failing)
    assert "could not record the end of run" in caplog.text
    assert "the disk is full" in caplog.text

    fine = Workflow("fine")
    fine.add_task(Task("good", lambda: 1))
    with pytest.raises(StateStoreError, match="the disk is full"):
        SequentialExecutor(state_store=store).execute(fine)
    assert fine.get_task("good").status is TaskStatus.COMPLETED  # type: ignore[union-attr]


def test_the_outcome_counts_each_task_once_and_names_the_status() -> None:
    tasks = [Task(n, lambda: None) for n in "abcdef"]
    states = [TaskStatus.COMPLETED, TaskStatus.COMPLETED, TaskStatus.FAILED]
    states += [TaskStatus.SKIPPED, TaskStatus.RUNNING, TaskStatus.PENDING]
    for t, status in zip(tasks, states, strict=True):
        t._state = (status, None, None)
    counts = {"completed": 1, "failed": 1, "skipped": 1, "restored": 1, "pending": 2}
    assert outcome(tasks, {"b"}, ok=True, interrupted=False) == ("FAILED", counts)
    assert outcome(tasks, {"b"}, ok=True, interrupted=True) == ("CANCELLED", counts)
    assert outcome(tasks[:2], {"b"}, ok=True, interrupted=False)[0] == "COMPLETED"
    assert outcome(tasks[:2], set(), ok=False, interrupted=False)[0] == "FAILED"


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_history_survives_a_sigkill_mid_run_and_shows_the_run_interrupted(
    tmp_path: Path, kind: str
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = store_file(tmp_path, kind)
    proc = start_child(script, path, "sequential", tmp_path / "killed.log")
    wait_started(proc, tmp_path / "killed.log")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    store = STORES[kind][0](path)
    [killed] = store.runs()
    assert (killed.workflow, killed.status, killed.ended) == ("crash", "INTERRUPTED", None)
    assert killed.pid == proc.pid
    assert recorded_runs(path) == {killed.run_id: "RUNNING"}  # as the kill left it
    saved = completed(path)

    proc = start_child(script, path, "sequential", tmp_path / "next.log")
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    newest, older = store.runs()
    assert older.run_id == killed.run_id
    assert older.status == "INTERRUPTED"
    assert recorded_runs(path)[killed.run_id] == "INTERRUPTED"  # now recorded so
    assert newest.status == "COMPLETED"
    assert set(newest.restored) == saved
    assert newest.counts == {**ZERO, "completed": TOTAL - len(saved), "restored": len(saved)}


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_task_whose_cache_key_raises_is_recorded_as_run_and_failed(
    tmp_path: Path, kind: str
) -> None:
    store = STORES[kind][0](store_file(tmp_path, kind))

    def bad_key(**kwargs: Any) -> str:
        raise KeyError("no key")

    wf = Workflow("keyed")
    wf.add_task(Task("keyed", lambda: 1, cache_key=bad_key))
    with pytest.raises(WorkflowExecutionError):
        SequentialExecutor(state_store=store).execute(wf)
    [run] = store.runs()
    assert (run.status, run.ran) == ("FAILED", {"keyed": "no saved result"})
    assert run.counts == {**ZERO, "failed": 1}


def test_a_run_refused_before_anything_ran_leaves_no_history(tmp_path: Path) -> None:
    from flowweaver import SQLiteStateStore, WorkflowValidationError

    store = SQLiteStateStore(str(tmp_path / "h.db"))
    wf = Workflow("refused")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda a: a), depends_on=["a"])
    # b needs a's saved result, and nothing is saved yet.
    with pytest.raises(WorkflowValidationError, match="'a'"):
        SequentialExecutor(state_store=store).execute(wf, from_tasks=["b"])
    assert store.runs() == []


def test_a_run_reads_only_its_own_runs_whatever_the_history_holds(tmp_path: Path) -> None:
    # Every session collects old runs and every begin_run marks its workflow's RUNNING
    # runs INTERRUPTED: each must search an index, not scan a month of runs per run (a
    # 10-task run over 20,000 past runs took 11.9 ms with the scans, 0.9 without).
    import sqlite3
    from contextlib import closing

    from flowweaver._store._runs import GC_RUNS, MARK_INTERRUPTED

    path = tmp_path / "s.db"
    wf = Workflow("wf")
    wf.add_task(Task("a", lambda: 1))
    SequentialExecutor(state_store=SQLiteStateStore(str(path))).execute(wf)
    with closing(sqlite3.connect(path)) as db:
        for sql, params in ((GC_RUNS, ["x"]), (MARK_INTERRUPTED, ["wf", "r"])):
            plan = " ".join(str(r) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "SCAN" not in plan, (sql, plan)
            assert "USING INDEX" in plan, (sql, plan)


@pytest.mark.parametrize(
    "value",
    [{}, [], {"day": "2026-12-01"}, ["a", "b"], {"n": 1, "ü": "ß"}, {"odd": {1, 2}}, 0, "", None],
)
def test_a_history_column_is_the_json_of_its_value_empty_or_not(value: Any) -> None:
    # Empty containers skip the encoder; every value must still come out as json.dumps
    # (with repr for what JSON cannot hold) would write it.
    import json

    from flowweaver._store._runs import _json

    assert _json(value) == json.dumps(value, ensure_ascii=False, default=repr)
