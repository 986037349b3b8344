"""Run events: what an executor's ``observer`` receives, one per task state change.

An observer is any callable taking one event (``async def`` ones are awaited, in order,
by a task of their own). It is called on the run's event loop thread, so it must be quick;
one that raises is logged to the ``flowweaver`` logger and never breaks the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Fields every event has.

    :ivar workflow: the workflow's name.
    :ivar timestamp: ``time.time()`` when it happened.
    :ivar run_id: the id of the run (16 hex digits), the one its history record has
        (``flowweaver history``); ``""`` for an event made outside a run.
    """

    workflow: str
    timestamp: float
    run_id: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class RunStarted(RunEvent):
    """A run began; ``total`` tasks are in the workflow."""

    total: int


@dataclass(frozen=True, slots=True)
class RunFinished(RunEvent):
    """A run ended. ``status`` is ``"COMPLETED"``, ``"FAILED"`` or ``"CANCELLED"``."""

    status: str
    duration: float


@dataclass(frozen=True, slots=True)
class TaskEvent(RunEvent):
    """Something happened to one task.

    :ivar task: the task's name; for an item of a mapped task, the item's
        (``"process_file[3]"``).
    :ivar item: for an item of a mapped task, its key (its index, or what ``map_key``
        returned); None for any other task.
    """

    task: str
    item: str | int | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class TaskStarted(TaskEvent):
    """An attempt started (``attempt`` counts from 1)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class TaskQueued(TaskEvent):
    """The task is ready but waits for ``tag``: ``kind`` ``"limit"`` (the executor's
    ``limits`` allow no more tasks with that tag in flight now) or ``"rate"`` (its
    ``rate_limits`` have no token left now). It holds no worker while it waits; a
    :class:`TaskStarted` follows once it may go."""

    attempt: int
    tag: str
    kind: str


@dataclass(frozen=True, slots=True)
class TaskRetrying(TaskEvent):
    """Attempt ``attempt`` failed with ``error``; the next starts in ``delay`` seconds."""

    attempt: int
    delay: float
    error: BaseException


@dataclass(frozen=True, slots=True)
class TaskCompleted(TaskEvent):
    """The task completed after ``attempts`` attempts, ``duration`` seconds in all."""

    attempts: int
    duration: float


@dataclass(frozen=True, slots=True)
class TaskFailed(TaskEvent):
    """The task failed for good (after its retries) with ``error``."""

    attempts: int
    duration: float
    error: BaseException


@dataclass(frozen=True, slots=True)
class TaskSkipped(TaskEvent):
    """The task will not run because ``upstream`` failed or was skipped (or, with
    ``fail_fast``, because the run was stopped by that failure), because its trigger rule
    can no longer be met, or because it raised ``flowweaver.Skip`` (``upstream`` is then
    ``""``).

    :ivar reason: why, in words: ``"upstream task 'load' failed"``, the text given to
        ``Skip``, ``"no upstream task failed (trigger rule 'one_failed')"``...
    """

    upstream: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TaskRestored(TaskEvent):
    """The task's saved result was restored from the state store instead of running it."""


@dataclass(frozen=True, slots=True)
class TaskCancelled(TaskEvent):
    """The run was cancelled while this task was in flight; it is ``PENDING`` again."""


@dataclass(frozen=True, slots=True)
class TaskRecomputed(TaskEvent):
    """A Dask cluster ran the function of attempt ``attempt`` again after it had finished
    (a worker holding its result was lost while a dependent still needed it); it has now
    run to its end ``runs`` times. Task functions on a cluster run at least once: the
    task's status, attempts, result and callbacks stay those of the first run."""

    attempt: int
    runs: int
