"""What worker processes cost: ``python benchmarks/processes.py [--n 1000] [--repeats 5]``.

A task in a worker process (``ProcessExecutor``, ``isolation="process"``) pays for its
function, inputs and result going through cloudpickle and a socket, and each run pays for
starting its workers. This times no-op sync tasks (``wide`` and ``chain``, N tasks) under
``ThreadedExecutor(2)``, ``ProcessExecutor(2)`` and ``ThreadedExecutor(2)`` whose tasks
say ``isolation="process"``, taking turns in one process, around ``execute`` (worker
start-up included, as a user's run pays it), and prints the median microseconds per task
and the ratio to the threads. Then the start of one worker: the first job of a fresh
``ProcessPool`` less a job on a warm worker, median of ``--starts``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import workloads
from benchmarks.workloads import noop

SYSTEMS = ("ThreadedExecutor(2)", "ProcessExecutor(2)", "isolation='process'")


def _workflow(dag: workloads.Dag, isolation: str | None) -> Any:
    from flowweaver import Task, Workflow

    wf = Workflow(f"procs-{dag.workload}-{len(dag)}")
    names = dag.names
    for name, ups in zip(names, dag.deps, strict=True):
        wf.add_task(Task(name, noop, isolation=isolation), depends_on=[names[j] for j in ups])
    return wf


def _once(system: str, dag: workloads.Dag) -> float:
    import flowweaver

    if system == "ProcessExecutor(2)":
        executor: Any = flowweaver.ProcessExecutor(2)
        wf = _workflow(dag, None)
    else:
        executor = flowweaver.ThreadedExecutor(2)
        wf = _workflow(dag, "process" if system.startswith("isolation") else None)
    gc.collect()
    started = time.perf_counter()
    executor.execute(wf)
    return time.perf_counter() - started


def per_task(n: int, repeats: int) -> dict[tuple[str, str], float]:
    """Median microseconds per task, by (workload, system)."""
    found: dict[tuple[str, str], float] = {}
    for workload in ("wide", "chain"):
        dag = workloads.make(workload, n)
        times: dict[str, list[float]] = {s: [] for s in SYSTEMS}
        for r in range(repeats):
            for s in SYSTEMS[r % 3 :] + SYSTEMS[: r % 3]:  # take turns
                times[s].append(_once(s, dag))
        for s in SYSTEMS:
            found[workload, s] = statistics.median(times[s]) / len(dag) * 1e6
    return found


def worker_start(rounds: int) -> float:
    """Median milliseconds to start a worker and have it answer its first job."""
    from flowweaver._engine._processes import ProcessPool

    starts = []
    for _ in range(rounds):
        pool = ProcessPool(1, 1.0, "asyncio", "bench")
        try:
            began = time.perf_counter()
            pool.run("t", noop, {}, None, False)
            first = time.perf_counter() - began
            warm = []
            for _ in range(5):
                began = time.perf_counter()
                pool.run("t", noop, {}, None, False)
                warm.append(time.perf_counter() - began)
        finally:
            pool.close()
        starts.append(first - statistics.median(warm))
    return statistics.median(starts) * 1e3


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python benchmarks/processes.py", description=__doc__)
    p.add_argument("--n", type=int, default=1_000, help="tasks per workload")
    p.add_argument("--repeats", type=int, default=5, help="repetitions (median shown)")
    p.add_argument("--starts", type=int, default=15, help="worker starts (median shown)")
    args = p.parse_args(argv)
    costs = per_task(args.n, args.repeats)
    start = worker_start(args.starts)
    print(f"no-op sync tasks, N = {args.n:,}, median of {args.repeats}: us per task")
    print(f"| workload | {' | '.join(SYSTEMS)} |")
    print(f"|---|{'---|' * len(SYSTEMS)}")
    for workload in ("wide", "chain"):
        base = costs[workload, SYSTEMS[0]]
        cells = [f"{base:.0f}"] + [
            f"{costs[workload, s]:.0f} ({costs[workload, s] / base:.1f}x)" for s in SYSTEMS[1:]
        ]
        print(f"| {workload} | {' | '.join(cells)} |")
    print(f"worker start (first job less a warm one), median of {args.starts}: {start:.1f} ms")
    return {"per_task": costs, "start_ms": start}


if __name__ == "__main__":
    main()
