"""``capture_logs``: the tail of each task's log records and print output, on the task
and in its saved record, under every executor form and both backends."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
import time
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import flowweaver
import flowweaver.aio
from flowweaver import (
    JSONStateStore,
    Skip,
    SQLiteStateStore,
    StateStoreError,
    Task,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
)
from flowweaver._capture import Tail, format_record
from flowweaver._engine import _proc_child
from tests import process_tasks
from tests.run_helpers import PROCESS_FORMS, Runner

log = logging.getLogger("capture.etl")


def _runner(form: tuple[type, bool], backend: str) -> Runner:
    return Runner(None, *form, backend)


def _chatty_sync(name: str) -> str:
    print(f"{name} says hello")
    log.warning("%s is careful", name)
    sys.stderr.write(f"{name} to stderr\n")
    return name


async def _chatty_async(name: str) -> str:
    await anyio.lowlevel.checkpoint()
    print(f"{name} says hello")
    log.warning("%s is careful", name)
    await anyio.lowlevel.checkpoint()
    sys.stderr.write(f"{name} to stderr\n")
    return name


def _expected(name: str) -> list[str]:
    return [f"{name} says hello", f"WARNING capture.etl: {name} is careful", f"{name} to stderr"]


@pytest.mark.parametrize("kind", ["sync", "async", "sync+timeout"])
def test_each_task_keeps_its_own_prints_and_records_under_every_form(
    form: tuple[type, bool], backend: str, kind: str
) -> None:
    wf = Workflow("chatty")
    for n in ("a", "b", "c"):
        if kind == "async":
            wf.add_task(Task(n, partial(_chatty_async, n)))
        else:
            timeout = 30 if kind == "sync+timeout" else None
            wf.add_task(Task(n, partial(_chatty_sync, n), timeout=timeout))
    _runner(form, backend).run(wf, capture_logs=True)
    for n in ("a", "b", "c"):
        assert wf.get_task(n).logs == _expected(n)  # type: ignore[union-attr]


def test_a_run_without_capture_logs_leaves_the_streams_alone(
    form: tuple[type, bool], backend: str
) -> None:
    out, err = sys.stdout, sys.stderr
    during: list[Any] = []

    def task() -> None:
        during.append((sys.stdout, sys.stderr))
        print("not kept")

    wf = Workflow("quiet")
    wf.add_task(Task("t", task))
    _runner(form, backend).run(wf)
    assert during == [(out, err)]
    assert (sys.stdout, sys.stderr) == (out, err)
    assert wf.get_task("t").logs == []  # type: ignore[union-attr]


def test_the_streams_are_put_back_after_a_capturing_run_even_when_it_fails(
    form: tuple[type, bool], backend: str
) -> None:
    out, err = sys.stdout, sys.stderr
    during: list[Any] = []

    def task() -> None:
        during.append(sys.stdout)
        raise ValueError("bad")

    wf = Workflow("fails")
    wf.add_task(Task("t", task))
    with pytest.raises(WorkflowExecutionError):
        _runner(form, backend).run(wf, capture_logs=True)
    assert during[0] is not out  # the tee, during the run
    assert (sys.stdout, sys.stderr) == (out, err)


def test_the_streams_are_put_back_after_ctrl_c() -> None:
    out = sys.stdout

    def task() -> None:
        print("before the interrupt")
        raise KeyboardInterrupt

    wf = Workflow("interrupted")
    wf.add_task(Task("t", task))
    with pytest.raises(KeyboardInterrupt):
        wf.execute(flowweaver.SequentialExecutor(capture_logs=True))
    assert sys.stdout is out


def test_concurrent_capturing_runs_share_the_tee_and_the_last_puts_it_back() -> None:
    out = sys.stdout
    inside = threading.Event()
    release = threading.Event()

    def slow() -> None:
        print("slow one")
        inside.set()
        assert release.wait(10)

    def quick() -> None:
        print("quick one")

    first = Workflow("first")
    first.add_task(Task("slow", slow))
    second = Workflow("second")
    second.add_task(Task("quick", quick))
    runner = threading.Thread(
        target=first.execute, args=(flowweaver.ThreadedExecutor(capture_logs=True),)
    )
    runner.start()
    assert inside.wait(10)
    second.execute(flowweaver.ThreadedExecutor(capture_logs=True))
    assert sys.stdout is not out  # the first run still captures
    release.set()
    runner.join(10)
    assert sys.stdout is out
    assert first.get_task("slow").logs == ["slow one"]  # type: ignore[union-attr]
    assert second.get_task("quick").logs == ["quick one"]  # type: ignore[union-attr]


def test_another_threads_prints_at_the_same_time_are_not_the_tasks(
    form: tuple[type, bool], backend: str
) -> None:
    stop = threading.Event()
    started = threading.Event()

    def other() -> None:
        while not stop.is_set():
            print("from another thread")
            started.set()
            time.sleep(0.0005)

    def task() -> None:
        assert started.wait(10)
        for i in range(50):
            print(f"mine {i}")
            time.sleep(0.0005)
        # a thread the task starts itself is another thread too
        side = threading.Thread(target=print, args=("from the task's own thread",))
        side.start()
        side.join()

    async def async_task() -> None:
        assert started.wait(10)
        for i in range(50):
            print(f"mine {i}")
            await anyio.sleep(0.0005)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        wf = Workflow("crowded")
        wf.add_task(Task("sync", task))
        wf.add_task(Task("async", async_task))
        _runner(form, backend).run(wf, capture_logs=True)
    finally:
        stop.set()
        thread.join()
    for name in ("sync", "async"):
        assert wf.get_task(name).logs == [f"mine {i}" for i in range(50)]  # type: ignore[union-attr]


def test_a_retry_goes_on_below_the_attempt_before(form: tuple[type, bool], backend: str) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        print(f"try {len(calls)}")
        if len(calls) < 3:
            raise ConnectionError("again")
        return "ok"

    wf = Workflow("flaky")
    wf.add_task(Task("t", flaky, retries=2))
    _runner(form, backend).run(wf, capture_logs=True)
    assert wf.get_task("t").logs == [  # type: ignore[union-attr]
        "try 1",
        "--- attempt 2 ---",
        "try 2",
        "--- attempt 3 ---",
        "try 3",
    ]


def test_an_attempt_that_writes_nothing_leaves_no_separator() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            print("try 1")
        if len(calls) < 3:
            raise ConnectionError("again")  # attempts 2 and 3 print nothing
        return "ok"

    wf = Workflow("quiet-retries")
    wf.add_task(Task("t", flaky, retries=2))
    flowweaver.SequentialExecutor(capture_logs=True).execute(wf)
    assert wf.get_task("t").logs == ["try 1"]  # type: ignore[union-attr]


def test_the_tail_keeps_the_last_lines_only(form: tuple[type, bool], backend: str) -> None:
    def many() -> None:
        for i in range(10):
            print(f"line {i}")
        log.error("the end")

    wf = Workflow("long")
    wf.add_task(Task("t", many))
    _runner(form, backend).run(wf, capture_logs=True, capture_logs_lines=3)
    assert wf.get_task("t").logs == ["line 8", "line 9", "ERROR capture.etl: the end"]  # type: ignore[union-attr]


def test_records_carry_their_traceback_and_are_not_taken_twice_from_stderr() -> None:
    # No handler anywhere: logging's last resort writes the record to sys.stderr (the
    # tee during the run); the tail has the record once, as a record.
    quiet = logging.getLogger("capture.lastresort")
    quiet.propagate = False
    try:

        def task() -> None:
            try:
                {}["missing"]
            except KeyError:
                quiet.exception("lookup failed")
            print("goes on", end="")  # no newline: still a line of its own

        wf = Workflow("traced")
        wf.add_task(Task("t", task))
        wf.execute(flowweaver.ThreadedExecutor(capture_logs=True))
    finally:
        quiet.propagate = True
    logs = wf.get_task("t").logs  # type: ignore[union-attr]
    assert logs[0] == "ERROR capture.lastresort: lookup failed"
    assert logs[1] == "Traceback (most recent call last):"
    assert logs[-2] == "KeyError: 'missing'"
    assert logs[-1] == "goes on"
    assert sum("lookup failed" in line for line in logs) == 1


def test_a_record_below_its_loggers_level_is_not_kept() -> None:
    def task() -> None:
        log.debug("too fine")  # capture.etl has no level: the root's WARNING
        log.warning("kept")

    wf = Workflow("levels")
    wf.add_task(Task("t", task))
    wf.execute(flowweaver.SequentialExecutor(capture_logs=True))
    assert wf.get_task("t").logs == ["WARNING capture.etl: kept"]  # type: ignore[union-attr]


def test_a_long_line_is_cut_and_the_tail_bounds_it() -> None:
    tail = Tail(5)
    tail.write("stdout", "x" * 20_000)  # never ends its line
    tail.write("stdout", "abc\r\nde")
    assert tail.take() == [
        "x" * 10_000 + "... (10000 more characters)",
        "abc",
        "de",
    ]


def test_the_worker_process_formats_records_as_the_engine_does() -> None:
    try:
        raise ValueError("inside")
    except ValueError:
        info = sys.exc_info()
    for record in (
        logging.LogRecord("etl", logging.WARNING, __file__, 1, "a %s", ("b",), None),
        logging.LogRecord("etl", logging.ERROR, __file__, 1, "failed", (), info),
        logging.LogRecord("etl", logging.INFO, __file__, 1, "%d %d", (1,), None),  # bad args
    ):
        assert _proc_child._format_record(record) == format_record(record)
    a, b = Tail(3), _proc_child._Tail(3)
    for text in ("one\ntw", "o\r\nthree", "\nfour", "y" * 10_001, "\n"):
        a.write("stdout", text)
        b.write("stdout", text)
    assert a.take() == b.take()


def test_a_task_that_skips_keeps_its_lines(form: tuple[type, bool], backend: str) -> None:
    def skipper() -> None:
        print("nothing to do")
        raise Skip("no input today")

    wf = Workflow("skips")
    wf.add_task(Task("t", skipper))
    _runner(form, backend).run(wf, capture_logs=True)
    assert wf.get_task("t").logs == ["nothing to do"]  # type: ignore[union-attr]


def test_items_of_a_map_keep_their_own_lines(form: tuple[type, bool], backend: str) -> None:
    def each(rows: int) -> int:
        print(f"item {rows}")
        return rows

    wf = Workflow("mapped")
    wf.add_task(Task("rows", lambda: [1, 2]))
    wf.add_task(Task("each", each, map_over="rows"), depends_on=["rows"])
    _runner(form, backend).run(wf, capture_logs=True)
    t = wf.get_task("each")
    assert t is not None
    assert [i.logs for i in t.items] == [["item 1"], ["item 2"]]
    assert t.logs == []  # the mapped task itself runs no code


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_capture_logs_must_be_a_bool(value: Any) -> None:
    with pytest.raises(WorkflowValidationError, match=r"capture_logs must be True or False"):
        flowweaver.ThreadedExecutor(capture_logs=value)


@pytest.mark.parametrize("value", [0, -1, 2.5, "200", True])
def test_capture_logs_lines_must_be_a_whole_number_of_at_least_one(value: Any) -> None:
    with pytest.raises(WorkflowValidationError, match=r"capture_logs_lines must be"):
        flowweaver.aio.AsyncExecutor(capture_logs=True, capture_logs_lines=value)


# -- worker processes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [f[0] for f in PROCESS_FORMS])
def test_a_task_in_a_worker_process_sends_its_lines_back(name: str, backend: str) -> None:
    form = next((cls, awaited) for n, cls, awaited in PROCESS_FORMS if n == name)
    wf = Workflow("apart")
    wf.add_task(Task("chatty", process_tasks.chatty))
    wf.add_task(Task("fails", process_tasks.chatty_then_fail))
    with pytest.raises(WorkflowExecutionError):
        _runner(form, backend).run(wf, capture_logs=True, capture_logs_lines=4)
    # the tail of 4: the task's own thread's line is not among them
    assert wf.get_task("chatty").logs == [  # type: ignore[union-attr]
        "line 0",
        "line 1",
        "line 2",
        "WARNING proc: careful now",
    ]
    assert wf.get_task("fails").logs == ["about to fail"]  # type: ignore[union-attr]


def test_a_worker_process_of_a_run_without_capture_sends_nothing() -> None:
    wf = Workflow("apart")
    wf.add_task(Task("chatty", process_tasks.chatty))
    wf.execute(flowweaver.ProcessExecutor(1))
    assert wf.get_task("chatty").logs == []  # type: ignore[union-attr]


def test_dask_refuses_capture_logs() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(WorkflowValidationError, match=r"capture_logs does not work with Dask"):
        flowweaver.DaskExecutor(capture_logs=True)


# -- saved with the record, restored with it ------------------------------------------------


def _chatty_workflow(fail: bool = False) -> Workflow:
    def extract() -> list[int]:
        print("extracting")
        return [1, 2]

    def load(extract: list[int]) -> int:
        log.warning("loading %d rows", len(extract))
        if fail:
            raise ValueError("cannot load")
        return len(extract)

    wf = Workflow("etl")
    wf.add_task(Task("extract", extract))
    wf.add_task(Task("load", load), depends_on=["extract"])
    return wf


def test_the_lines_are_saved_and_a_restored_task_keeps_them(stored: Runner) -> None:
    wf = _chatty_workflow()
    stored.run(wf, capture_logs=True)
    records = {r.task_name: r for r in stored.store.list_records("etl")}
    assert records["extract"].logs == ["extracting"]
    assert records["load"].logs == ["WARNING capture.etl: loading 2 rows"]

    again = _chatty_workflow()
    stored.run(again)  # restores both, whether or not this run captures
    assert again.get_task("extract").logs == ["extracting"]  # type: ignore[union-attr]
    assert again.get_task("load").logs == ["WARNING capture.etl: loading 2 rows"]  # type: ignore[union-attr]


def test_a_failed_tasks_record_keeps_its_lines(stored: Runner) -> None:
    wf = _chatty_workflow(fail=True)
    with pytest.raises(WorkflowExecutionError):
        stored.run(wf, capture_logs=True)
    records = {r.task_name: r for r in stored.store.list_records("etl")}
    assert records["load"].status.value == "FAILED"
    assert records["load"].logs == ["WARNING capture.etl: loading 2 rows"]


def test_a_run_without_capture_saves_no_lines(stored: Runner) -> None:
    stored.run(_chatty_workflow())
    assert [r.logs for r in stored.store.list_records("etl")] == [None, None]


def test_a_json_record_has_logs_only_when_captured(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    flowweaver.SequentialExecutor(JSONStateStore(path)).execute(_chatty_workflow())
    assert all("logs" not in raw for raw in json.loads(path.read_text()).values())
    flowweaver.SequentialExecutor(JSONStateStore(path), fresh=True, capture_logs=True).execute(
        _chatty_workflow()
    )
    saved = json.loads(path.read_text())
    assert saved["extract"]["logs"] == ["extracting"]
    assert JSONStateStore(path).load_task_state("extract")["logs"] == ["extracting"]  # type: ignore[index]


def test_damaged_logs_are_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    flowweaver.SequentialExecutor(JSONStateStore(path), capture_logs=True).execute(
        _chatty_workflow()
    )
    saved = json.loads(path.read_text())
    saved["extract"]["logs"] = "not a list"
    path.write_text(json.dumps(saved))
    with pytest.raises(StateStoreError, match=r"state\.json.*'logs' that are not a list"):
        JSONStateStore(path).list_records()

    db = tmp_path / "state.db"
    flowweaver.SequentialExecutor(SQLiteStateStore(db), capture_logs=True).execute(
        _chatty_workflow()
    )
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE tasks SET logs = '{\"a\": 1}' WHERE task_name = 'extract'")
    with pytest.raises(StateStoreError, match=r"state\.db.*'extract'.*'logs' are not a JSON list"):
        SQLiteStateStore(db).list_records()


_OLD_TABLE = """
CREATE TABLE tasks (
    workflow TEXT NOT NULL DEFAULT '', task_name TEXT NOT NULL, status TEXT NOT NULL,
    result TEXT, error TEXT, timestamp DATETIME NOT NULL, version TEXT, fingerprint TEXT,
    token TEXT, inputs TEXT, PRIMARY KEY (workflow, task_name)
) WITHOUT ROWID"""


def test_a_database_made_before_logs_existed_gets_the_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(_OLD_TABLE)
        conn.execute(
            "INSERT INTO tasks (workflow, task_name, status, result, timestamp) "
            "VALUES ('etl', 'old', 'COMPLETED', '1', '2026-01-01T00:00:00+00:00')"
        )
    store = SQLiteStateStore(db, enable_gc=False)
    [old] = store.list_records()
    assert (old.task_name, old.result, old.logs) == ("old", 1, None)
    flowweaver.SequentialExecutor(store, capture_logs=True).execute(_chatty_workflow())
    records = {r.task_name: r.logs for r in store.list_records("etl")}
    assert records == {
        "old": None,
        "extract": ["extracting"],
        "load": ["WARNING capture.etl: loading 2 rows"],
    }


@pytest.mark.anyio
async def test_the_awaitable_stores_read_the_lines(tmp_path: Path) -> None:
    flowweaver.SequentialExecutor(SQLiteStateStore(tmp_path / "s.db"), capture_logs=True).execute(
        _chatty_workflow()
    )
    flowweaver.SequentialExecutor(JSONStateStore(tmp_path / "s.json"), capture_logs=True).execute(
        _chatty_workflow()
    )
    for store in (
        flowweaver.aio.SQLiteStateStore(tmp_path / "s.db"),
        flowweaver.aio.JSONStateStore(tmp_path / "s.json"),
    ):
        records = {r.task_name: r.logs for r in await store.list_records("etl")}
        assert records["extract"] == ["extracting"]
        state = await store.load_task_state("extract")
        assert state is not None
        assert state["logs"] == ["extracting"]


def test_a_result_the_store_refuses_fails_the_task_with_its_lines(stored: Runner) -> None:
    def unsaveable() -> object:
        print("made something odd")
        return object()

    wf = Workflow("odd")
    wf.add_task(Task("t", unsaveable))
    with pytest.raises(WorkflowExecutionError):
        stored.run(wf, capture_logs=True)
    assert wf.get_task("t").logs == ["made something odd"]  # type: ignore[union-attr]
    [record] = stored.store.list_records("odd")
    assert record.logs == ["made something odd"]


def test_the_tee_writes_to_its_stream_one_write_at_a_time() -> None:
    # CPython's TextIOWrapper lets the GIL go while it flushes, and a second thread's
    # write can then corrupt it (a crash seen once in this file's test of another thread
    # printing): the tee hands its stream one write at a time.
    from flowweaver._capture import Tee

    inside = 0
    overlaps = 0
    lock = threading.Lock()

    class Slow:
        def write(self, text: str) -> int:
            nonlocal inside, overlaps
            with lock:
                inside += 1
                overlaps += inside > 1
            time.sleep(0.002)  # lets the GIL go, as a flush does
            with lock:
                inside -= 1
            return len(text)

    tee = Tee(Slow(), "stdout")  # type: ignore[arg-type]
    threads = [
        threading.Thread(target=lambda: [tee.write("x") for _ in range(20)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == 0
