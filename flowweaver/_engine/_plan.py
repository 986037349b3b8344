"""How each task of a run is run, decided once before the run starts. No I/O.

A task's *kind* picks its path through the engine (see ``_engine``), and its *inject*
list says which upstream results become which keyword arguments (the reference's rule:
upstream ``U`` is passed as ``U`` when the function has a parameter of that name or takes
``**kwargs``).
"""

from __future__ import annotations

from collections.abc import Sequence
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

Inject = tuple[tuple[int, str], ...]  # (upstream index, keyword) pairs


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
    for t, ups in zip(tasks, graph.upstream, strict=True):
        if remote:
            kind = REMOTE if t.timeout is None else REMOTE_TIMED
        elif t.isolation == "process" or (
            isolation == "process" and not t.is_async and t.isolation is None
        ):
            kind = PROCESS
        elif t.is_async:
            kind = ASYNC
        elif t.timeout is not None:
            kind = TIMED
        else:
            kind = INLINE if inline else POOL
        kinds.append(kind)
        inject.append(tuple((j, names[j]) for j in ups if t.accepts(names[j])))
    return kinds, inject
