"""Input-aware resume: a saved result stands while what its task received is the same.

A record carries the content tokens of the upstream results its task consumed and a hash
of each run parameter it takes (or of its ``cache_key``). So a changed parameter runs
exactly the tasks that take it and those whose inputs then changed; an upstream task that
runs again and returns an equal value does not make its dependents run (early cut-off:
they are restored mid-run, with ``TaskRestored``). ``version``, ``fingerprint_code`` and
``fresh`` still work; ``cache_ttl`` and ``cache_key`` are in ``test_cache_settings.py``.
Every executor form, both built-in stores, asyncio and trio.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

import flowweaver
from flowweaver import (
    AsyncExecutor,
    SequentialExecutor,
    Task,
    TaskCompleted,
    TaskRestored,
    TaskStarted,
    TaskStatus,
    ThreadedExecutor,
    Workflow,
)
from tests.helpers import EventLog
from tests.run_helpers import BUILT_IN, Runner, age_records
from tests.store_helpers import record
from tests.test_store_sessions import DictStore

A = {"date": "2026-11-30", "limit": 1}
B = {"date": "2026-12-01", "limit": 1}
ALL_TASKS = ["extract", "rows", "report", "stamp", "publish", "config", "other"]


@pytest.fixture
def store(stored: Runner) -> Any:
    return stored.store


class Daily:
    """A workflow of the day::

        extract(date) -> rows(extract) -> report(rows)      rows: the same for every date
                      -> stamp(extract) -> publish(stamp)   stamp: the date
        config(limit=5)
        other()

    ``calls`` logs every call, across runs; ``rows_value`` and ``stamp_value`` let a test
    change what those return; ``versions`` gives tasks a version.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.extra_rows = 0
        self.versions: dict[str, str] = {}
        self.settings: dict[str, dict[str, Any]] = {}

    def called(self, name: str) -> None:
        with self.lock:
            self.calls.append(name)

    def take(self) -> set[str]:
        with self.lock:
            calls, self.calls = self.calls, []
        assert len(calls) == len(set(calls)), calls  # no task ran twice
        return set(calls)

    def workflow(self, stamp: Callable[..., Any] | None = None) -> Workflow:
        def extract(date: str) -> dict[str, Any]:
            self.called("extract")
            return {"date": date, "rows": 3 + self.extra_rows}

        def rows(extract: dict[str, Any]) -> int:
            self.called("rows")
            return int(extract["rows"])

        def report(rows: int) -> str:
            self.called("report")
            return f"{rows} rows"

        def stamp_date(extract: dict[str, Any]) -> str:
            self.called("stamp")
            return str(extract["date"])

        def publish(stamp: str) -> str:
            self.called("publish")
            return f"published {stamp}"

        def config(limit: int = 5) -> int:
            self.called("config")
            return limit

        def other() -> str:
            self.called("other")
            return "other"

        wf = Workflow("daily")
        for name, func, deps in [
            ("extract", extract, []),
            ("rows", rows, ["extract"]),
            ("report", report, ["rows"]),
            ("stamp", stamp or stamp_date, ["extract"]),
            ("publish", publish, ["stamp"]),
            ("config", config, []),
            ("other", other, []),
        ]:
            options = self.settings.get(name, {})
            task = Task(name, func, version=self.versions.get(name), **options)
            wf.add_task(task, depends_on=deps)
        return wf


def restored(log: EventLog) -> set[str]:
    return {e.task for e in log.of(TaskRestored)}


def started(log: EventLog) -> set[str]:
    return {e.task for e in log.of(TaskStarted)}


def results(wf: Workflow) -> dict[str, Any]:
    return {t.name: t.result for t in wf.tasks}


def everything_completed(wf: Workflow) -> None:
    assert {t.name: t.status for t in wf.tasks} == dict.fromkeys(
        [t.name for t in wf.tasks], TaskStatus.COMPLETED
    )


def restored_after(log: EventLog, name: str, upstream: str) -> bool:
    """``name`` was restored mid-run: after ``upstream`` completed in this run."""
    kinds = [(type(e), getattr(e, "task", None)) for e in log.events]
    return kinds.index((TaskRestored, name)) > kinds.index((TaskCompleted, upstream))


# -- parameters ------------------------------------------------------------------------------


def test_a_changed_param_runs_exactly_the_tasks_it_changes(stored: Runner) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    assert d.take() == {"extract", "rows", "report", "stamp", "publish", "config", "other"}
    log = EventLog()
    wf = d.workflow()
    stored.run(wf, params=B, observer=log)
    # extract takes date; rows and stamp received its new result; rows returned what it
    # did (report is cut off), stamp did not (publish runs)
    assert d.take() == {"extract", "rows", "stamp", "publish"}
    assert started(log) == {"extract", "rows", "stamp", "publish"}
    assert restored(log) == {"report", "config", "other"}
    assert restored_after(log, "report", "rows")
    everything_completed(wf)
    assert results(wf)["publish"] == "published 2026-12-01"
    assert results(wf)["report"] == "3 rows"


def test_unchanged_params_restore_everything(stored: Runner) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    log = EventLog()
    wf = d.workflow()
    stored.run(wf, params=dict(A), observer=log)
    assert d.take() == set()
    assert started(log) == set()
    assert restored(log) == {t.name for t in wf.tasks}
    everything_completed(wf)
    assert results(wf)["publish"] == "published 2026-11-30"
    assert results(wf)["config"] == 1


def test_a_param_given_then_removed_runs_the_task_that_took_it(stored: Runner) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    wf = d.workflow()
    stored.run(wf, params={"date": A["date"]})
    assert d.take() == {"config"}  # back to its default
    assert results(wf)["config"] == 5
    stored.run(d.workflow(), params={"date": A["date"]})
    assert d.take() == set()  # saved without the param: stands without it
    wf = d.workflow()
    stored.run(wf, params=A)
    assert d.take() == {"config"}  # and a param given again counts as changed
    assert results(wf)["config"] == 1


def test_a_param_that_changes_type_but_not_json_text_is_a_change(stored: Runner) -> None:
    # 1 and "1" (or 1 and 1.0 as text) must not share a hash: a task may see the difference
    d = Daily()
    stored.run(d.workflow(), params={"date": A["date"], "limit": 1})
    d.take()
    wf = d.workflow()
    stored.run(wf, params={"date": A["date"], "limit": "1"})
    assert d.take() == {"config"}
    assert results(wf)["config"] == "1"


def test_equal_params_restore_whatever_order_their_keys_came_in(stored: Runner) -> None:
    wf = Workflow("ordered")
    ran: list[str] = []

    def use(cfg: dict[str, Any]) -> int:
        ran.append("use")
        return len(cfg)

    wf.add_task(Task("use", use))
    stored.run(wf, params={"cfg": {"a": 1, "b": [1, 2]}})
    stored.run(wf, params={"cfg": {"b": [1, 2], "a": 1}})
    assert ran == ["use"]
    stored.run(wf, params={"cfg": {"b": [2, 1], "a": 1}})
    assert ran == ["use", "use"]


def test_a_run_with_new_params_interrupted_midway_resumes_with_nothing_stale(
    stored: Runner,
) -> None:
    stored = Runner(stored.store, SequentialExecutor, False, stored.backend)
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()

    def stamp_interrupted(extract: dict[str, Any]) -> str:
        d.called("stamp")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stored.run(d.workflow(stamp=stamp_interrupted), params=B)
    d.take()
    wf = d.workflow()
    stored.run(wf, params=B)
    # extract's new result was saved before the interrupt; stamp was not, and publish's
    # saved result was computed from the old stamp
    assert {"stamp", "publish"} <= d.take() <= {"rows", "report", "stamp", "publish"}
    assert results(wf)["publish"] == "published 2026-12-01"
    stored.run(d.workflow(), params=B)
    assert d.take() == set()


CHILD = """
import sys
from flowweaver import JSONStateStore, SequentialExecutor, SQLiteStateStore, Task, Workflow

ran = []
wf = Workflow("processes")
wf.add_task(Task("use", lambda cfg, who: ran.append(who) or len(cfg)))
wf.add_task(Task("after", lambda use: ran.append("after") or use + 1), depends_on=["use"])
store = (JSONStateStore if sys.argv[1].endswith(".json") else SQLiteStateStore)(sys.argv[1])
params = {"cfg": {"x": [1, "\u00e9", 2.5], "y": None, "z": {"b": 1, "a": True}}, "who": "\u00fc"}
SequentialExecutor(store).execute(wf, params=params)
print(len(ran))
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["state.json", "state.db"])
def test_params_hash_the_same_in_another_process(tmp_path: Path, name: str) -> None:
    # A hash of a param must not depend on the process (str hashing is randomised)
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    outputs = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / name)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip())
    assert outputs == ["2", "0"]


# -- early cut-off ---------------------------------------------------------------------------


def test_an_upstream_whose_record_is_gone_runs_and_an_equal_result_cuts_off(
    stored: Runner, store: Any
) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    store.delete_task_state("extract", workflow="daily")
    log = EventLog()
    wf = d.workflow()
    stored.run(wf, params=A, observer=log)
    assert d.take() == {"extract"}
    assert started(log) == {"extract"}
    assert restored(log) == {"rows", "report", "stamp", "publish", "config", "other"}
    assert restored_after(log, "rows", "extract")
    assert restored_after(log, "stamp", "extract")
    everything_completed(wf)
    assert results(wf)["publish"] == "published 2026-11-30"


@pytest.mark.parametrize("bumped", ["extract", "rows"])
def test_a_new_version_runs_the_task_and_an_equal_result_cuts_off(
    stored: Runner, bumped: str
) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    d.versions[bumped] = "2"
    log = EventLog()
    stored.run(d.workflow(), params=A, observer=log)
    assert d.take() == {bumped}
    assert restored(log) == set(ALL_TASKS) - {bumped}
    stored.run(d.workflow(), params=A)
    assert d.take() == set()  # saved with version 2 now


def test_a_different_result_runs_its_dependents_and_an_equal_one_further_down_cuts_off(
    stored: Runner,
) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    d.versions["extract"] = "2"
    d.extra_rows = 1  # extract's result differs; stamp still returns the same date
    log = EventLog()
    wf = d.workflow()
    stored.run(wf, params=A, observer=log)
    assert d.take() == {"extract", "rows", "report", "stamp"}
    assert restored(log) == {"publish", "config", "other"}
    assert restored_after(log, "publish", "stamp")
    assert results(wf)["report"] == "4 rows"
    stored.run(d.workflow(), params=A)
    assert d.take() == set()


@pytest.mark.parametrize(
    ("before", "after"),
    [(1, "1"), (None, "null"), ("true", True), ([1], "[1]"), ({"a": 1}, '{"a":1}')],
    ids=["int-str", "none-str", "str-bool", "list-str", "dict-str"],
)
def test_a_result_whose_json_text_equals_the_old_ones_text_is_still_a_change(
    stored: Runner, before: Any, after: Any
) -> None:
    # The JSON store keeps a result as a value: its token hashes the value's JSON, so the
    # number 1 and the string "1" differ (hashing a str as it was made its dependents
    # stand on the old result). An equal value still cuts off.
    received: list[Any] = []

    def workflow(value: Any) -> Workflow:
        wf = Workflow("cutoff")
        wf.add_task(Task("up", lambda: value, version=repr(value)))
        wf.add_task(Task("down", lambda up: received.append(up) or repr(up)), depends_on=["up"])
        return wf

    stored.run(workflow(before))
    wf = workflow(after)
    stored.run(wf)
    assert received == [before, after]
    assert results(wf)["down"] == repr(after)
    stored.run(workflow(after))  # the same value again: restored, nothing runs
    assert received == [before, after]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [name for name, _ in BUILT_IN])
async def test_an_awaited_run_with_new_params_cancelled_midway_resumes_with_nothing_stale(
    tmp_path: Path, kind: str
) -> None:
    store = dict(BUILT_IN)[kind](tmp_path)
    d = Daily()
    await AsyncExecutor(state_store=store).execute(d.workflow(), params=A)
    d.take()
    entered = anyio.Event()

    async def stamp_hangs(extract: dict[str, Any]) -> str:
        d.called("stamp")
        entered.set()
        await anyio.sleep(30)
        return "never"

    wf = d.workflow(stamp=stamp_hangs)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(AsyncExecutor(state_store=store).execute, wf, params=B))
            await entered.wait()
            scope.cancel()
    assert wf.get_task("stamp").status is TaskStatus.PENDING  # type: ignore[union-attr]
    d.take()
    wf = d.workflow()
    await AsyncExecutor(state_store=store).execute(wf, params=B)
    assert {"stamp", "publish"} <= d.take()
    assert results(wf)["publish"] == "published 2026-12-01"
    assert results(wf)["report"] == "3 rows"


@pytest.mark.parametrize("executor", ["threaded", "async"])
def test_many_dependents_of_an_equal_result_are_cut_off_at_once(
    tmp_path: Path, executor: str
) -> None:
    # One upstream re-runs and returns what it did; forty dependents are decided at once,
    # on as many worker slots, none of them run, all restored.
    store = dict(BUILT_IN)["sqlite"](tmp_path)
    ran: list[str] = []
    lock = threading.Lock()

    def build(version: str) -> Workflow:
        wf = Workflow("wide")
        wf.add_task(Task("src", lambda day: len(day), version=version))
        for i in range(40):

            def dependent(src: int, i: int = i) -> int:
                with lock:
                    ran.append(f"d{i}")
                return src + i

            wf.add_task(Task(f"d{i}", dependent), depends_on=["src"])
        return wf

    def make() -> Any:
        if executor == "threaded":
            return ThreadedExecutor(max_workers=4, state_store=store, observer=log)
        return AsyncExecutor(max_concurrent=8, state_store=store, observer=log)

    log = EventLog()
    build("1").execute(make(), params={"day": "mon"})
    assert len(ran) == 40
    ran.clear()
    log = EventLog()
    wf = build("2")
    wf.execute(make(), params={"day": "tue"})  # same length: src returns what it did
    assert ran == []
    assert restored(log) == {f"d{i}" for i in range(40)}
    assert [t.result for t in wf.tasks[1:]] == [3 + i for i in range(40)]


# -- the rules that were there before ---------------------------------------------------------


def test_changed_code_runs_the_task_with_fingerprints_on(stored: Runner) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A, fingerprint_code=True)
    d.take()

    def stamp_upper(extract: dict[str, Any]) -> str:
        d.called("stamp")
        return str(extract["date"]).upper() + "!"

    wf = d.workflow(stamp=stamp_upper)
    stored.run(wf, params=A, fingerprint_code=True)
    assert d.take() == {"stamp", "publish"}
    assert results(wf)["publish"] == "published 2026-11-30!"
    stored.run(d.workflow(stamp=stamp_upper), params=A, fingerprint_code=True)
    assert d.take() == set()


def test_a_fresh_run_runs_everything_and_saves_it(stored: Runner) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    stored.run(d.workflow(), params=A, fresh=True)
    assert d.take() == {"extract", "rows", "report", "stamp", "publish", "config", "other"}
    stored.run(d.workflow(), params=A)
    assert d.take() == set()


# -- maps ------------------------------------------------------------------------------------


def mapped(ran: list[int]) -> Workflow:
    def proc(src: int, factor: int) -> int:
        ran.append(src)
        return src * factor

    wf = Workflow("mapped")
    wf.add_task(Task("src", lambda: [1, 2, 3]))
    wf.add_task(Task("proc", proc), map_over="src")
    wf.add_task(Task("total", lambda proc: sum(proc)), depends_on=["proc"])
    wf.add_task(Task("label", lambda date: f"on {date}"))
    return wf


def test_map_items_stand_while_their_params_do_and_run_when_one_changes(
    stored: Runner,
) -> None:
    ran: list[int] = []
    stored.run(mapped(ran), params={"factor": 2, "date": "a"})
    assert sorted(ran) == [1, 2, 3]
    ran.clear()
    stored.run(mapped(ran), params={"factor": 2, "date": "a"})
    assert ran == []
    wf = mapped(ran)
    stored.run(wf, params={"factor": 2, "date": "b"})
    assert ran == []  # the items do not take date
    assert results(wf)["label"] == "on b"
    wf = mapped(ran)
    stored.run(wf, params={"factor": 3, "date": "b"})
    assert sorted(ran) == [1, 2, 3]
    assert results(wf)["total"] == 18


def test_map_items_older_than_cache_ttl_run_again(stored: Runner, store: Any) -> None:
    ran: list[int] = []
    wf = mapped(ran)
    wf.get_task("proc").cache_ttl = 3600  # type: ignore[union-attr]
    stored.run(wf, params={"factor": 2, "date": "a"})
    ran.clear()
    items = ["proc", "proc[0]", "proc[1]", "proc[2]"]
    age_records(store, "mapped", items, timedelta(minutes=30))
    wf = mapped(ran)
    wf.get_task("proc").cache_ttl = 3600  # type: ignore[union-attr]
    stored.run(wf, params={"factor": 2, "date": "a"})
    assert ran == []
    age_records(store, "mapped", items, timedelta(minutes=31))
    wf = mapped(ran)
    wf.get_task("proc").cache_ttl = 3600  # type: ignore[union-attr]
    stored.run(wf, params={"factor": 2, "date": "a"})
    assert sorted(ran) == [1, 2, 3]


# -- a store written before records were input-aware -------------------------------------------


def test_a_store_whose_tokens_are_run_ids_resumes(stored: Runner, store: Any) -> None:
    # Before issue 12 a record's token was its run's id, and its inputs its upstream
    # tasks' run ids; such a store resumes: a record stands for a task that takes no
    # parameter and whose upstream tasks all stand.
    session = store._open_session()
    old = "0123456789abcdef"
    try:
        session.save(
            "daily",
            [
                record(name, session.encode(name, value), workflow="daily", token=old, inputs=ins)
                for name, value, ins in [
                    ("extract", {"date": A["date"], "rows": 3}, ""),
                    ("rows", 3, old),
                    ("report", "3 rows", old),
                    ("other", "other", ""),
                ]
            ],
        )
    finally:
        session.close()
    d = Daily()
    log = EventLog()
    wf = d.workflow()
    stored.run(wf, params=A, observer=log)
    # extract takes date: saved without it, it runs. Its new token is a hash of its
    # result, which an old record never holds: what is below it runs once too.
    assert d.take() == {"extract", "rows", "report", "stamp", "publish", "config"}
    assert restored(log) == {"other"}
    everything_completed(wf)
    stored.run(d.workflow(), params=A)
    assert d.take() == set()


# -- a user's store of five methods ----------------------------------------------------------


def test_a_users_store_never_restores_a_result_computed_from_another_param(
    form: tuple[type, bool], backend: str
) -> None:
    # The reference's five methods keep no inputs: what a task received cannot be checked,
    # so it must not be restored across a change of its parameter.
    stored = Runner(DictStore(), *form, backend)
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    wf = d.workflow()
    stored.run(wf, params=B)
    assert {"extract", "stamp", "publish"} <= d.take()
    assert results(wf)["publish"] == "published 2026-12-01"


# -- the run history's reasons ---------------------------------------------------------------


def test_the_run_history_says_why_each_task_ran(stored: Runner, store: Any) -> None:
    if not hasattr(flowweaver, "RunRecord") or not hasattr(store, "runs"):
        pytest.skip("run history is not merged on this branch yet")
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    d.versions["other"] = "2"
    log = EventLog()
    stored.run(d.workflow(), params=B, observer=log)
    last = max(store.runs(), key=lambda r: r.started)
    assert last.run_id == log.events[0].run_id
    assert (last.status, last.params) == ("COMPLETED", B)
    assert last.ran == {
        "extract": "parameter `date` changed",
        "rows": "upstream `extract` changed",
        "stamp": "upstream `extract` changed",
        "publish": "upstream `stamp` changed",
        "other": "version 2 != none",
    }
    assert sorted(last.restored) == ["config", "report"]  # report: cut off mid-run
    assert (last.counts["restored"], last.counts["pending"]) == (2, 0)
