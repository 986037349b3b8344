"""Runs with worker processes: ProcessExecutor in both forms, isolation="process" under
every executor, on asyncio and trio: where tasks run, timeouts, crashes, resume, events."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import flowweaver
from flowweaver import (
    FlowWeaverError,
    RunEvent,
    Task,
    TaskCrashedError,
    TaskExecutionError,
    TaskQueued,
    TaskRetrying,
    TaskStatus,
    TaskTimeoutError,
    Workflow,
    WorkflowExecutionError,
)
from tests import process_tasks as tasks
from tests.process_tasks import alive
from tests.run_helpers import Runner, form_named, make_store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX worker processes")

# (form, store, backend): each process form with each store, the backends alternating
COMBOS = [
    (form, store, ("asyncio", "trio")[(i + j) % 2])
    for i, form in enumerate(["process", "aio-process"])
    for j, store in enumerate(["none", "json", "sqlite"])
]


@pytest.fixture(params=COMBOS, ids="-".join)
def procs(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """A ProcessExecutor form (blocking or awaited) on one backend, with or without a store."""
    form, store, backend = request.param
    return Runner(make_store(store, tmp_path), *form_named(form), backend)


@pytest.fixture(params=[c for c in COMBOS if c[1] != "none"], ids="-".join)
def procs_stored(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    form, store, backend = request.param
    return Runner(make_store(store, tmp_path), *form_named(form), backend)


def _pid() -> int:
    return os.getpid()


def test_a_process_executor_runs_sync_tasks_elsewhere_and_passes_their_results(
    procs: Runner,
) -> None:
    async def on_the_loop(b: Any) -> int:
        return os.getpid()

    wf = Workflow("procs")
    wf.add_task(Task("a", tasks.pid))
    wf.add_task(Task("b", tasks.pid_and), depends_on=["a"])
    wf.add_task(Task("c", on_the_loop), depends_on=["b"])
    procs.run(wf, max_workers=2)
    a = wf.get_task("a").result
    worker, upstream = wf.get_task("b").result
    assert a != os.getpid()
    assert worker != os.getpid()
    assert upstream == {"a": a}
    assert wf.get_task("c").result == os.getpid()  # async tasks stay on the loop


def test_isolation_process_runs_a_task_elsewhere_under_every_executor(runner: Runner) -> None:
    wf = Workflow("isolated")
    wf.add_task(Task("apart", tasks.pid, isolation="process"))
    wf.add_task(Task("async_apart", tasks.async_pid_and_loop, isolation="process"))
    wf.add_task(Task("here", _pid), depends_on=["apart", "async_apart"])
    runner.run(wf)
    assert wf.get_task("apart").result != os.getpid()
    worker, loop = wf.get_task("async_apart").result
    assert worker != os.getpid()
    assert loop == runner.backend
    assert wf.get_task("here").result == os.getpid()


@pytest.mark.parametrize("form", ["process", "aio-process"])
def test_isolation_thread_keeps_a_task_here_under_a_process_executor(form: str) -> None:
    runner = Runner(None, *form_named(form), "trio")
    wf = Workflow("threads")
    wf.add_task(Task("here", _pid, isolation="thread"))
    wf.add_task(Task("apart", tasks.pid))
    runner.run(wf, max_workers=2)
    assert wf.get_task("here").result == os.getpid()
    assert wf.get_task("apart").result != os.getpid()


def _retries(log: list[RunEvent]) -> list[BaseException | None]:
    return [e.error for e in log if isinstance(e, TaskRetrying)]


def test_a_timeout_kills_the_attempt_and_the_retry_runs_in_a_fresh_process(
    procs: Runner, tmp_path: Path
) -> None:
    first = tmp_path / "first.pid"
    log: list[RunEvent] = []
    wf = Workflow("timeouts")
    wf.add_task(
        Task("stalls", partial(tasks.stall_first_attempt, str(first)), timeout=1, retries=1)
    )
    started = time.monotonic()
    procs.run(wf, max_workers=2, kill_grace=0.5, observer=log.append)
    assert time.monotonic() - started < 15
    t = wf.get_task("stalls")
    assert t.status is TaskStatus.COMPLETED
    assert t.attempts == 2
    stalled = int(first.read_text())
    assert t.result != stalled
    assert not alive(stalled)
    [error] = _retries(log)
    assert isinstance(error, TaskTimeoutError)


def test_a_crash_fails_the_attempt_and_retries_apply(procs: Runner, tmp_path: Path) -> None:
    wf = Workflow("crashes")
    wf.add_task(Task("retried", partial(tasks.crash_first_attempt, str(tmp_path / "a")), retries=1))
    wf.add_task(Task("once", partial(tasks.exit_with, 3)))
    with pytest.raises(WorkflowExecutionError) as info:
        procs.run(wf, max_workers=2)
    retried = wf.get_task("retried")
    assert retried.result == "second attempt"
    assert retried.attempts == 2
    assert info.value.failed_tasks == ["once"]
    error = wf.get_task("once").error
    assert isinstance(error, TaskCrashedError)
    assert (error.task_name, error.exitcode, error.signal) == ("once", 3, None)


def test_a_run_with_a_store_resumes_and_restored_tasks_do_not_run_again(
    procs_stored: Runner, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    broken = tmp_path / "broken"
    broken.write_text("")

    def workflow() -> Workflow:
        wf = Workflow("resumed")
        wf.add_task(Task("first", partial(tasks.count_runs, str(ran))))
        wf.add_task(
            Task("second", partial(tasks.fail_while_exists, str(broken))), depends_on=["first"]
        )
        return wf

    wf = workflow()
    with pytest.raises(WorkflowExecutionError):
        procs_stored.run(wf, max_workers=2)
    broken.unlink()
    wf = workflow()
    procs_stored.run(wf, max_workers=2)
    assert ran.read_text() == "ran\n"  # once: the second run restored it
    assert wf.get_task("first").attempts == 0
    assert wf.get_task("second").result == "fixed"


def _events(log: list[RunEvent]) -> list[tuple[str, str | None]]:
    return [(type(e).__name__, getattr(e, "task", None)) for e in log]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_process_run_emits_the_events_a_threaded_run_does(backend: str) -> None:
    def workflow() -> Workflow:
        wf = Workflow("events")
        wf.add_task(Task("a", tasks.pid))
        wf.add_task(Task("b", tasks.boom, retries=1), depends_on=["a"])
        wf.add_task(Task("c", tasks.pid), depends_on=["b"])
        return wf

    logs: list[list[RunEvent]] = [[], []]
    for log, cls in zip(
        logs, [flowweaver.ThreadedExecutor, flowweaver.ProcessExecutor], strict=True
    ):
        with pytest.raises(WorkflowExecutionError):
            cls(2, backend=backend, observer=log.append).execute(workflow())
    assert _events(logs[1]) == _events(logs[0])


def test_task_execute_runs_an_isolated_task_in_a_process(tmp_path: Path) -> None:
    t = Task("alone", tasks.pid_and, isolation="process")
    worker, upstream = t.execute({"up": 1})
    assert worker != os.getpid()
    assert upstream == {"up": 1}
    stalls = Task(
        "stalls",
        partial(tasks.stall_first_attempt, str(tmp_path / "p")),
        timeout=0.5,
        isolation="process",
    )
    with pytest.raises(TaskExecutionError) as info:
        stalls.execute()
    assert isinstance(info.value.__cause__, TaskTimeoutError)
    assert not alive(int((tmp_path / "p").read_text()))


@pytest.mark.parametrize("form", ["process", "aio-process"])
def test_map_items_run_in_worker_processes(form: str) -> None:
    runner = Runner(None, *form_named(form), "asyncio")
    wf = Workflow("maps")
    wf.add_task(Task("src", lambda: [1, 2, 3]))
    wf.add_task(Task("item", tasks.pid_and, map_over="src"), depends_on=["src"])
    runner.run(wf, max_workers=2)
    results = wf.get_task("item").result
    assert [upstream for _, upstream in results] == [{"src": 1}, {"src": 2}, {"src": 3}]
    assert os.getpid() not in {worker for worker, _ in results}


def test_fail_fast_kills_the_attempts_in_flight_before_the_clean_up_runs(tmp_path: Path) -> None:
    folder = str(tmp_path)

    def slow_is_alive(bad: Any) -> bool:
        return alive(int((tmp_path / "slow.pid").read_text().split()[0]))

    wf = Workflow("stopped")
    wf.add_task(Task("slow", partial(tasks.record_pid, folder, "slow", 60)))
    wf.add_task(Task("bad", partial(tasks.fail_after, 0.5)))
    wf.add_task(
        Task("clean_up", slow_is_alive, isolation="thread", trigger="all_done"), depends_on=["bad"]
    )
    started = time.monotonic()
    with pytest.raises(WorkflowExecutionError):
        flowweaver.ProcessExecutor(2, fail_fast=True, kill_grace=0.5).execute(wf)
    assert time.monotonic() - started < 15
    assert wf.get_task("clean_up").result is False
    assert wf.get_task("slow").status is not TaskStatus.COMPLETED


def test_an_input_that_cannot_be_pickled_fails_the_task_naming_it() -> None:
    wf = Workflow("unpicklable")
    wf.add_task(Task("lock", threading.Lock, isolation="thread"))
    wf.add_task(Task("apart", tasks.pid_and, retries=3), depends_on=["lock"])
    with pytest.raises(WorkflowExecutionError):
        flowweaver.ProcessExecutor(1).execute(wf)
    error = wf.get_task("apart").error
    assert isinstance(error, FlowWeaverError)
    # the next attempt could not pickle it either: its retries are not spent on it
    assert wf.get_task("apart").attempts == 1
    assert "task 'apart': its input 'lock'" in str(error)
    assert "isolation='thread'" in str(error)


def test_no_worker_process_outlives_a_run(tmp_path: Path) -> None:
    before = set(tasks.children(os.getpid()))
    wf = Workflow("tidy")
    for n in range(4):
        wf.add_task(Task(f"t{n}", partial(tasks.record_pid, str(tmp_path), f"t{n}")))
    flowweaver.ProcessExecutor(2).execute(wf)
    pids = {wf.get_task(f"t{n}").result for n in range(4)}
    assert len(pids) <= 2  # reused
    assert not [p for p in pids if alive(p)]
    assert set(tasks.children(os.getpid())) <= before


def test_tag_limits_and_rates_hold_for_tasks_in_worker_processes(
    procs: Runner, tmp_path: Path
) -> None:
    folder = tmp_path / "spans"
    folder.mkdir()
    log: list[RunEvent] = []
    wf = Workflow("limited")
    for n in range(4):
        wf.add_task(
            Task(f"db{n}", partial(tasks.interval, str(folder), f"db{n}", 0.05), tags=["db"])
        )
    procs.run(wf, max_workers=4, limits={"db": 1}, rate_limits={"db": "100/s"}, observer=log.append)
    spans = tasks.spans(str(folder))
    assert len(spans) == 4
    # one at a time, though four workers were free
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans))
    queued = [e for e in log if isinstance(e, TaskQueued)]
    assert {(e.tag, e.kind) for e in queued} == {("db", "limit")}
