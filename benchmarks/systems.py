"""Every system the suite times: FlowWeaver's executors, the floors and the peers.

A :class:`System` turns a :class:`~benchmarks.workloads.Dag` into seconds: it builds what it
needs (a ``Workflow``, a name graph, ``dask.delayed`` objects) *outside* the timed part and
times only the execution. FlowWeaver is used through its public API alone. A fresh
``Workflow`` is built for every repetition, so every timed ``execute`` is a first run, as
in a user's program (graph validation included).

Sync task functions go to the Sequential and Threaded forms, ``async def`` ones to
``AsyncExecutor`` and ``ConcurrentExecutor``. Blocking forms are timed around ``execute``
(starting the event loop included); awaitable forms are timed inside a loop that is
already running (``anyio.run`` with the backend named in the system's name).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from . import floors, workloads
from .workloads import Dag, anoop, noop

# The matching floor of each FlowWeaver system, by the floor's system name.
SEQ_FLOOR = "floor: plain loop"
THR_FLOOR = "floor: graphlib + ThreadPoolExecutor(4)"
ASYNC_FLOOR = "floor: asyncio ready-queue"  # the faster of the two forms below, per cell
ASYNC_TASKS = "floor: asyncio ready-queue (create_task)"
ASYNC_WORKERS = "floor: asyncio ready-queue (50 workers)"
TO_THREAD = "floor: anyio.to_thread per task"


@dataclass(frozen=True)
class System:
    """One thing to time.

    :ivar floor: the name of the floor its ratio is taken against (``None`` for floors and
        for systems compared with nothing).
    :ivar max_n: the largest DAG it runs; bigger ones are skipped, for ``skip_reason``.
    :ivar max_repeats: at most this many repetitions per cell (for the slow peers).
    """

    name: str
    group: str  # "flowweaver", "floor" or "peer"
    run: Callable[[Dag], float]
    floor: str | None = None
    max_n: int | None = None
    skip_reason: str = ""
    max_repeats: int | None = None

    def runs(self, n: int) -> bool:
        return self.max_n is None or n <= self.max_n


# -- FlowWeaver ---------------------------------------------------------------------------


def build_workflow(dag: Dag, func: Callable[..., Any]) -> Any:
    """A fresh ``Workflow`` of ``dag`` whose every task calls ``func`` (not timed)."""
    from flowweaver import Task, Workflow

    wf = Workflow(f"bench-{dag.workload}-{len(dag)}")
    names = dag.names
    for name, ups in zip(names, dag.deps, strict=True):
        wf.add_task(Task(name, func), depends_on=[names[j] for j in ups])
    return wf


def numbers(n: int) -> Callable[[], list[int]]:
    """The source task of the maps section: returns ``n`` numbers."""

    def t0() -> list[int]:
        return list(range(n))

    return t0


def build_map_workflow(n: int, func: Callable[..., Any]) -> Any:
    """The map twin of ``workloads.fan_out(n)``: ``t0`` returns ``n`` numbers, ``t1`` maps
    ``func`` over them (``n`` items), ``t2`` takes ``t1``'s list (not timed)."""
    from flowweaver import Task, Workflow

    wf = Workflow(f"bench-map-{n}")
    wf.add_task(Task("t0", numbers(n)))
    wf.add_task(Task("t1", func), map_over="t0")
    wf.add_task(Task("t2", func), depends_on=["t1"])
    return wf


def build_fan_out_workflow(n: int, func: Callable[..., Any]) -> Any:
    """``workloads.fan_out(n)``, its source returning ``n`` numbers as the map's does."""
    from flowweaver import Task, Workflow

    dag = workloads.fan_out(n)
    wf = Workflow(f"bench-fan_out-{n}")
    wf.add_task(Task("t0", numbers(n)))
    for name, ups in zip(dag.names[1:], dag.deps[1:], strict=True):
        wf.add_task(Task(name, func), depends_on=[dag.names[j] for j in ups])
    return wf


def _check_workflow(wf: Any) -> None:
    from flowweaver import WorkflowStatus

    if wf.status is not WorkflowStatus.COMPLETED:
        raise RuntimeError(f"workflow ended {wf.status}")


def blocking(make_executor: Callable[[], Any], func: Callable[..., Any]) -> Callable[[Dag], float]:
    """Time ``executor.execute(workflow)``, the blocking call of a script."""

    def run(dag: Dag) -> float:
        wf = build_workflow(dag, func)
        executor = make_executor()
        start = time.perf_counter()
        executor.execute(wf)
        elapsed = time.perf_counter() - start
        _check_workflow(wf)
        return elapsed

    return run


def awaited(
    make_executor: Callable[[], Any], func: Callable[..., Any], backend: str
) -> Callable[[Dag], float]:
    """Time ``await executor.execute(workflow)`` on a running ``backend`` loop."""

    def run(dag: Dag) -> float:
        wf = build_workflow(dag, func)

        async def main() -> float:
            executor = make_executor()
            start = time.perf_counter()
            await executor.execute(wf)
            return time.perf_counter() - start

        elapsed: float = anyio.run(main, backend=backend)
        _check_workflow(wf)
        return elapsed

    return run


def flowweaver_systems() -> list[System]:
    import flowweaver
    import flowweaver.aio as aio

    fw: list[System] = [
        System(
            "SequentialExecutor",
            "flowweaver",
            blocking(flowweaver.SequentialExecutor, noop),
            SEQ_FLOOR,
        ),
        System(
            "ThreadedExecutor(4)",
            "flowweaver",
            blocking(lambda: flowweaver.ThreadedExecutor(4), noop),
            THR_FLOOR,
        ),
        System(
            "ConcurrentExecutor",
            "flowweaver",
            blocking(flowweaver.ConcurrentExecutor, anoop),
            ASYNC_FLOOR,
        ),
    ]
    for backend in ("asyncio", "trio"):
        fw += [
            System(
                f"aio.SequentialExecutor [{backend}]",
                "flowweaver",
                awaited(aio.SequentialExecutor, noop, backend),
                SEQ_FLOOR,
            ),
            System(
                f"aio.ThreadedExecutor(4) [{backend}]",
                "flowweaver",
                awaited(lambda: aio.ThreadedExecutor(4), noop, backend),
                THR_FLOOR,
            ),
            System(
                f"aio.AsyncExecutor [{backend}]",
                "flowweaver",
                awaited(aio.AsyncExecutor, anoop, backend),
                ASYNC_FLOOR,
            ),
        ]
    return fw


# -- floors -------------------------------------------------------------------------------


def floor_systems() -> list[System]:
    return [
        System(SEQ_FLOOR, "floor", floors.sequential),
        System(THR_FLOOR, "floor", floors.threaded),
        System(ASYNC_TASKS, "floor", floors.async_tasks),
        System(ASYNC_WORKERS, "floor", floors.async_workers),
        System(
            TO_THREAD,
            "floor",
            floors.to_thread,
            max_n=10_000,
            skip_reason="skipped above 10,000 tasks: about 130 us a task, and no target uses it",
        ),
    ]


# -- peers --------------------------------------------------------------------------------


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


def _dask_graph(dag: Dag) -> tuple[dict[str, Any], list[str]]:
    """The graph ``dask.delayed`` makes for ``dag``, as one flat dict, and its leaf keys.

    Calling ``dask.delayed(f)(**upstream)`` task by task merges every upstream graph into
    each new one, which is quadratic: a 10,000-task chain took about ten minutes to *build*
    here. The same tasks in one flat dict build in milliseconds, and ``dask.compute`` then
    has less to merge than it would have for the real ``dask.delayed`` objects, so this
    errs in dask's favour.
    """
    names = dag.names
    try:  # the task objects dask.delayed itself makes (dask >= 2024.12)
        from dask._task_spec import Task, TaskRef

        graph: dict[str, Any] = {
            name: Task(name, noop, **{names[j]: TaskRef(names[j]) for j in ups})
            for name, ups in zip(names, dag.deps, strict=True)
        }
    except ImportError:  # older dask: the classic tuple form, keys apart from kwarg names
        graph = {
            f"k-{name}": (_apply_kwargs, noop, (dict, [[names[j], f"k-{names[j]}"] for j in ups]))
            for name, ups in zip(names, dag.deps, strict=True)
        }
        names = tuple(f"k-{n}" for n in names)
    used = [False] * len(dag)
    for ups in dag.deps:
        for j in ups:
            used[j] = True
    return graph, [names[i] for i, u in enumerate(used) if not u]


def _apply_kwargs(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    return func(**kwargs)


def dask_threads(dag: Dag) -> float:
    """``dask.compute`` of the DAG's leaves with the threaded scheduler, 4 workers."""
    import dask
    from dask.delayed import Delayed

    graph, leaf_keys = _dask_graph(dag)
    leaves = [Delayed(key, graph) for key in leaf_keys]
    start = time.perf_counter()
    dask.compute(*leaves, scheduler="threads", num_workers=4)
    return time.perf_counter() - start


DASK = "dask.delayed (threads, 4)"


def peer_systems() -> list[System]:
    peers: list[System] = []
    if installed("dask"):
        peers.append(
            System(
                DASK,
                "peer",
                dask_threads,
                THR_FLOOR,
                max_n=10_000,
                skip_reason="skipped above 10,000 tasks: 0.1 to 1 ms a task makes it minutes",
                max_repeats=3,
            )
        )
    return peers


def all_systems() -> list[System]:
    return flowweaver_systems() + floor_systems() + peer_systems()
