"""How each task of a run is run, decided once before the run starts. No I/O.

A task's *kind* picks its path through the engine (see ``_engine``), and its *inject*
list says which upstream results become keyword arguments (the reference's rule:
upstream ``U`` is passed as ``U`` when the function has a parameter of that name or takes
``**kwargs``).

A workflow keeps its plans (:func:`cached_plan`): a second run of an unchanged workflow
takes the first one's instead of planning again (issue 15). A plan depends on the graph
(a new one when a task is added), the executor's kind, and three attributes of each task
(its function, timeout and isolation), compared with the plan's at every run: assigning
one after a run is a change like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._task import Task
    from ._graph import Graph

ASYNC = 0  # awaited on a lane
INLINE = 1  # called directly on a lane (sequential run that owns its loop)
POOL = 2  # sync, no timeout: fire-and-forget on the worker pool
TIMED = 3  # sync with a timeout: a lane waits for the pool with a deadline
REMOTE = 4  # on a remote runner (Dask), no timeout: fire-and-forget, outcome via the inbox
REMOTE_TIMED = 5  # on a remote runner with a timeout: a lane waits with a deadline
MAP = 6  # a mapped task: expanded into items (each of the kind the task would have had)
PROCESS = 7  # in a worker process (_processes), called from the worker pool; its deadline
# is the process pool's, which kills the process: never a lane's, which would abandon it

# The upstream indices whose results a task receives, each under its node's keyword (the
# task's name; for an item of a map, its own index: its element, under its source's name).
# A task that takes every upstream result shares its graph's tuple: no memory of its own.
Inject = tuple[int, ...]
PlanKey = tuple[bool, bool, str]  # inline, remote, isolation

_FUNC = attrgetter("func")
_TIMEOUT = attrgetter("timeout")
_ISOLATION = attrgetter("isolation")


def plan(
    tasks: Sequence[Task], graph: Graph, inline: bool, remote: bool, isolation: str = "thread"
) -> tuple[list[int], list[Inject]]:
    """Each task's kind and the upstream results it receives, in graph order.

    :param inline: sync functions without a timeout may run on the loop's own thread.
    :param remote: every function runs on a remote runner. Isolation is ignored then:
        the runner's workers are processes of their own already.
    :param isolation: where the executor runs sync functions (``"thread"``, or
        ``"process"`` for a ProcessExecutor); a task's own ``isolation`` wins.
    """
    names = graph.names
    kinds: list[int] = []
    inject: list[Inject] = []
    # What each function is (async? which keywords?), read once per function: tasks made
    # in a loop share theirs. Keyed by id: the tasks keep every function alive meanwhile.
    known: dict[int, tuple[bool, tuple[frozenset[str], bool]]] = {}
    for t, ups in zip(tasks, graph.upstream, strict=True):
        func = t.func
        seen = known.get(id(func))
        if seen is None:
            seen = known[id(func)] = (t.is_async, t._signature())
        is_async, (accepted, any_keyword) = seen
        if remote:
            kind = REMOTE if t.timeout is None else REMOTE_TIMED
        elif t.isolation == "process" or (
            isolation == "process" and not is_async and t.isolation is None
        ):
            kind = PROCESS
        elif is_async:
            kind = ASYNC
        elif t.timeout is not None:
            kind = TIMED
        else:
            kind = INLINE if inline else POOL
        kinds.append(kind)
        if not ups or any_keyword:
            inject.append(ups)
        else:
            taken = tuple(j for j in ups if names[j] in accepted)
            inject.append(ups if len(taken) == len(ups) else taken)
    return kinds, inject


class Planned:
    """A workflow's plan for one kind of executor, and what it was made from."""

    __slots__ = ("funcs", "graph", "inject", "isolations", "kinds", "tasks", "timeouts")

    def __init__(
        self, tasks: list[Task], graph: Graph, inline: bool, remote: bool, isolation: str
    ) -> None:
        self.tasks = tasks
        self.graph = graph
        self.kinds, self.inject = plan(tasks, graph, inline, remote, isolation)
        self.funcs = list(map(_FUNC, tasks))
        self.timeouts = list(map(_TIMEOUT, tasks))
        self.isolations = list(map(_ISOLATION, tasks))

    def stands(self, graph: Graph) -> bool:
        """Whether the plan still holds: the same graph, no task's function, timeout or
        isolation changed since it was made (lists compared in C: about 0.1 us a task)."""
        tasks = self.tasks
        return (
            graph is self.graph
            and list(map(_FUNC, tasks)) == self.funcs
            and list(map(_TIMEOUT, tasks)) == self.timeouts
            and list(map(_ISOLATION, tasks)) == self.isolations
        )


def cached_plan(
    plans: dict[PlanKey, Planned],
    graph: Graph,
    by_name: Mapping[str, Task],
    inline: bool,
    remote: bool,
    isolation: str,
) -> Planned:
    """The plan in ``plans`` for this kind of executor if it still holds, else a new one,
    kept there. Each run copies the lists it grows (maps), so a plan is never changed
    once made: runs on several threads may share it."""
    key = (inline, remote, isolation)
    found = plans.get(key)
    if found is not None and found.stands(graph):
        return found
    tasks = [by_name[n] for n in graph.names]
    if found is not None:
        for t, func in zip(found.tasks, found.funcs, strict=True):
            if t.func is not func:
                t._forget_func()  # what it knew of the old function no longer holds
    made = Planned(tasks, graph, inline, remote, isolation)
    plans[key] = made  # one assignment: a concurrent reader sees the old plan or this one
    return made
