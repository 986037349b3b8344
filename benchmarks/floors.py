"""The hand-written floors: the least code that runs a DAG in each style, timed the same way.

Each floor gets the graph the way a FlowWeaver user writes it (task name -> upstream names,
task name -> function), passes upstream results as keyword arguments by name, and times
everything from that point: ordering, bookkeeping, the calls, the pool's start and shutdown.
Building the name graph itself is not timed, just as building a ``Workflow`` is not.

- ``sequential``: a plain loop in ``graphlib.TopologicalSorter.static_order()``.
- ``threaded``: ``graphlib`` with a ``ThreadPoolExecutor(4)``, each node submitted as soon as
  it is ready. Completions come back through a queue fed by ``add_done_callback``: the
  fastest simple form (``concurrent.futures.wait`` rescans every pending future each time).
- ``async``: asyncio ready-queues with in-degree counters; a task starts only when its
  inputs are ready. Two simple forms: ``create_task`` per task, and a fixed set of 50
  workers (the default ``max_concurrent``) taking ready tasks from a deque. A worker runs
  a coroutine that never suspends to its end without a trip through the loop, which is
  what FlowWeaver's lanes do too; like them it yields to the loop every 64 tasks, so a
  long run of tiny tasks cannot starve the rest of the program. The report uses the
  faster of the two forms in each cell as the async floor.
- ``to_thread``: ``anyio.to_thread.run_sync`` per task, awaited one by one in ``graphlib``
  order: the naive form of a thread-backed async engine.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from graphlib import TopologicalSorter
from typing import Any

import anyio
import anyio.to_thread

from .workloads import Dag, anoop, noop

NameGraph = dict[str, list[str]]

# As in FlowWeaver's lanes: a worker gives the loop a turn after this many tasks in a row.
_YIELD_EVERY = 64


def name_graph(dag: Dag) -> NameGraph:
    """``{task: [upstream tasks]}`` by name, the form a user would write."""
    names = dag.names
    return {names[i]: [names[j] for j in ups] for i, ups in enumerate(dag.deps)}


def _check(results: dict[str, Any] | list[Any], dag: Dag) -> None:
    if len(results) != len(dag):
        raise RuntimeError(f"floor ran {len(results)} of {len(dag)} tasks")


# -- sequential ---------------------------------------------------------------------------


def sequential(dag: Dag) -> float:
    """A plain loop in graphlib order; returns the seconds it took."""
    graph = name_graph(dag)
    funcs: dict[str, Callable[..., Any]] = dict.fromkeys(graph, noop)
    start = time.perf_counter()
    results: dict[str, Any] = {}
    for name in TopologicalSorter(graph).static_order():
        results[name] = funcs[name](**{u: results[u] for u in graph[name]})
    elapsed = time.perf_counter() - start
    _check(results, dag)
    return elapsed


# -- threaded -----------------------------------------------------------------------------


def threaded(dag: Dag, workers: int = 4) -> float:
    """graphlib + ThreadPoolExecutor(workers), each node submitted once it is ready."""
    graph = name_graph(dag)
    funcs: dict[str, Callable[..., Any]] = dict.fromkeys(graph, noop)
    start = time.perf_counter()
    results: dict[str, Any] = {}
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    finished: queue.SimpleQueue[tuple[str, Future[Any]]] = queue.SimpleQueue()
    with ThreadPoolExecutor(workers) as pool:

        def submit(name: str) -> None:
            fut = pool.submit(funcs[name], **{u: results[u] for u in graph[name]})
            fut.add_done_callback(lambda f: finished.put((name, f)))

        pending = 0
        for name in sorter.get_ready():
            submit(name)
            pending += 1
        while pending:
            name, fut = finished.get()
            pending -= 1
            results[name] = fut.result()
            sorter.done(name)
            for ready in sorter.get_ready():
                submit(ready)
                pending += 1
    elapsed = time.perf_counter() - start
    _check(results, dag)
    return elapsed


# -- async --------------------------------------------------------------------------------


def _indexed(graph: NameGraph) -> tuple[list[str], list[list[int]], list[list[int]]]:
    """Names, upstream indices and downstream indices: part of the timed work."""
    names = list(graph)
    index = {n: i for i, n in enumerate(names)}
    ups = [[index[u] for u in graph[n]] for n in names]
    down: list[list[int]] = [[] for _ in names]
    for i, us in enumerate(ups):
        for j in us:
            down[j].append(i)
    return names, ups, down


async def _ready_queue_tasks(graph: NameGraph) -> int:
    """One ``asyncio.create_task`` per task, created when its last input is ready."""
    funcs: list[Callable[..., Any]]
    names, ups, down = _indexed(graph)
    funcs = [anoop] * len(names)
    indegree = [len(u) for u in ups]
    results: list[Any] = [None] * len(names)
    tasks: list[asyncio.Task[None] | None] = [None] * len(names)
    remaining = len(names)
    all_done = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal remaining
        results[i] = await funcs[i](**{names[j]: results[j] for j in ups[i]})
        for k in down[i]:
            indegree[k] -= 1
            if indegree[k] == 0:
                tasks[k] = asyncio.create_task(one(k))
        remaining -= 1
        if remaining == 0:
            all_done.set()

    for i, d in enumerate(indegree):
        if d == 0:
            tasks[i] = asyncio.create_task(one(i))
    if remaining:
        await all_done.wait()
    return len(results)


async def _ready_queue_workers(graph: NameGraph, workers: int = 50) -> int:
    """A fixed set of worker coroutines taking ready tasks from a deque."""
    names, ups, down = _indexed(graph)
    funcs: list[Callable[..., Any]] = [anoop] * len(names)
    indegree = [len(u) for u in ups]
    results: list[Any] = [None] * len(names)
    ready = deque(i for i, d in enumerate(indegree) if d == 0)
    idle: deque[asyncio.Future[None]] = deque()
    remaining = len(names)
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        nonlocal remaining
        streak = 0
        while remaining:
            if not ready:
                fut = loop.create_future()
                idle.append(fut)
                await fut
                continue
            i = ready.popleft()
            results[i] = await funcs[i](**{names[j]: results[j] for j in ups[i]})
            remaining -= 1
            for k in down[i]:
                indegree[k] -= 1
                if indegree[k] == 0:
                    ready.append(k)
                    if idle:
                        idle.popleft().set_result(None)
            if not remaining:
                while idle:
                    idle.popleft().set_result(None)
            streak += 1
            if streak == _YIELD_EVERY:
                streak = 0
                await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(min(workers, len(names)) or 1)))
    return len(results)


def _run_async_floor(dag: Dag, body: Callable[[NameGraph], Any]) -> float:
    graph = name_graph(dag)

    async def main() -> tuple[float, int]:
        start = time.perf_counter()
        count = await body(graph)
        return time.perf_counter() - start, count

    elapsed, count = asyncio.run(main())
    if count != len(dag):
        raise RuntimeError(f"floor ran {count} of {len(dag)} tasks")
    return elapsed


def async_tasks(dag: Dag) -> float:
    """The asyncio ready-queue, ``create_task`` per task (timed inside the loop)."""
    return _run_async_floor(dag, _ready_queue_tasks)


def async_workers(dag: Dag) -> float:
    """The asyncio ready-queue with 50 worker coroutines (timed inside the loop)."""
    return _run_async_floor(dag, _ready_queue_workers)


# -- anyio.to_thread, the naive thread-backed form ----------------------------------------


def to_thread(dag: Dag, backend: str = "asyncio") -> float:
    """``anyio.to_thread.run_sync`` per task, one after another in graphlib order."""
    graph = name_graph(dag)
    funcs: dict[str, Callable[..., Any]] = dict.fromkeys(graph, noop)

    async def main() -> tuple[float, int]:
        start = time.perf_counter()
        results: dict[str, Any] = {}
        for name in TopologicalSorter(graph).static_order():
            call = functools.partial(funcs[name], **{u: results[u] for u in graph[name]})
            results[name] = await anyio.to_thread.run_sync(call)
        return time.perf_counter() - start, len(results)

    elapsed, count = anyio.run(main, backend=backend)
    if count != len(dag):
        raise RuntimeError(f"floor ran {count} of {len(dag)} tasks")
    return elapsed
