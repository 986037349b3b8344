"""DaskExecutor on a LocalCluster with two worker processes: tasks run elsewhere."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from flowweaver import (  # noqa: E402
    DaskExecutor,
    Task,
    TaskRecomputed,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
)
from flowweaver._dask._watch import NoWorkersError  # noqa: E402
from tests._cli_helpers import command_env  # noqa: E402

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow


def test_tasks_run_in_the_worker_processes() -> None:
    def where(**upstream: int) -> int:
        time.sleep(0.3)  # long enough that the two idle workers both take tasks
        return os.getpid()

    wf = Workflow("processes")
    for i in range(6):
        wf.add_task(Task(f"pid{i}", where))
    wf.add_task(
        Task("pids", lambda **pids: sorted(set(pids.values()))),
        depends_on=[f"pid{i}" for i in range(6)],
    )
    executor = DaskExecutor(
        cluster_options={"n_workers": 2, "threads_per_worker": 1, "processes": True}
    )
    executor.execute(wf)
    pids = wf.get_task("pids").result  # type: ignore[union-attr]
    assert os.getpid() not in pids
    assert len(pids) == 2


CTRL_C_SCRIPT = """
import os, signal, threading, time
import distributed
from flowweaver import DaskExecutor, Task, Workflow

def interrupt_soon(task):
    # Ctrl-C once 'quick' has completed, while 'slow' still runs on the cluster.
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()

if __name__ == "__main__":
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        wf = Workflow("ctrl-c")
        wf.add_task(Task("quick", lambda: {"rows": 3}, callbacks=[interrupt_soon]))
        wf.add_task(Task("slow", lambda: time.sleep(3)))
        try:
            DaskExecutor(cluster.scheduler_address).execute(wf)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    print("quick:", wf.get_task("quick").snapshot(), flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_ctrl_c_on_a_run_by_address_keeps_completed_results(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "interrupted" in done.stdout, done.stderr
    assert "quick: (<TaskStatus.COMPLETED: 'COMPLETED'>, {'rows': 3}, None)" in done.stdout, (
        done.stderr
    )


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_losing_every_worker_mid_run_fails_in_flight_tasks_after_worker_timeout(
    tmp_path: Path,
) -> None:
    started = tmp_path / "started"

    def stuck() -> None:
        started.touch()
        time.sleep(30)

    def close_workers_once_started() -> None:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        cluster.scale(0)  # the nannies stop their worker processes

    wf = Workflow("workers-gone")
    wf.add_task(Task("stuck", stuck))
    wf.add_task(Task("after", lambda stuck: stuck), depends_on=["stuck"])
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        closer = threading.Thread(target=close_workers_once_started, daemon=True)
        closer.start()
        with pytest.raises(WorkflowExecutionError) as info:
            DaskExecutor(cluster.scheduler_address, worker_timeout=2).execute(wf)
        closer.join(timeout=10)
    assert isinstance(info.value.errors["stuck"], NoWorkersError)
    assert info.value.skipped_tasks == ["after"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_killed_worker_makes_dask_recompute_and_the_run_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    release = tmp_path / "release"

    def part(**upstream: int) -> int:
        return os.getpid()  # the result stays on the worker that computed it

    def gate() -> int:
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return 0

    wf = Workflow("recomputed")
    parts = [f"part{i}" for i in range(6)]
    for name in parts:
        wf.add_task(Task(name, part))
    wf.add_task(Task("gate", gate))
    # Still needs every part once the gate opens, so Dask recomputes the lost ones.
    wf.add_task(Task("sink", lambda **up: len(up)), depends_on=[*parts, "gate"])

    def kill_a_worker_then_release() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(wf.get_task(n).status is TaskStatus.COMPLETED for n in parts):  # type: ignore[union-attr]
                break
            time.sleep(0.05)
        os.kill(wf.get_task("part0").result, signal.SIGKILL)  # type: ignore[union-attr]
        time.sleep(1)  # the scheduler notices the loss and recomputes
        release.touch()

    events: list[TaskRecomputed] = []
    executor = DaskExecutor(
        cluster_options={"n_workers": 2, "threads_per_worker": 2, "processes": True},
        observer=lambda e: events.append(e) if isinstance(e, TaskRecomputed) else None,
    )
    killer = threading.Thread(target=kill_a_worker_then_release, daemon=True)
    killer.start()
    with caplog.at_level(logging.WARNING, logger="flowweaver"):
        executor.execute(wf)
    killer.join(timeout=10)
    assert wf.get_task("sink").result == 7  # type: ignore[union-attr]
    assert events, "no TaskRecomputed event"
    assert {e.task for e in events} <= set(parts)
    assert all(e.attempt == 1 and e.runs == 2 for e in events)
    assert all(wf.get_task(n).attempts == 1 for n in parts)  # type: ignore[union-attr]
    assert "Dask ran its function again" in caplog.text
