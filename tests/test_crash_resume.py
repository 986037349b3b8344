"""A run killed with SIGKILL at any moment resumes, and never repeats a committed task.

A child process runs a 240-task layered workflow with a state store, logging each task
as it starts; it is killed at a random moment, several times over. After each kill the
store must open, must still hold every completed record it held before (no store loses
a record), and the next run must not start any task whose completion was committed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.store_helpers import completed

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import os, random, sys, time
    from flowweaver import JSONStateStore, SequentialExecutor, SQLiteStateStore, Task
    from flowweaver import ThreadedExecutor, Workflow

    store_path, executor_name, log_path = sys.argv[1:4]
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def make(name):
        def run(**upstream):
            os.write(log, (name + "\\n").encode())  # one write: never torn by a kill
            time.sleep(0.01)
            return {"name": name, "inputs": sorted(upstream)}
        return run

    rng = random.Random(7)
    wf = Workflow("crash")
    previous = []
    for layer in range(12):
        current = []
        for k in range(20):
            name = f"t{layer:02d}_{k:02d}"
            deps = rng.sample(previous, 2) if previous else []
            wf.add_task(Task(name, make(name)), depends_on=deps)
            current.append(name)
        previous = current
    if store_path.endswith(".json"):
        store = JSONStateStore(store_path)
    else:
        store = SQLiteStateStore(store_path)
    executor = {"sequential": SequentialExecutor, "threaded": ThreadedExecutor}[executor_name]
    executor(state_store=store).execute(wf)
    print("DONE", flush=True)
    """
)

TOTAL = 240
KILLS = 4


def started(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def start_child(script: Path, store: Path, executor: str, log: Path) -> subprocess.Popen[str]:
    """Run :data:`CHILD` (written to ``script``) on ``store``, logging to ``log``."""
    return subprocess.Popen(
        [sys.executable, str(script), str(store), executor, str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_started(proc: subprocess.Popen[str], log: Path, count: int = 5) -> None:
    """Wait until ``count`` tasks of the child's run have started (or it ended)."""
    deadline = time.monotonic() + 20
    while len(started(log)) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the child never started its tasks"
        time.sleep(0.005)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("executor", ["sequential", "threaded"])
@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_runs_killed_at_random_resume_without_repeating_committed_tasks(
    tmp_path: Path, kind: str, executor: str
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    store = tmp_path / f"state.{'json' if kind == 'json' else 'db'}"
    rng = random.Random(f"{kind}-{executor}")
    before: set[str] = set()
    for attempt in range(KILLS + 1):
        log = tmp_path / f"run{attempt}.log"
        proc = start_child(script, store, executor, log)
        last = attempt == KILLS
        if not last:
            # wait until some tasks of this run have started, then kill at a random moment
            wait_started(proc, log)
            time.sleep(rng.uniform(0, 0.15))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        if last or proc.returncode == 0:
            assert proc.returncode == 0, err
            assert "DONE" in out
        now = completed(store)
        assert before <= now, f"the store lost completed records: {sorted(before - now)}"
        rerun = before & set(started(log))
        assert not rerun, f"committed tasks ran again: {sorted(rerun)}"
        before = now
    assert len(before) == TOTAL
