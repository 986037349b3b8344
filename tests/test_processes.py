"""ProcessPool on its own: what a worker process returns, raises, and how it is stopped."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flowweaver import FlowWeaverError, TaskCrashedError, TaskTimeoutError
from flowweaver._engine._processes import ProcessPool, RemoteTraceback, WorkerStopped
from tests import process_tasks as tasks
from tests.process_tasks import alive, wait_gone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX worker processes")


@pytest.fixture
def pool() -> Any:
    p = ProcessPool(2, 0.5, "asyncio", "wf")
    yield p
    pids = p.pids()
    p.close()
    assert not [q for q in pids if alive(q)]


def test_a_result_comes_back_from_another_process(pool: ProcessPool) -> None:
    worker, upstream = pool.run("t", tasks.pid_and, {"a": [1, 2]}, None, False)
    assert worker != os.getpid()
    assert upstream == {"a": [1, 2]}


def test_a_worker_is_reused_between_jobs(pool: ProcessPool) -> None:
    first = pool.run("t", tasks.pid, {}, None, False)
    assert pool.run("t", tasks.pid, {}, None, False) == first
    assert pool.started == 1


def test_lambdas_and_closures_travel_by_value(pool: ProcessPool) -> None:
    factor = 3

    def times(x: int) -> int:
        return x * factor

    assert pool.run("t", lambda x: x + 1, {"x": 1}, None, False) == 2
    assert pool.run("t", times, {"x": 2}, None, False) == 6


def test_the_tasks_exception_is_raised_here_with_the_workers_traceback(
    pool: ProcessPool,
) -> None:
    with pytest.raises(ValueError, match="boom from the worker") as info:
        pool.run("t", tasks.boom, {}, None, False)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in boom" in cause.text
    assert "process_tasks.py" in cause.text
    # the worker survives its task's exception
    assert pool.started == 1
    pool.run("t", tasks.pid, {}, None, False)
    assert pool.started == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_async_function_runs_on_the_runs_backend(backend: str) -> None:
    pool = ProcessPool(1, 0.5, backend, "wf")
    try:
        worker, loop = pool.run("t", tasks.async_pid_and_loop, {}, None, True)
    finally:
        pool.close()
    assert worker != os.getpid()
    assert loop == backend


def test_a_timeout_terminates_the_process_and_its_finally_blocks_run(
    pool: ProcessPool, tmp_path: Path
) -> None:
    marker = str(tmp_path / "finally")
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError, match=r"'slow' timed out after 0\.5 s"):
        pool.run("slow", tasks.sleep_then_write, {"path": marker, "seconds": 60}, 0.5, False)
    assert time.monotonic() - started < 5
    assert Path(marker).read_text() == "finally ran"
    worker = int(Path(marker + ".pid").read_text())
    assert not alive(worker)  # reaped before the error was raised
    # the next job gets a fresh process
    assert pool.run("t", tasks.pid, {}, None, False) != worker
    assert pool.started == 2


def test_a_task_that_ignores_sigterm_is_killed_after_kill_grace(tmp_path: Path) -> None:
    pool = ProcessPool(1, 0.5, "asyncio", "wf")
    path = str(tmp_path / "pid")
    try:
        started = time.monotonic()
        with pytest.raises(TaskTimeoutError):
            pool.run(
                "stubborn",
                tasks.ignore_sigterm_and_sleep,
                {"path": path, "seconds": 60},
                0.3,
                False,
            )
        took = time.monotonic() - started
    finally:
        pool.close()
    assert 0.3 + 0.5 <= took < 5
    assert not alive(int(Path(path).read_text()))


def test_a_worker_that_exits_is_a_crash_with_its_exit_status(pool: ProcessPool) -> None:
    with pytest.raises(TaskCrashedError) as info:
        pool.run("quits", tasks.exit_with, {"code": 3}, None, False)
    assert (info.value.task_name, info.value.exitcode, info.value.signal) == ("quits", 3, None)
    assert "exited with status 3" in str(info.value)
    assert pool.pids() == []  # reaped and forgotten
    assert pool.run("t", lambda: "next", {}, None, False) == "next"


def test_a_worker_killed_by_a_signal_is_a_crash_naming_the_signal(pool: ProcessPool) -> None:
    with pytest.raises(TaskCrashedError) as info:
        pool.run("killed", tasks.kill_myself, {}, None, False)
    assert (info.value.exitcode, info.value.signal) == (None, "SIGKILL")
    assert "SIGKILL" in str(info.value)


def test_an_input_that_cannot_be_pickled_names_the_task_and_the_input(
    pool: ProcessPool,
) -> None:
    with pytest.raises(FlowWeaverError) as info:
        pool.run("locked", tasks.pid_and, {"fine": 1, "guard": threading.Lock()}, None, False)
    message = str(info.value)
    assert "'locked'" in message
    assert "input 'guard'" in message
    assert "isolation='thread'" in message
    assert pool.started == 0  # refused before any process started


def test_a_function_that_cannot_be_pickled_names_the_task(pool: ProcessPool) -> None:
    lock = threading.Lock()

    def holds() -> None:
        with lock:
            pass

    with pytest.raises(FlowWeaverError, match="'closure': its function cannot be sent"):
        pool.run("closure", holds, {}, None, False)


def test_a_result_that_cannot_be_pickled_names_the_task(pool: ProcessPool) -> None:
    with pytest.raises(FlowWeaverError, match="'lock': its result cannot be sent back") as info:
        pool.run("lock", tasks.a_lock, {}, None, False)
    assert "lock" in str(info.value)
    assert pool.run("t", lambda: 1, {}, None, False) == 1  # the worker lives on


def test_an_exception_that_cannot_be_pickled_names_its_type_and_message(
    pool: ProcessPool,
) -> None:
    with pytest.raises(FlowWeaverError) as info:
        pool.run("raiser", tasks.raise_unpicklable, {}, None, False)
    message = str(info.value)
    assert "'raiser' raised HoldsALock: the lock is mine" in message
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "raise_unpicklable" in info.value.__cause__.text


def test_a_job_never_outgrows_the_capacity(tmp_path: Path) -> None:
    pool = ProcessPool(2, 0.5, "asyncio", "wf")
    results: list[int] = []

    def one() -> None:
        results.append(
            pool.run(
                "t",
                tasks.record_pid,
                {"folder": str(tmp_path), "name": "x", "seconds": 0.3},
                None,
                False,
            )
        )

    threads = [threading.Thread(target=one) for _ in range(5)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        pool.close()
    assert len(results) == 5
    assert pool.started == 2
    assert len(set(results)) == 2


def test_close_while_a_job_runs_stops_it_at_once_and_leaves_no_process(tmp_path: Path) -> None:
    pool = ProcessPool(2, 5.0, "asyncio", "wf")
    marker = str(tmp_path / "finally")
    outcome: list[BaseException] = []

    def blocked() -> None:
        try:
            pool.run(
                "sleeper", tasks.sleep_then_write, {"path": marker, "seconds": 60}, None, False
            )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    while not os.path.exists(marker + ".pid"):
        time.sleep(0.01)
    pids = pool.pids()
    assert len(pids) == 1
    started = time.monotonic()
    pool.close()
    thread.join(10)
    assert time.monotonic() - started < 4  # SIGTERM ends the sleep: no need for the grace
    assert len(outcome) == 1
    assert isinstance(outcome[0], WorkerStopped)
    assert Path(marker).read_text() == "finally ran"
    assert not [p for p in pids if alive(p)]
    assert pool.pids() == []
    with pytest.raises(WorkerStopped):
        pool.run("t", tasks.pid, {}, None, False)
    pool.close()  # idempotent


def test_kill_busy_stops_the_jobs_in_flight_and_keeps_the_pool(tmp_path: Path) -> None:
    pool = ProcessPool(2, 1.0, "asyncio", "wf")
    marker = str(tmp_path / "finally")
    outcome: list[BaseException] = []
    wanted = [True]

    def blocked() -> None:
        try:
            pool.run(
                "sleeper",
                tasks.sleep_then_write,
                {"path": marker, "seconds": 60},
                None,
                False,
                lambda: wanted[0],
            )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    try:
        while not os.path.exists(marker + ".pid"):
            time.sleep(0.01)
        worker = int(Path(marker + ".pid").read_text())
        wanted[0] = False
        pool.kill_busy()
        thread.join(10)
        assert isinstance(outcome[0], WorkerStopped)
        assert not alive(worker)
        # a job that is no longer wanted does not start
        with pytest.raises(WorkerStopped):
            pool.run("t", tasks.pid, {}, None, False, lambda: wanted[0])
        assert pool.run("t", tasks.pid, {}, None, False) != worker
    finally:
        pool.close()


def test_a_pool_leaves_no_child_process_behind() -> None:
    pool = ProcessPool(2, 0.5, "asyncio", "wf")
    before = set(tasks.children(os.getpid()))
    done = threading.Barrier(3)

    def job() -> None:
        pool.run("t", lambda: time.sleep(0.2), {}, None, False)
        done.wait(10)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    done.wait(10)
    assert len(set(tasks.children(os.getpid())) - before) == 2
    pool.close()
    for t in threads:
        t.join(10)
    assert wait_gone(list(set(tasks.children(os.getpid())) - before), 0) == []
