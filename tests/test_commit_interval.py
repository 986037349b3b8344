"""``commit_interval``: a finished task's record is committed within that many seconds,
however many other tasks keep being ready (issue 9, item 4).

Each run starts with a task ``first``; then many small tasks, all ready, keep every slot
busy, so the group-commit writer never sees an idle run. Each of them reads the store from
outside (a second connection, or the JSON file and journal) and notes whether ``first`` is
durable yet. Those that start well after ``commit_interval`` must all see it.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import flowweaver
import flowweaver.aio as aio
from flowweaver import (
    SequentialExecutor,
    Task,
    ThreadedExecutor,
    Workflow,
    WorkflowValidationError,
)
from tests.store_helpers import completed

INTERVAL = 0.05
PROBES = 60
PROBE_SLEEP = 0.02
# A probe that starts this long after ``first`` ended must see it durable: the interval
# plus generous room for a loaded machine.
WELL_AFTER = 0.4


class Probes:
    """The workflow and what its probes saw: (seconds since ``first`` ended, durable?)."""

    def __init__(self, store_file: Path) -> None:
        self.store_file = store_file
        self.first_ended = math.inf
        self.seen: list[tuple[float, bool]] = []
        self._lock = threading.Lock()

    def first(self) -> int:
        self.first_ended = time.monotonic()
        return 1

    def look(self) -> None:
        since = time.monotonic() - self.first_ended
        durable = "first" in completed(self.store_file)
        with self._lock:
            self.seen.append((since, durable))

    def sync_probe(self) -> int:
        self.look()
        time.sleep(PROBE_SLEEP)
        return 0

    async def async_probe(self) -> int:
        self.look()
        await anyio.sleep(PROBE_SLEEP)
        return 0

    def workflow(self, probe: Callable[[], Any]) -> Workflow:
        wf = Workflow("interval")
        wf.add_task(Task("first", self.first))
        for k in range(PROBES):
            wf.add_task(Task(f"p{k:02d}", probe))
        return wf

    def check(self) -> None:
        late = [durable for since, durable in self.seen if since >= WELL_AFTER]
        assert late, f"no probe ran {WELL_AFTER} s after 'first': the test proves nothing"
        assert all(late), (
            f"'first' was not durable {WELL_AFTER} s after it finished "
            f"(commit_interval={INTERVAL}): {self.seen}"
        )


def make_store(kind: str, path: Path, form: Any) -> tuple[Any, Path]:
    if kind == "json":
        return form.JSONStateStore(path / "s.json"), path / "s.json"
    return form.SQLiteStateStore(path / "s.db"), path / "s.db"


STORES = ["json", "sqlite"]


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize(
    "executor",
    [
        lambda store: SequentialExecutor(store, commit_interval=INTERVAL),
        lambda store: ThreadedExecutor(2, store, commit_interval=INTERVAL),
    ],
    ids=["sequential-inline", "threaded"],
)
def test_blocking_run_commits_within_the_interval_while_tasks_are_ready(
    tmp_path: Path, kind: str, executor: Callable[[Any], Any]
) -> None:
    store, store_file = make_store(kind, tmp_path, flowweaver)
    probes = Probes(store_file)
    executor(store).execute(probes.workflow(probes.sync_probe))
    probes.check()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("form", ["sequential", "async"])
async def test_awaited_run_commits_within_the_interval_while_tasks_are_ready(
    tmp_path: Path, kind: str, form: str
) -> None:
    store, store_file = make_store(kind, tmp_path, aio)
    probes = Probes(store_file)
    if form == "sequential":
        await aio.SequentialExecutor(store, commit_interval=INTERVAL).execute(
            probes.workflow(probes.sync_probe)
        )
    else:
        await aio.AsyncExecutor(2, store, commit_interval=INTERVAL).execute(
            probes.workflow(probes.async_probe)
        )
    probes.check()


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, "0.2", True, None])
@pytest.mark.parametrize("cls", [SequentialExecutor, ThreadedExecutor, aio.AsyncExecutor])
def test_commit_interval_must_be_a_positive_finite_number(cls: Any, value: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="commit_interval"):
        cls(commit_interval=value)


def test_commit_interval_default_is_well_under_a_second() -> None:
    assert 0 < ThreadedExecutor().commit_interval < 1
    assert SequentialExecutor(commit_interval=1).commit_interval == 1.0


KILLED_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from flowweaver import SQLiteStateStore, JSONStateStore, Task, ThreadedExecutor, Workflow

    store_path, log_path = sys.argv[1:3]
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def make(name):
        def run():
            time.sleep(0.01)
            os.write(log, (name + "\\n").encode())  # finished: one write, never torn
            return name
        return run

    wf = Workflow("wide")
    for k in range(3000):
        wf.add_task(Task(f"t{k:04d}", make(f"t{k:04d}")))
    store = JSONStateStore(store_path) if store_path.endswith(".json") else (
        SQLiteStateStore(store_path))
    ThreadedExecutor(8, store).execute(wf)
    """
)


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("kind", STORES)
def test_killed_threaded_run_keeps_most_of_its_finished_work(tmp_path: Path, kind: str) -> None:
    """SIGKILL a wide threaded run after a second: the tasks that finished more than
    ``commit_interval`` before the kill have their records (before: none had)."""
    script = tmp_path / "child.py"
    script.write_text(KILLED_CHILD)
    store_file = tmp_path / ("s.json" if kind == "json" else "s.db")
    log = tmp_path / "finished.log"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store_file), str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not (log.exists() and log.stat().st_size) and proc.poll() is None:
        assert time.monotonic() < deadline, "the child never finished a task"
        time.sleep(0.01)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    finished = log.read_text().split()
    saved = completed(store_file)
    assert saved <= set(finished)
    assert len(finished) > 100, "too few tasks finished to judge"
    # Everything but the last commit_interval's worth (plus a batch in flight) is saved.
    assert len(saved) >= 0.5 * len(finished), (len(saved), len(finished))
