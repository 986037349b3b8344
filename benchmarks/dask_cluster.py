"""FlowWeaver's DaskExecutor against Dask's own scheduling, on one local cluster.

    python benchmarks/dask_cluster.py                  # 10,000 tasks, 2 worker processes
    python benchmarks/dask_cluster.py --in-process     # threads in this process instead

The DAG: ``--tasks`` no-op tasks in layers of ``--width``; each task after the first
layer depends on 2 tasks of the previous layer drawn at random (fixed ``--seed``). The
same DAG runs, interleaved ``--repeat`` times, on the same cluster:

* FlowWeaver: a ``Workflow`` of ``Task`` objects, ``DaskExecutor(client).execute``. The
  driver schedules: it submits each task once its upstream tasks have finished, passing
  their futures as inputs.
* ``dask.delayed``: the same functions as delayed calls; Dask's scheduler gets the whole
  graph at once. One extra sink task depends on every task nobody depends on, so a
  single ``compute`` runs all of them.
* for reference, the same graph as a plain dict handed to ``client.get`` (Dask with no
  collection layer at all).

What is timed: from handing the DAG over to every task finished on the cluster. Building
the ``Workflow`` and the delayed objects is not timed. (``dask.delayed`` builds in time
quadratic in the depth of the graph, since each delayed object carries its whole
ancestry, and takes keyword inputs much more slowly than positional ones; so it is built
once, with positional inputs, and computed again each round.) Between rounds the script
waits until the scheduler has forgotten every task. The machine's load moves every
number; compare the medians, and the ratio of the medians. The target: FlowWeaver at
most 1.5x ``dask.delayed``. The exit status is 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from typing import Any

TARGET = 1.5


def noop(*args: Any, **kwargs: Any) -> None:
    """A task that does nothing with its inputs (FlowWeaver passes them by keyword)."""


def sink(*args: Any) -> None:
    """The extra task that makes one ``compute`` run the whole delayed graph."""


def layered_dag(tasks: int, width: int, seed: int) -> list[tuple[int, ...]]:
    """For each task index, the indices of its upstream tasks."""
    rng = random.Random(seed)
    upstream: list[tuple[int, ...]] = []
    for i in range(tasks):
        layer = i // width
        if layer == 0:
            upstream.append(())
        else:
            previous = range((layer - 1) * width, min(layer * width, tasks))
            upstream.append(tuple(rng.sample(previous, min(2, len(previous)))))
    return upstream


def build_workflow(name: str, upstream: list[tuple[int, ...]]) -> Any:
    from flowweaver import Task, Workflow

    wf = Workflow(name)
    for i, ups in enumerate(upstream):
        wf.add_task(Task(f"t{i}", noop), depends_on=[f"t{j}" for j in ups])
    return wf


def build_delayed(upstream: list[tuple[int, ...]]) -> Any:
    from dask import delayed

    nodes: list[Any] = []
    needed = [False] * len(upstream)
    for ups in upstream:
        for j in ups:
            needed[j] = True
        nodes.append(delayed(noop, pure=False)(*[nodes[j] for j in ups]))
    leaves = [node for node, used in zip(nodes, needed, strict=True) if not used]
    return delayed(sink, pure=False)(*leaves)


def raw_graph(upstream: list[tuple[int, ...]], round_: int) -> dict[str, Any]:
    from dask.utils import apply

    def key(i: int) -> str:
        return f"noop-raw{round_}-{i}"

    return {
        key(i): (apply, noop, [], (dict, [[f"t{j}", key(j)] for j in ups]))
        for i, ups in enumerate(upstream)
    }


def wait_until_forgotten(client: Any, timeout: float = 20.0) -> None:
    """Block until the scheduler holds no task (at most ``timeout``), so rounds do not
    overlap; the finished results of a round left behind cost memory, not time."""
    gc.collect()
    deadline = time.monotonic() + timeout
    while (left := client.run_on_scheduler(_scheduler_task_count)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    if left:
        print(f"  (the scheduler still holds {left} finished tasks; going on)", flush=True)


def _scheduler_task_count(dask_scheduler: Any) -> int:
    return len(dask_scheduler.tasks)


def time_flowweaver(client: Any, upstream: list[tuple[int, ...]], round_: int) -> float:
    from flowweaver import DaskExecutor

    wf = build_workflow(f"bench-{round_}", upstream)
    executor = DaskExecutor(client)
    start = time.perf_counter()
    executor.execute(wf)
    elapsed = time.perf_counter() - start
    del wf  # the workflow holds every task's future (the results stay on the cluster)
    wait_until_forgotten(client)
    return elapsed


def time_delayed(client: Any, graph: Any) -> float:
    start = time.perf_counter()
    client.compute(graph).result()
    elapsed = time.perf_counter() - start
    wait_until_forgotten(client)
    return elapsed


def time_raw(client: Any, upstream: list[tuple[int, ...]], round_: int) -> float:
    from distributed import wait

    dsk = raw_graph(upstream, round_)
    start = time.perf_counter()
    futures = client.get(dsk, list(dsk), sync=False)
    wait(futures)
    elapsed = time.perf_counter() - start
    del futures
    wait_until_forgotten(client)
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument(
        "--in-process", action="store_true", help="workers as threads of this process"
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the plain-dict reference")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    upstream = layered_dag(args.tasks, args.width, args.seed)
    kind = "threads in this process" if args.in_process else "processes"
    print(
        f"{args.tasks} tasks in layers of {args.width}, {args.workers} workers "
        f"({kind}) x {args.threads} thread(s)",
        flush=True,
    )
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=args.threads,
        processes=not args.in_process,
        dashboard_address=":0",
    )
    client = Client(cluster)
    try:
        start = time.perf_counter()
        delayed_graph = build_delayed(upstream)
        print(f"built the delayed graph in {time.perf_counter() - start:.1f} s (not timed)")
        # Warm up both paths: imports and first connections on the workers.
        warm = layered_dag(300, 100, args.seed)
        time_flowweaver(client, warm, -1)
        time_delayed(client, build_delayed(warm))

        times: dict[str, list[float]] = {"flowweaver": [], "dask.delayed": [], "raw": []}
        for round_ in range(args.repeat):
            times["flowweaver"].append(time_flowweaver(client, upstream, round_))
            times["dask.delayed"].append(time_delayed(client, delayed_graph))
            if not args.no_raw:
                times["raw"].append(time_raw(client, upstream, round_))
            line = "  ".join(f"{k} {v[-1]:6.2f} s" for k, v in times.items() if v)
            print(f"round {round_ + 1}: {line}", flush=True)
    finally:
        client.close()
        cluster.close()

    med = {k: statistics.median(v) for k, v in times.items() if v}
    for k, v in med.items():
        print(f"median {k:13} {v:6.2f} s  ({args.tasks / v:,.0f} tasks/s)")
    ratio = med["flowweaver"] / med["dask.delayed"]
    print(f"FlowWeaver / dask.delayed: {ratio:.2f}x (target: at most {TARGET}x)")
    if "raw" in med:
        print(f"FlowWeaver / plain graph:  {med['flowweaver'] / med['raw']:.2f}x")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
