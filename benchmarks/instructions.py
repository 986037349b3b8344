"""Instructions per task, counted by valgrind: an A/B gate that a busy machine cannot blur.

    python benchmarks/instructions.py [--n 2000] [--executor seq] [--store none]
                                      [--workload layered|chain|fan_out|map] [--params]
                                      [REPO ...]

Wall-clock ratios need a quiet machine; on a shared one (other builds, other tests) they
move by 20% from run to run. callgrind counts the instructions the interpreter executes,
which do not depend on the load. For each checkout given (default: this one) it runs the
layered DAG of no-op tasks once under ``valgrind --tool=callgrind`` and once more building
the workflow without running it, and prints (run - build) / n: the engine's instructions
per task. Threads make the threaded executor's count vary a little between runs; the
sequential and async ones repeat exactly. Needs valgrind (Debian's ``valgrind`` package).

``--workload map`` counts a map of n items instead (a source, the mapped task, one task
taking its list), and ``--workload fan_out`` its static twin (a source, n tasks depending
on it, one depending on all of them), so per item and per task compare exactly.

``--params`` runs with one run parameter that every task takes (``params={"date": ...}``;
the no-op tasks take ``**kw``): the cost of parameters and of hashing them into the
records (issue 12). Without it, ``execute`` gets no ``params`` at all, so a checkout from
before run parameters existed can be counted too.
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
repo, executor, store, n, mode, workload, with_params = sys.argv[1:8]
sys.path.insert(0, repo)
import anyio
import flowweaver, flowweaver.aio
from benchmarks.workloads import make, noop, anoop
from benchmarks import systems

def build(size, func):
    if workload == "map":
        return systems.build_map_workflow(size, func)
    if workload == "fan_out":
        return systems.build_fan_out_workflow(size, func)
    return systems.build_workflow(make(workload, size), func)

def new_store():
    folder = tempfile.mkdtemp()
    if store == "sqlite":
        return flowweaver.SQLiteStateStore(os.path.join(folder, "s.db"))
    if store == "json":
        return flowweaver.JSONStateStore(os.path.join(folder, "s.json"))
    return None

flowweaver.SequentialExecutor(state_store=new_store()).execute(build(50, noop))
is_async = executor in ("async", "async-trio")
wf = build(int(n), anoop if is_async else noop)
st = new_store()
# no keyword at all without --params: a tree from before run parameters takes none
options = {"params": {"date": "2026-11-30"}} if with_params == "1" else {}
if mode == "run":
    if executor == "seq":
        flowweaver.SequentialExecutor(state_store=st).execute(wf, **options)
    elif executor == "threaded":
        flowweaver.ThreadedExecutor(4, state_store=st).execute(wf, **options)
    elif executor == "async":
        flowweaver.ConcurrentExecutor(state_store=st).execute(wf, **options)
    else:
        run = flowweaver.aio.AsyncExecutor(state_store=st).execute
        anyio.run(lambda: run(wf, **options), backend="trio")
"""

EXECUTORS = ("seq", "threaded", "async", "async-trio")
STORES = ("none", "sqlite", "json")
WORKLOADS = ("layered", "wide", "chain", "fan_out", "map")


def count(
    repo: Path,
    executor: str,
    store: str,
    n: int,
    mode: str,
    workload: str = "layered",
    params: bool = False,
) -> int:
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
            workload,
            "1" if params else "0",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_task(
    repo: Path,
    executor: str,
    store: str,
    n: int,
    workload: str = "layered",
    params: bool = False,
) -> float:
    run = count(repo, executor, store, n, "run", workload, params)
    return (run - count(repo, executor, store, n, "build", workload, params)) / n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python benchmarks/instructions.py", description=__doc__)
    p.add_argument("repos", nargs="*", type=Path, default=[HERE], help="checkouts to compare")
    p.add_argument("--n", type=int, default=2000, help="tasks in the layered DAG")
    p.add_argument("--executor", choices=EXECUTORS, default="seq")
    p.add_argument("--store", choices=STORES, default="none")
    p.add_argument("--workload", choices=WORKLOADS, default="layered")
    p.add_argument("--params", action="store_true", help="run with a parameter every task takes")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        p.exit(2, "valgrind is not installed (Debian: apt-get install valgrind)\n")
    first: float | None = None
    for repo in args.repos:
        value = per_task(
            repo.resolve(), args.executor, args.store, args.n, args.workload, args.params
        )
        ratio = "" if first is None else f"  {value / first:.3f}x the first"
        first = value if first is None else first
        params = "params" if args.params else "-"
        print(
            f"{args.executor:10} {args.store:6} {args.workload:8} {value:>10,.0f} "
            f"instructions/task  {params:6}  {repo}{ratio}"
        )


if __name__ == "__main__":
    main()
