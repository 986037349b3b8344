"""Tag limits and rate limits in runs: every executor form, both backends, sync and async
tasks, mapped items, retries, events and bad input."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from flowweaver import (
    RunEvent,
    SequentialExecutor,
    Task,
    TaskQueued,
    TaskStarted,
    TaskStatus,
    ThreadedExecutor,
    Workflow,
    WorkflowValidationError,
)
from tests.run_helpers import Runner


class Gauge:
    """How many tasks of a kind run at once, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.starts: list[float] = []

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.starts.append(time.monotonic())

    def leave(self) -> None:
        with self.lock:
            self.now -= 1

    def sync_task(self, seconds: float = 0.03) -> Any:
        def work() -> None:
            self.enter()
            time.sleep(seconds)
            self.leave()

        return work

    def async_task(self, seconds: float = 0.03) -> Any:
        async def work() -> None:
            self.enter()
            await anyio.sleep(seconds)
            self.leave()

        return work


def _runner(form: tuple[type, bool], backend: str) -> Runner:
    return Runner(None, *form, backend)


def _parallel(runner: Runner) -> bool:
    return runner.executor().concurrency > 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_limit_bounds_the_tagged_tasks_and_the_others_go_ahead(
    form: tuple[type, bool], backend: str, is_async: bool
) -> None:
    runner = _runner(form, backend)
    db = Gauge()
    free = Gauge()
    wf = Workflow("limited")
    for k in range(6):
        work = db.async_task() if is_async else db.sync_task()
        wf.add_task(Task(f"db{k}", work, tags=["db"]))
    wf.add_task(Task("other", free.async_task(0) if is_async else free.sync_task(0)))
    events: list[RunEvent] = []
    runner.run(wf, limits={"db": 2}, observer=events.append)
    assert all(t.status is TaskStatus.COMPLETED for t in wf.tasks)
    assert db.most <= 2
    if _parallel(runner):
        assert db.most == 2
        # "other" was declared last, but waiting db tasks hold no slot: it started
        # before the last db task did
        assert free.starts[0] < db.starts[-1]
        queued = [e for e in events if isinstance(e, TaskQueued)]
        assert {(e.tag, e.kind, e.attempt) for e in queued} == {("db", "limit", 1)}
        assert len(queued) == 4  # each waiting task reported once
        started = [e.task for e in events if isinstance(e, TaskStarted)]
        assert all(e.task in started for e in queued)


def test_mapped_items_each_count_against_the_limit(form: tuple[type, bool], backend: str) -> None:
    runner = _runner(form, backend)
    db = Gauge()

    def rows() -> list[int]:
        return list(range(6))

    def load(rows: int) -> int:
        db.enter()
        time.sleep(0.02)
        db.leave()
        return rows * 2

    wf = Workflow("mapped")
    wf.add_task(Task("rows", rows))
    wf.add_task(Task("load", load, map_over="rows", tags=["db"]), depends_on=["rows"])
    runner.run(wf, limits={"db": 2})
    assert wf._tasks["load"].result == [0, 2, 4, 6, 8, 10]
    assert db.most == (2 if _parallel(runner) else 1)


def test_a_rate_limit_spaces_the_starts(form: tuple[type, bool], backend: str) -> None:
    runner = _runner(form, backend)
    api = Gauge()
    wf = Workflow("rated")
    for k in range(8):
        wf.add_task(Task(f"call{k}", api.sync_task(0), tags=["api"]))
    events: list[RunEvent] = []
    began = time.monotonic()
    runner.run(wf, rate_limits={"api": "20/s"}, observer=events.append)
    elapsed = time.monotonic() - began
    # a bucket of 20 would let all 8 go at once: at 20/s with 8 tasks nothing waits...
    assert elapsed < 5
    assert not [e for e in events if isinstance(e, TaskQueued)]

    wf = Workflow("rated")
    for k in range(8):
        wf.add_task(Task(f"call{k}", api.sync_task(0), tags=["api"]))
    events.clear()
    api.starts.clear()
    began = time.monotonic()
    runner.run(wf, rate_limits={"api": "5/s"}, observer=events.append)
    elapsed = time.monotonic() - began
    # ...at 5/s five go at once, then one every 0.2 s: three more take 0.6 s
    assert 0.55 <= elapsed < 5
    assert api.starts[-1] - api.starts[0] >= 0.55
    queued = [e for e in events if isinstance(e, TaskQueued)]
    assert queued
    assert {(e.tag, e.kind) for e in queued} == {("api", "rate")}


def test_a_retry_gives_its_slot_back_during_its_backoff(
    form: tuple[type, bool], backend: str
) -> None:
    runner = _runner(form, backend)
    one = {}
    if runner.executor_cls.__name__.endswith("ThreadedExecutor"):
        one = {"max_workers": 1}
    elif "max_concurrent" in runner.executor_cls.__init__.__code__.co_varnames:
        one = {"max_concurrent": 1}
    when: dict[str, list[float]] = {"flaky": [], "other": []}

    def flaky() -> None:
        when["flaky"].append(time.monotonic())
        if len(when["flaky"]) == 1:
            raise ConnectionError("first attempt fails")

    def other() -> None:
        when["other"].append(time.monotonic())

    wf = Workflow("backoff")
    wf.add_task(Task("flaky", flaky, retries=1, retry_delay=0.3))
    wf.add_task(Task("other", other))
    runner.run(wf, **one)
    assert runner.executor(**one).concurrency == 1
    assert wf._tasks["flaky"].status is TaskStatus.COMPLETED
    # the one slot ran "other" while "flaky" waited out its delay
    assert when["flaky"][0] < when["other"][0] < when["flaky"][1]


def test_a_limit_on_a_tag_no_task_has_is_refused_before_anything_runs(
    form: tuple[type, bool], backend: str
) -> None:
    runner = _runner(form, backend)
    ran = []
    wf = Workflow("typo")
    wf.add_task(Task("a", lambda: ran.append(1), tags=["db"]))
    with pytest.raises(WorkflowValidationError, match="tag 'dbs', which no task has"):
        runner.run(wf, limits={"dbs": 1})
    with pytest.raises(WorkflowValidationError, match="rate_limits name tag 'api'"):
        runner.plan(wf, rate_limits={"api": "1/s"})
    assert ran == []
    assert wf._tasks["a"].status is TaskStatus.PENDING
    # a partial run may leave the tagged task out: the tag is still the workflow's
    wf.add_task(Task("b", lambda: None))
    runner.run(wf, limits={"db": 1}, targets=["b"])


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"limits": {"db": 0}}, "limits['db'] must be at least 1, got 0"),
        ({"limits": {"db": 1.5}}, "limits['db'] must be a whole number"),
        ({"limits": ["db"]}, "limits must be a dict of tag names"),
        ({"limits": {"": 1}}, "every tag must be a non-empty str"),
        ({"rate_limits": {"api": "ten/s"}}, "rate_limits['api'] must read like '10/s'"),
        ({"rate_limits": {"api": "10/day"}}, "got '10/day'"),
        ({"rate_limits": {"api": "0/s"}}, "a positive number"),
        ({"rate_limits": {"api": 10}}, "got 10"),
        ({"kill_grace": -1}, "kill_grace must be a number of seconds (0 or more), got -1"),
        ({"kill_grace": float("inf")}, "kill_grace must be finite"),
    ],
)
def test_bad_limits_are_refused_naming_the_value(options: dict[str, Any], says: str) -> None:
    with pytest.raises(WorkflowValidationError) as err:
        ThreadedExecutor(**options)
    assert says in str(err.value)


@pytest.mark.parametrize(
    ("rate", "per_second", "bucket"),
    [("10/s", 10.0, 10.0), ("600/min", 10.0, 10.0), ("30/m", 0.5, 1.0), ("7200/h", 2.0, 2.0)],
)
def test_rates_read_per_second_minute_or_hour(rate: str, per_second: float, bucket: float) -> None:
    ex = SequentialExecutor(rate_limits={"api": rate})
    assert ex._rates == {"api": (per_second, bucket)}
    assert ex.rate_limits == {"api": rate}


def test_limits_hold_with_a_store_and_a_resume(stored: Runner) -> None:
    db = Gauge()
    fail = [True]

    def last() -> None:
        if fail[0]:
            raise RuntimeError("not yet")

    wf = Workflow("resumed")
    for k in range(4):
        wf.add_task(Task(f"db{k}", db.sync_task(0.01), tags=["db"]))
    wf.add_task(Task("last", last, tags=["db"]), depends_on=[f"db{k}" for k in range(4)])
    with pytest.raises(Exception, match="last"):
        stored.run(wf, limits={"db": 1})
    assert len(db.starts) == 4
    assert db.most == 1
    fail[0] = False
    stored.run(wf, limits={"db": 1})
    assert len(db.starts) == 4  # restored, not run again
    assert wf._tasks["last"].status is TaskStatus.COMPLETED


def test_a_fail_fast_stop_frees_the_tags_for_the_clean_up(
    form: tuple[type, bool], backend: str
) -> None:
    runner = _runner(form, backend)
    cleaned = []

    def boom() -> None:
        time.sleep(0.02)
        raise RuntimeError("boom")

    wf = Workflow("stopped")
    wf.add_task(Task("boom", boom, tags=["db"]))
    for k in range(3):
        wf.add_task(Task(f"db{k}", lambda: time.sleep(0.05), tags=["db"]))
    wf.add_task(
        Task("clean_up", lambda: cleaned.append(1), tags=["db"], trigger="all_done"),
        depends_on=["boom"],
    )
    with pytest.raises(Exception, match="boom"):
        runner.run(wf, limits={"db": 1}, fail_fast=True)
    assert cleaned == [1]
    assert wf._tasks["clean_up"].status is TaskStatus.COMPLETED
