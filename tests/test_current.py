"""``flowweaver.current()``: the running task's context, wherever its code runs, and the
``fw_*`` attributes of log records during a run."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import flowweaver
from flowweaver import (
    FlowWeaverError,
    RunEvent,
    RunStarted,
    Task,
    TaskContext,
    Workflow,
    current,
)
from tests import process_tasks
from tests.run_helpers import Runner


def _runner(form: tuple[type, bool], backend: str) -> Runner:
    return Runner(None, *form, backend)


def _seen(c: TaskContext | None) -> tuple[Any, ...]:
    assert c is not None
    return (c.workflow, c.task, c.item, c.attempt, c.run_id, dict(c.params), c.parent_run_id)


def test_outside_a_task_it_raises_or_returns_the_default() -> None:
    with pytest.raises(FlowWeaverError, match=r"outside a running task.*default=None"):
        current()
    assert current(default=None) is None
    sentinel = object()
    assert current(default=sentinel) is sentinel


@pytest.mark.parametrize("kind", ["sync", "async", "sync+timeout", "retried"])
def test_each_task_sees_its_own_context_under_every_form(
    form: tuple[type, bool], backend: str, kind: str
) -> None:
    runner = _runner(form, backend)
    seen: dict[str, tuple[Any, ...]] = {}
    attempts: dict[str, list[int]] = {"a": [], "b": []}

    def sync_task(name: str, date: str = "") -> str:
        seen[name] = _seen(current())
        return name

    async def async_task(name: str, date: str = "") -> str:
        await anyio.lowlevel.checkpoint()
        seen[name] = _seen(current())
        return name

    def flaky(name: str, date: str = "") -> str:
        attempts[name].append(current().attempt)  # type: ignore[union-attr]
        if len(attempts[name]) < 3:
            raise ConnectionError("again")
        seen[name] = _seen(current())
        return name

    wf = Workflow("ctx")
    for n in ("a", "b"):
        if kind == "async":
            t = Task(n, partial(async_task, n))
        elif kind == "retried":
            t = Task(n, partial(flaky, n), retries=5)
        else:
            t = Task(n, partial(sync_task, n), timeout=30 if kind == "sync+timeout" else None)
        wf.add_task(t)
    events: list[RunEvent] = []
    runner.run(wf, params={"date": "2026-12-02"}, observer=events.append)
    run_id = next(e.run_id for e in events if isinstance(e, RunStarted))
    last = 3 if kind == "retried" else 1
    for n in ("a", "b"):
        assert seen[n] == ("ctx", n, None, last, run_id, {"date": "2026-12-02"}, None)
    if kind == "retried":
        assert attempts == {"a": [1, 2, 3], "b": [1, 2, 3]}
    # and nothing leaks out of the run
    assert current(default=None) is None


def test_an_item_of_a_map_sees_its_key(form: tuple[type, bool], backend: str) -> None:
    runner = _runner(form, backend)

    def load(rows: int) -> list[Any]:
        c = current()
        assert c is not None
        return [c.task, c.item]

    wf = Workflow("items")
    wf.add_task(Task("rows", lambda: [10, 20]))
    wf.add_task(Task("load", load, map_over="rows"), depends_on=["rows"])
    runner.run(wf)
    assert wf.get_task("load").result == [["load[0]", 0], ["load[1]", 1]]  # type: ignore[union-attr]


@pytest.mark.parametrize("outer", ["sequential", "threaded"])
def test_a_nested_run_has_its_own_context_and_names_its_parent(backend: str, outer: str) -> None:
    inner_seen: list[tuple[Any, ...]] = []
    outer_seen: list[tuple[Any, ...]] = []

    def inner_task() -> None:
        inner_seen.append(_seen(current()))

    def outer_task() -> None:
        inner = Workflow("inner")
        inner.add_task(Task("leaf", inner_task))
        inner.execute(flowweaver.SequentialExecutor(backend=backend))  # type: ignore[arg-type]
        outer_seen.append(_seen(current()))  # the outer context is back

    async def outer_async() -> None:
        inner = Workflow("inner-async")
        inner.add_task(Task("leaf", inner_task))
        await flowweaver.aio.AsyncExecutor().execute(inner)

    events: list[RunEvent] = []
    wf = Workflow("outer")
    wf.add_task(Task("runs_inner", outer_task))
    wf.add_task(Task("awaits_inner", outer_async))
    cls = flowweaver.SequentialExecutor if outer == "sequential" else flowweaver.ThreadedExecutor
    cls(backend=backend, observer=events.append).execute(wf)  # type: ignore[arg-type]
    outer_id = next(e.run_id for e in events if isinstance(e, RunStarted))
    assert outer_seen[0][:2] == ("outer", "runs_inner")
    assert sorted(s[0] for s in inner_seen) == ["inner", "inner-async"]
    for s in inner_seen:
        assert s[1] == "leaf"
        assert s[4] != outer_id
        assert s[6] == outer_id  # parent_run_id


def test_task_execute_gives_a_context_named_after_the_task() -> None:
    t = Task("alone", lambda: _seen(current()))
    seen = t.execute()
    assert seen[:4] == ("alone", "alone", None, 1)


def test_a_callback_runs_outside_the_task() -> None:
    found: list[Any] = []
    wf = Workflow("cb")
    wf.add_task(Task("t", lambda: 1, callbacks=[lambda task: found.append(current(default=None))]))
    flowweaver.SequentialExecutor().execute(wf)
    assert found == [None]


@pytest.mark.parametrize("func", ["sync", "async"])
def test_a_task_in_a_worker_process_sees_its_context(backend: str, func: str) -> None:
    target = process_tasks.my_context if func == "sync" else process_tasks.my_context_async
    events: list[RunEvent] = []
    wf = Workflow("apart")
    wf.add_task(Task("t", target, isolation="process", retries=1))
    flowweaver.ThreadedExecutor(backend=backend, observer=events.append).execute(  # type: ignore[arg-type]
        wf, params={"n": 3}
    )
    run_id = next(e.run_id for e in events if isinstance(e, RunStarted))
    pid, *rest = wf.get_task("t").result  # type: ignore[union-attr]
    assert rest == ["apart", "t", 1, run_id, {"n": 3}]
    import os

    assert pid != os.getpid()


# -- log records -------------------------------------------------------------------------------


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_log() -> Any:
    log = logging.getLogger("test_current.app")
    keep = Keep()
    log.addHandler(keep)
    log.setLevel(logging.INFO)
    yield keep
    log.removeHandler(keep)


def _fields(r: logging.LogRecord) -> tuple[Any, ...]:
    return tuple(
        getattr(r, f, "absent") for f in ("fw_workflow", "fw_task", "fw_attempt", "fw_run")
    )


def test_records_of_any_logger_carry_the_task_while_it_runs(
    form: tuple[type, bool], backend: str, app_log: Keep
) -> None:
    runner = _runner(form, backend)
    factory = logging.getLogRecordFactory()
    app = logging.getLogger("test_current.app")

    def work() -> None:
        app.info("inside")

    async def awork() -> None:
        app.info("inside async")

    events: list[RunEvent] = []
    wf = Workflow("logs")
    wf.add_task(Task("s", work))
    wf.add_task(Task("a", awork))
    runner.run(wf, observer=events.append)
    run_id = next(e.run_id for e in events if isinstance(e, RunStarted))
    got = sorted(_fields(r) for r in app_log.records)
    assert got == [("logs", "a", 1, run_id), ("logs", "s", 1, run_id)]
    # outside runs: no attributes, and the factory is the one we found
    app.info("after")
    assert _fields(app_log.records[-1]) == ("absent",) * 4
    assert logging.getLogRecordFactory() is factory


def test_the_context_logger_is_a_child_of_flowweaver_task(app_log: Keep) -> None:
    keep = Keep()
    parent = logging.getLogger("flowweaver.task")
    parent.addHandler(keep)
    parent.setLevel(logging.INFO)
    try:
        wf = Workflow("nightly")
        wf.add_task(Task("load", lambda: current().logger.info("loaded %d rows", 3)))  # type: ignore[union-attr]
        flowweaver.SequentialExecutor().execute(wf)
    finally:
        parent.removeHandler(keep)
        parent.setLevel(logging.NOTSET)
    (record,) = keep.records
    assert record.name == "flowweaver.task.nightly"
    assert record.getMessage() == "loaded 3 rows"
    assert _fields(record)[:3] == ("nightly", "load", 1)


def test_a_factory_installed_over_ours_keeps_working_and_ours_adds_nothing_after(
    app_log: Keep,
) -> None:
    original = logging.getLogRecordFactory()
    app = logging.getLogger("test_current.app")
    theirs: list[Any] = []

    def outer_task() -> None:
        inner = logging.getLogRecordFactory()

        def tagging(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = inner(*args, **kwargs)
            record.tagged = True
            return record

        theirs.append(tagging)
        logging.setLogRecordFactory(tagging)  # a library wraps the factory mid-run

    wf = Workflow("wrapped")
    wf.add_task(Task("t", outer_task))
    try:
        flowweaver.SequentialExecutor().execute(wf)
        assert logging.getLogRecordFactory() is theirs[0]  # theirs is left in place
        app.info("after")
        assert app_log.records[-1].tagged is True  # type: ignore[attr-defined]
        assert _fields(app_log.records[-1]) == ("absent",) * 4
    finally:
        logging.setLogRecordFactory(original)
    # theirs removed (and ours with it): the next run installs ours again
    wf = Workflow("again")
    wf.add_task(Task("t", lambda: app.info("inside")))
    flowweaver.SequentialExecutor().execute(wf)
    assert _fields(app_log.records[-1])[:3] == ("again", "t", 1)
    assert logging.getLogRecordFactory() is original
