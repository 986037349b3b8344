"""Store inputs that used to fail late or with misleading errors (issue 9, item 11).

``gc_days`` out of range, a lone surrogate in a name, damaged SQLite rows, and a store
path that is a FIFO.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    JSONStateStore,
    SequentialExecutor,
    SQLiteStateStore,
    StateStoreError,
    Task,
    Workflow,
    WorkflowValidationError,
)
from tests._cli_helpers import flowweaver_cmd

# -- gc_days -----------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [1_000_000, 10**30, 0, -5])
def test_gc_days_out_of_range_is_refused_at_construction(tmp_path: Path, days: int) -> None:
    with pytest.raises(WorkflowValidationError, match=r"above 0 and at most 700,000"):
        SQLiteStateStore(tmp_path / "s.db", gc_days=days)


def test_the_largest_gc_days_works_in_a_run(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "s.db", gc_days=700_000)
    wf = Workflow("gc")
    wf.add_task(Task("one", lambda: 1))
    SequentialExecutor(store).execute(wf)
    assert store.list_all_tasks("gc") == ["one"]


# -- names -------------------------------------------------------------------------------------

SURROGATE = "bad\udc80name"


def test_a_task_name_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"task name .*lone surrogate"):
        Task(SURROGATE, lambda: 1)


def test_a_workflow_name_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"workflow name .*lone surrogate"):
        Workflow(SURROGATE)


def test_a_decorated_function_named_with_a_lone_surrogate_is_refused_when_added() -> None:
    from flowweaver import task

    @task(name=SURROGATE)
    def f() -> int:
        return 1

    with pytest.raises(WorkflowValidationError, match="lone surrogate"):
        Workflow("w").add_task(f)


def test_names_outside_ascii_that_utf8_holds_are_fine() -> None:
    Workflow("ünïcödé 任务").add_task(Task("emoji 🚀", lambda: 1))


# -- damaged SQLite rows -----------------------------------------------------------------------


def damaged(tmp_path: Path, column: str, sql_value: str) -> Path:
    """A store with task ``t1`` of workflow ``wf`` saved, then ``column`` set by SQL."""
    path = tmp_path / "s.db"
    wf = Workflow("wf")
    wf.add_task(Task("t1", lambda: 1))
    SequentialExecutor(SQLiteStateStore(path)).execute(wf)
    with closing(sqlite3.connect(path)) as db, db:  # closing(): `with db` only commits
        db.execute(f"UPDATE tasks SET {column} = {sql_value} WHERE task_name = 't1'")
    return path


@pytest.mark.parametrize(
    ("column", "sql_value", "problem"),
    [
        ("status", "'BOGUS'", "its status 'BOGUS' is not one of PENDING"),
        ("error", "CAST(x'ff41' AS TEXT)", "its 'error' is not valid UTF-8 text"),
        ("status", "CAST(x'c3' AS TEXT)", "its 'status' is not valid UTF-8 text"),
        ("timestamp", "'yesterday'", "its timestamp 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_a_damaged_sqlite_row_is_named_with_what_is_wrong(
    tmp_path: Path, column: str, sql_value: str, problem: str
) -> None:
    path = damaged(tmp_path, column, sql_value)
    with pytest.raises(StateStoreError) as info:
        SQLiteStateStore(path).list_records()
    message = str(info.value)
    assert "damaged record (workflow 'wf', task 't1')" in message
    assert problem in message
    assert "serializer" not in message
    assert "permissions" not in message


def test_a_run_on_a_damaged_row_says_which_row(tmp_path: Path) -> None:
    path = damaged(tmp_path, "status", "'BOGUS'")
    wf = Workflow("wf")
    wf.add_task(Task("t1", lambda: 1))
    with pytest.raises(StateStoreError, match=r"task 't1'\): its status 'BOGUS'"):
        SequentialExecutor(SQLiteStateStore(path)).execute(wf)


@pytest.mark.parametrize("how", ["blocking", "asyncio", "trio"])
@pytest.mark.parametrize(("column", "raw"), [("error", "x'ff41'"), ("inputs", "x'c3'")])
def test_a_run_on_a_row_that_is_not_utf8_says_which_row_and_column(
    tmp_path: Path, how: str, column: str, raw: str
) -> None:
    # A run's load takes sqlite3's strict decoding as proof that no text is damaged and
    # checks nothing (Database.select); text that is not UTF-8 sends the query through
    # the surrogate-escaping decoder, and then every column is checked.
    import anyio

    import flowweaver.aio

    path = damaged(tmp_path, column, f"CAST({raw} AS TEXT)")
    wf = Workflow("wf")
    wf.add_task(Task("t1", lambda: 1))

    def run() -> None:
        if how == "blocking":
            SequentialExecutor(SQLiteStateStore(path)).execute(wf)
        else:
            executor = flowweaver.aio.SequentialExecutor(flowweaver.aio.SQLiteStateStore(path))
            anyio.run(executor.execute, wf, backend=how)

    with pytest.raises(StateStoreError, match=rf"task 't1'\): its '{column}' is not valid UTF-8"):
        run()


def test_select_says_whether_text_was_decoded_strictly(tmp_path: Path) -> None:
    from flowweaver._store._db import Database

    path = damaged(tmp_path, "error", "CAST(x'ff41' AS TEXT)")
    db = Database.connect(str(path), 1.0)
    try:
        assert db.select("SELECT task_name FROM tasks") == ([("t1",)], True)
        rows, strict = db.select("SELECT error FROM tasks")
        assert (rows, strict) == ([("\udcffA",)], False)
        assert db.select("SELECT task_name FROM tasks")[1] is True  # each query anew
    finally:
        db.close()


# -- a FIFO for a store ------------------------------------------------------------------------

fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")


def fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


@fifo_only
@pytest.mark.timeout(30)
@pytest.mark.parametrize("cls", [JSONStateStore, SQLiteStateStore])
def test_a_store_that_is_a_fifo_is_refused(tmp_path: Path, cls: Any) -> None:
    path = fifo(tmp_path, "s.json" if cls is JSONStateStore else "s.db")
    with pytest.raises(StateStoreError, match="not a regular file"):
        cls(path).list_records()


@fifo_only
@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs are POSIX")
@pytest.mark.parametrize("name", ["s.json", "s.db"])
def test_flowweaver_status_on_a_fifo_exits_2(tmp_path: Path, name: str) -> None:
    fifo(tmp_path, name)
    done = flowweaver_cmd("status", name, cwd=tmp_path, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not a regular file" in done.stderr
