"""A run killed (SIGKILL) in the middle of a 2,000-item map resumes item by item.

A child process maps over 2,000 file names with a state store; each item appends its key
to a side file (fsynced) before it returns. The child is killed once a good share of
item records are committed. The store is then read as it is (nothing writes after the
kill), and the same workflow runs again in this process: no item whose record was
committed runs again, every other item does, and the result is complete and in order.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from flowweaver import JSONStateStore, SequentialExecutor, SQLiteStateStore, Task, Workflow
from tests.store_helpers import completed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

N = 2000
# Killed once at least this many item records are committed (and before the end).
KILL_AFTER = 400

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from flowweaver import JSONStateStore, SequentialExecutor, SQLiteStateStore
    from flowweaver import ThreadedExecutor
    sys.path.insert(0, sys.argv[4])
    from tests.test_map_crash import workflow

    store_path, executor_name, side_path = sys.argv[1:4]
    side = os.open(side_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def item(list_files):
        src = list_files
        os.write(side, (src + "\\n").encode())  # one write: never torn by a kill
        os.fsync(side)
        time.sleep(0.001)  # so that even a fast machine is killed midway
        return src.upper()

    store = (JSONStateStore if store_path.endswith(".json") else SQLiteStateStore)(store_path)
    executor = {"sequential": SequentialExecutor, "threaded": ThreadedExecutor}[executor_name]
    executor(state_store=store).execute(workflow(item))
    print("DONE", flush=True)
    """
)


def names() -> list[str]:
    return [f"file-{n:04d}.txt" for n in range(N)]


def workflow(item: Any) -> Workflow:
    wf = Workflow("files")
    wf.add_task(Task("list_files", names))
    wf.add_task(Task("process", item), map_over="list_files", map_key=str)
    return wf


def committed_items(store: Path) -> set[str]:
    """The keys of the item records committed in ``store``, read without FlowWeaver."""
    try:
        done = completed(store)
    except sqlite3.OperationalError:  # the child has not made its table yet
        return set()
    return {n[len("process[") : -1] for n in done if n.startswith("process[")}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("executor", ["sequential", "threaded"])
@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_map_killed_midway_runs_only_the_items_not_committed(
    tmp_path: Path, kind: str, executor: str
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    store = tmp_path / ("state.json" if kind == "json" else "state.db")
    side = tmp_path / "ran.log"
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), executor, str(side), root],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and len(committed_items(store)) < KILL_AFTER:
            assert time.monotonic() < deadline, "the child committed too few items in time"
            time.sleep(0.02)
        assert proc.poll() is None, f"the child ended before the kill: {proc.stderr.read()}"  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err

    saved = committed_items(store)
    ran_before = set(side.read_text().split())
    assert KILL_AFTER <= len(saved) < N
    assert saved <= ran_before  # a committed item did run

    ran: list[str] = []

    def item(list_files: str) -> str:
        ran.append(list_files)
        return list_files.upper()

    wf = workflow(item)
    path = str(store)
    again = JSONStateStore(path) if kind == "json" else SQLiteStateStore(path)
    SequentialExecutor(state_store=again).execute(wf)
    assert not saved & set(ran), "committed items ran again"
    assert sorted(ran) == sorted(set(names()) - saved)  # every other item ran, once
    process = wf.get_task("process")
    assert process is not None
    assert process.result == [n.upper() for n in names()]
