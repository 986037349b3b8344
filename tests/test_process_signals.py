"""Worker processes under load and under signals: real CPU parallelism, a timeout that
kills an hour-long task, Ctrl-C and SIGTERM to a run with process tasks in flight, and a
parent killed outright. Each leaves no worker process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

import flowweaver
from flowweaver import Task, TaskTimeoutError, Workflow, WorkflowExecutionError
from tests import process_tasks as tasks
from tests.process_tasks import alive, running
from tests.store_helpers import completed

CHILD = str(Path(__file__).with_name("process_signal_child.py"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX worker processes"),
]


def _loops_for(seconds: float) -> int:
    """How many spin_count loops take about ``seconds`` on this machine (the best of 3)."""
    loops = 1_000_000
    took = []
    for _ in range(3):
        started = time.perf_counter()
        tasks.spin_count(loops)
        took.append(time.perf_counter() - started)
    return int(loops * seconds / min(took))


def _cpu_bound(loops: int) -> Workflow:
    wf = Workflow("cpu")
    for n in range(4):
        wf.add_task(Task(f"spin{n}", partial(tasks.spin_count, loops)))
    return wf


@pytest.mark.timeout(180)
def test_cpu_bound_tasks_run_in_parallel_in_worker_processes() -> None:
    # The best of up to 6 runs of each, taking turns, stopping once the bound is met: the
    # machine is shared, and a neighbour's burst must not decide the ratio (a busy machine
    # slows both; only a quiet moment shows what the executors can do).
    # Tasks of about a second each: the workers' start (about 70 ms) must not decide it.
    # The bound is generous: threads holding the GIL give about 1.0x, two processes up to
    # 2.0x; a CI run measured 1.55x best of 6 at load 0.93, so 1.6 was a speed assertion.
    loops = _loops_for(1.0)
    timings: dict[str, list[float]] = {"ThreadedExecutor": [], "ProcessExecutor": []}
    ratio = 0.0
    for _ in range(6):
        for cls in (flowweaver.ThreadedExecutor, flowweaver.ProcessExecutor):
            started = time.perf_counter()
            cls(2).execute(_cpu_bound(loops))
            timings[cls.__name__].append(time.perf_counter() - started)
        threads, procs = min(timings["ThreadedExecutor"]), min(timings["ProcessExecutor"])
        ratio = threads / procs
        if len(timings["ThreadedExecutor"]) >= 3 and ratio >= 1.3:
            break
    print(
        f"\n4 CPU-bound tasks of ~1 s (best of {len(timings['ThreadedExecutor'])}): "
        f"ThreadedExecutor(2) {threads:.2f} s, ProcessExecutor(2) {procs:.2f} s: "
        f"{ratio:.2f}x faster; load average {os.getloadavg()[0]:.2f}"
    )
    assert ratio >= 1.3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_hour_long_task_times_out_within_seconds_and_leaves_no_process(
    tmp_path: Path, backend: str
) -> None:
    before = set(tasks.children(os.getpid()))
    wf = Workflow("hour")
    sleeper = partial(tasks.record_pid, str(tmp_path), "sleeper", 3600)
    wf.add_task(Task("sleeper", sleeper, timeout=1, isolation="process"))
    started = time.monotonic()
    with pytest.raises(WorkflowExecutionError):
        flowweaver.SequentialExecutor(backend=backend).execute(wf)
    assert time.monotonic() - started < 10
    assert isinstance(wf.get_task("sleeper").error, TaskTimeoutError)
    assert not alive(int((tmp_path / "sleeper.pid").read_text()))
    assert set(tasks.children(os.getpid())) <= before


def _worker_pids(folder: Path, names: list[str], within: float = 30) -> list[int]:
    end = time.monotonic() + within
    paths = [folder / f"{n}.pid" for n in names]
    while not all(p.exists() and p.read_text().strip() for p in paths):
        assert time.monotonic() < end, "the tasks never started"
        time.sleep(0.02)
    return [int(p.read_text().split()[0]) for p in paths]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["process", "sequential"])
def test_a_signal_to_a_run_with_process_tasks_in_flight_leaves_no_worker(
    tmp_path: Path, kind: str, backend: str, sig: int
) -> None:
    names = ["sleep_a", "sleep_b"] if kind == "process" else ["sleep_a"]
    # A session of its own: Ctrl-C goes to the whole process group, as in a terminal
    # (the workers ignore it); SIGTERM to the run's process alone, as `kill PID` does.
    with subprocess.Popen(
        [sys.executable, CHILD, kind, backend, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            workers = _worker_pids(tmp_path, names)
            if sig == signal.SIGINT:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -sig, (out, err)
    if sig == signal.SIGINT:
        assert "RAISED KeyboardInterrupt CANCELLED" in out, (out, err)
    else:  # re-delivered to the default handler once the run was cleaned up: no output
        assert "Traceback" not in err, err
    assert not [p for p in workers if alive(p)]
    assert "first" in completed(tmp_path / "state.json")
    assert not {"sleep_a", "sleep_b"} & completed(tmp_path / "state.json")


ORPHANED = """
import os, sys, time
from functools import partial
sys.path.insert(0, sys.argv[2])
from flowweaver import ProcessExecutor, Task, Workflow
from tests import process_tasks

wf = Workflow("orphaned")
wf.add_task(Task("sleeper", partial(process_tasks.record_pid, sys.argv[1], "sleeper", 3600)))
ProcessExecutor(1).execute(wf)
"""


@pytest.mark.timeout(60)
def test_a_worker_process_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "orphaned.py"
    script.write_text(ORPHANED)
    root = str(Path(__file__).resolve().parents[1])
    with subprocess.Popen([sys.executable, str(script), str(tmp_path), root]) as proc:
        try:
            [worker] = _worker_pids(tmp_path, ["sleeper"])
            proc.kill()  # no cleanup at all: the worker notices by itself
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
    end = time.monotonic() + 10
    while running(worker) and time.monotonic() < end:
        time.sleep(0.05)
    assert not running(worker)
