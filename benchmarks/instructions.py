"""Instructions per task, counted by valgrind: an A/B gate that a busy machine cannot blur.

    python benchmarks/instructions.py [--n 2000] [--executor seq] [--store none] [REPO ...]

Wall-clock ratios need a quiet machine; on a shared one (other builds, other tests) they
move by 20% from run to run. callgrind counts the instructions the interpreter executes,
which do not depend on the load. For each checkout given (default: this one) it runs the
layered DAG of no-op tasks once under ``valgrind --tool=callgrind`` and once more building
the workflow without running it, and prints (run - build) / n: the engine's instructions
per task. Threads make the threaded executor's count vary a little between runs; the
sequential and async ones repeat exactly. Needs valgrind (Debian's ``valgrind`` package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Runs in the child, under valgrind: a warm-up run first (imports and lazy loads are then
# outside the difference), then the measured run, or only its build.
CHILD = """
import os, sys, tempfile
repo, executor, store, n, mode = sys.argv[1:6]
sys.path.insert(0, repo)
import anyio
import flowweaver, flowweaver.aio
from benchmarks.workloads import make, noop, anoop
from benchmarks.systems import build_workflow

def new_store():
    folder = tempfile.mkdtemp()
    if store == "sqlite":
        return flowweaver.SQLiteStateStore(os.path.join(folder, "s.db"))
    if store == "json":
        return flowweaver.JSONStateStore(os.path.join(folder, "s.json"))
    return None

flowweaver.SequentialExecutor(state_store=new_store()).execute(
    build_workflow(make("layered", 50), noop)
)
is_async = executor in ("async", "async-trio")
wf = build_workflow(make("layered", int(n)), anoop if is_async else noop)
st = new_store()
if mode == "run":
    if executor == "seq":
        flowweaver.SequentialExecutor(state_store=st).execute(wf)
    elif executor == "threaded":
        flowweaver.ThreadedExecutor(4, state_store=st).execute(wf)
    elif executor == "async":
        flowweaver.ConcurrentExecutor(state_store=st).execute(wf)
    else:
        anyio.run(flowweaver.aio.AsyncExecutor(state_store=st).execute, wf, backend="trio")
"""

EXECUTORS = ("seq", "threaded", "async", "async-trio")
STORES = ("none", "sqlite", "json")


def count(repo: Path, executor: str, store: str, n: int, mode: str) -> int:
    """Instructions of one child process (the whole interpreter, start to exit)."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            CHILD,
            str(repo),
            executor,
            store,
            str(n),
            mode,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_task(repo: Path, executor: str, store: str, n: int) -> float:
    return (count(repo, executor, store, n, "run") - count(repo, executor, store, n, "build")) / n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python benchmarks/instructions.py", description=__doc__)
    p.add_argument("repos", nargs="*", type=Path, default=[HERE], help="checkouts to compare")
    p.add_argument("--n", type=int, default=2000, help="tasks in the layered DAG")
    p.add_argument("--executor", choices=EXECUTORS, default="seq")
    p.add_argument("--store", choices=STORES, default="none")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        p.exit(2, "valgrind is not installed (Debian: apt-get install valgrind)\n")
    first: float | None = None
    for repo in args.repos:
        value = per_task(repo.resolve(), args.executor, args.store, args.n)
        ratio = "" if first is None else f"  {value / first:.3f}x the first"
        first = value if first is None else first
        print(f"{args.executor:10} {args.store:6} {value:>10,.0f} instructions/task  {repo}{ratio}")


if __name__ == "__main__":
    main()
