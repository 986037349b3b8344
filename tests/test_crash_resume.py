"""A run killed with SIGKILL at any moment resumes, and never repeats a committed task.

A child process runs a 240-task layered workflow with a state store, logging each task
as it starts; it is killed at a random moment, several times over. After each kill the
store must open, must still hold every completed record it held before (no store loses
a record), and the next run must not start any task whose completion was committed.
Under every ``durability`` setting the completed records are closed upwards: no record
is ever committed without the records of the tasks it was computed from, which is what
``"ordered"`` promises while letting dependents start before their upstream's commit.
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

    store_path, executor_name, log_path, durability = sys.argv[1:5]
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    pause = float(os.environ.get("FW_TASK_SLEEP", "0.01"))
    if os.environ.get("FW_KILL_AT"):
        # An exact write point: SIGKILL this process at the Nth batch a run saves, just
        # before it is written, just after, or halfway through the JSON journal's append
        # (a torn line on disk).
        import signal
        from flowweaver._store._io import Files
        from flowweaver._sync._json_store import JSONSession
        from flowweaver._sync._sqlite_store import SQLiteSession

        point, _, nth = os.environ["FW_KILL_AT"].partition(":")
        calls = [0]

        def die():
            os.kill(os.getpid(), signal.SIGKILL)

        def wrap(save):
            def kill_around(self, workflow, records):
                calls[0] += 1
                if calls[0] == int(nth) and point == "before":
                    die()
                save(self, workflow, records)
                if calls[0] == int(nth) and point == "after":
                    die()
            return kill_around

        JSONSession.save = wrap(JSONSession.save)
        SQLiteSession.save = wrap(SQLiteSession.save)
        append = Files.append

        def torn_append(self, path, data, sync=True):
            if point == "torn" and calls[0] == int(nth) and path.name.endswith(".journal"):
                with open(path, "ab") as f:
                    f.write(data[: len(data) // 2])
                die()
            return append(self, path, data, sync)

        Files.append = torn_append

    def make(name):
        def run(**upstream):
            os.write(log, (name + "\\n").encode())  # one write: never torn by a kill
            time.sleep(pause)
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
    cls = JSONStateStore if store_path.endswith(".json") else SQLiteStateStore
    store = cls(store_path, durability=durability)
    executor = {"sequential": SequentialExecutor, "threaded": ThreadedExecutor}[executor_name]
    # A short interval: an ordered run commits often enough to be killed mid-way.
    executor(state_store=store, commit_interval=0.02).execute(wf)
    print("DONE", flush=True)
    """
)

TOTAL = 240
KILLS = 4


def started(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def start_child(
    script: Path,
    store: Path,
    executor: str,
    log: Path,
    durability: str = "normal",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Run :data:`CHILD` (written to ``script``) on ``store``, logging to ``log``."""
    return subprocess.Popen(
        [sys.executable, str(script), str(store), executor, str(log), durability],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_started(proc: subprocess.Popen[str], log: Path, count: int = 5) -> None:
    """Wait until ``count`` tasks of the child's run have started (or it ended)."""
    deadline = time.monotonic() + 20
    while len(started(log)) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the child never started its tasks"
        time.sleep(0.005)


def upstream_of() -> dict[str, list[str]]:
    """Each task's upstream tasks in :data:`CHILD`'s workflow (the same seeded draw)."""
    rng = random.Random(7)
    deps: dict[str, list[str]] = {}
    previous: list[str] = []
    for layer in range(12):
        current = [f"t{layer:02d}_{k:02d}" for k in range(20)]
        for name in current:
            deps[name] = rng.sample(previous, 2) if previous else []
        previous = current
    return deps


# Every setting under each store; the executors split between them to keep CI short.
SETTINGS = [
    ("normal", "sequential"),
    ("fsync", "threaded"),
    ("ordered", "threaded"),
]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize(("durability", "executor"), SETTINGS)
@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_runs_killed_at_random_resume_without_repeating_committed_tasks(
    tmp_path: Path, kind: str, executor: str, durability: str
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    store = tmp_path / f"state.{'json' if kind == 'json' else 'db'}"
    rng = random.Random(f"{kind}-{executor}-{durability}")
    deps = upstream_of()
    before: set[str] = set()
    for attempt in range(KILLS + 1):
        log = tmp_path / f"run{attempt}.log"
        proc = start_child(script, store, executor, log, durability)
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
        orphans = sorted(n for n in now for up in deps[n] if up not in now)
        assert not orphans, f"records committed before their upstream's: {orphans}"
        rerun = before & set(started(log))
        assert not rerun, f"committed tasks ran again: {sorted(rerun)}"
        before = now
    assert len(before) == TOTAL


POINTS = [
    ("json", "before"),
    ("json", "after"),
    ("json", "torn"),
    ("sqlite", "before"),
    ("sqlite", "after"),
]


# Each point under two settings, each setting at four or more points (all fifteen pairs
# cost CI half a minute more and find nothing the rotation does not).
EXACT = [
    (kind, point, ("normal", "fsync", "ordered")[(i + k) % 3])
    for i, (kind, point) in enumerate(POINTS)
    for k in (0, 1)
]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize(("kind", "point", "durability"), EXACT)
def test_a_run_killed_at_an_exact_write_point_resumes_exactly(
    tmp_path: Path, kind: str, point: str, durability: str
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    store = tmp_path / f"state.{'json' if kind == 'json' else 'db'}"
    deps = upstream_of()
    env = {**os.environ, "FW_TASK_SLEEP": "0", "FW_KILL_AT": f"{point}:4"}
    # An ordered run commits every commit_interval (0.02 s): its tasks must take long
    # enough to reach a 4th batch.
    if durability == "ordered":
        env["FW_TASK_SLEEP"] = "0.002"
    killed = start_child(script, store, "threaded", tmp_path / "run0", durability, env)
    _, err = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, err
    saved = completed(store)
    assert saved, "the batches before the kill point were not kept"
    orphans = sorted(n for n in saved for up in deps[n] if up not in saved)
    assert not orphans, f"records committed before their upstream's: {orphans}"
    log = tmp_path / "run1.log"
    proc = start_child(script, store, "threaded", log, durability)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rerun = saved & set(started(log))
    assert not rerun, f"committed tasks ran again: {sorted(rerun)}"
    assert completed(store) == set(deps)
    assert set(started(log)) == set(deps) - saved
