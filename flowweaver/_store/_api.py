"""What the engine asks of a state store: records and sessions. No I/O here.

A run opens one *session* on its store. It loads the saved records of its workflow before
anything runs, encodes each result on the loop thread as its task completes (so a result
that cannot be stored fails that task at once, naming it, before anything is lost), and
hands the records to the session in batches: ``save`` returns only once the batch is
durable (one transaction, or one atomic file replace or journal append). The engine starts
no dependent of a task before that task's record is durable.

A session may also keep the run's history (:class:`RunRecord`): ``begin_run`` once the
records are loaded, ``end_run`` before the session closes. Both are optional; a user's
store of five methods has no history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .._errors import FlowWeaverError
from .._status import TaskStatus


class StateStoreError(FlowWeaverError):
    """A state store cannot be opened, read or written (the message names the path).

    The file is left exactly as it was.
    """


class WorkflowLockedError(StateStoreError):
    """Another run of the same workflow holds the store's lease (see the run lease in
    the README); raised before anything of this run has run or been written.

    :ivar workflow: the workflow's name.
    :ivar store: the store's path.
    :ivar pid: the holder's process id, ``host`` its host name and ``since`` when it took
        the lease (ISO 8601, UTC); None when the lease file did not say.
    """

    def __init__(
        self,
        workflow: str,
        store: str,
        pid: object,
        host: object,
        since: object,
        waited: float | None,
    ) -> None:
        self.workflow = workflow
        self.store = store
        self.pid = pid if isinstance(pid, int) else None
        self.host = host if isinstance(host, str) else None
        self.since = since if isinstance(since, str) else None
        if self.pid is None:
            who = "another run"
        else:
            who = f"the run of process {self.pid} on host {self.host!r} (since {self.since})"
        after = f" after waiting {waited:g} s" if waited else ""
        super().__init__(
            f"workflow {workflow!r} is already running on the state store {store!r}: "
            f"{who} holds its lease{after}; wait for that run to end, stop it, or pass "
            "wait_for_lock=SECONDS to the executor to wait for it"
        )


class StateSerializationError(StateStoreError):
    """A task's result cannot be stored by the store's serializer.

    Raised when the task completes, before anything is written; the task fails with it.
    """

    def __init__(self, task_name: str, value: object, reason: str) -> None:
        self.task_name = task_name
        self.value_type = type(value).__name__
        self.reason = reason
        super().__init__(
            f"task {task_name!r} returned a {self.value_type} that the state store cannot "
            f"save ({reason}); return plain data (dict, list, str, numbers, bool, None) or "
            "give the store another serializer"
        )


@dataclass(slots=True)
class TaskRecord:
    """One saved task state.

    :ivar result: on save, what the session's ``encode`` returned; on load, the decoded
        value.
    :ivar error: the failed attempt's exception as text (``"ValueError: bad"``).
    :ivar timestamp: when the record was saved (timezone-aware, UTC): the engine stamps a
        whole batch with the time it is written.
    :ivar workflow: the workflow the record belongs to (``None`` when the store cannot
        tell, for example a user's store with the reference's five methods).
    :ivar version: the task's ``version`` when it ran.
    :ivar fingerprint: a hash of the task's code, when the run asked for one.
    :ivar token: the id of the run that produced this result. No two runs share one, so
        a result computed again always gets a new token.
    :ivar inputs: the tokens of the upstream results this result was computed from,
        joined with commas (``""`` for a task without upstream tasks). A dependent whose
        upstream task has a token not in its ``inputs`` was computed from an older result
        and is stale.
    :ivar logs: the lines a run with ``capture_logs`` kept of the task's attempts (see
        ``Task.logs``), or None: not captured, or a store that keeps no lines (a user's
        store of five methods).
    """

    task_name: str
    status: TaskStatus
    result: Any
    error: str | None
    timestamp: datetime
    workflow: str | None = None
    version: str | None = None
    fingerprint: str | None = None
    token: str | None = None
    inputs: str | None = None
    logs: list[str] | None = None


#: The statuses of a :class:`RunRecord`.
RUN_STATUSES = ("RUNNING", "COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")


@dataclass
class RunRecord:
    """One run of a workflow with a state store, as its history keeps it.

    :ivar run_id: the run's id (16 hex characters; ``event.run_id`` of its events).
    :ivar params: the run's parameters as given (JSON values: a run refuses others).
    :ivar started: when the run began (timezone-aware, UTC).
    :ivar ended: when it ended; None while it runs, or when its process died.
    :ivar status: ``"RUNNING"``, ``"COMPLETED"``, ``"FAILED"``, ``"CANCELLED"`` or
        ``"INTERRUPTED"``: a run whose process died (killed, power loss) while it was
        ``RUNNING``, as readers report it and the next run of the workflow records it.
    :ivar counts: how its tasks ended: ``completed`` (ran and completed), ``failed``,
        ``skipped``, ``restored`` (saved result used) and ``pending`` (did not run).
    :ivar ran: each task that ran, with why it ran (``"no saved result"``...).
    :ivar restored: the tasks whose saved result the run used instead of running them.
    :ivar pid: the run's process id, and ``host`` its host name.
    """

    run_id: str
    workflow: str
    params: dict[str, Any]
    started: datetime
    ended: datetime | None
    status: str
    counts: dict[str, int]
    ran: dict[str, str]
    restored: list[str]
    pid: int | None = None
    host: str | None = None


class AsyncStoreSession(Protocol):
    """A store opened for one run of one workflow, as the engine uses it."""

    def encode(self, task_name: str, value: Any) -> Any:
        """Serialise ``value`` for saving; called on the loop thread, must be quick.

        :raises StateSerializationError: when the value cannot be stored.
        """

    async def load(
        self, workflow: str, task_names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> dict[str, TaskRecord]:
        """The saved records of ``workflow`` for these names (results decoded), and for
        every name that starts with one of ``prefixes`` (a mapped task's items, ``"P["``).

        :raises StateStoreError: when the store is unreadable, or (JSON store) a record
            under one of these names belongs to another workflow.
        """

    async def save(self, workflow: str, records: Sequence[TaskRecord]) -> None:
        """Write ``records`` as one durable batch; return once it is durable."""

    async def aclose(self) -> None:
        """Flush and release the store (always called, also after errors)."""

    # Optional: begin_run and end_run (see AsyncRunHistory), looked up with getattr.


class AsyncRunHistory(Protocol):
    """The optional methods of a session that keeps the run history (the built-in
    stores' sessions do; a session without them simply keeps none)."""

    async def begin_run(self, run: RunRecord) -> None:
        """Record ``run`` as ``RUNNING``; returns once that is durable. Older ``RUNNING``
        runs of its workflow are recorded ``INTERRUPTED``: the caller holds the
        workflow's lease, so they cannot be running.

        :raises StateStoreError: when the store cannot be written.
        """

    async def end_run(self, run: RunRecord) -> None:
        """Record how ``run`` ended (status, ``ended``, counts, ``ran``, ``restored``).

        :raises StateStoreError: when the store cannot be written.
        """


class StoreSession(Protocol):
    """The blocking twin of :class:`AsyncStoreSession` (a blocking store's session); a
    run calls it in a worker thread."""

    def encode(self, task_name: str, value: Any) -> Any: ...

    def load(
        self, workflow: str, task_names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> dict[str, TaskRecord]: ...

    def save(self, workflow: str, records: Sequence[TaskRecord]) -> None: ...

    def close(self) -> None: ...

    # Optional: begin_run and end_run (see RunHistory).


class RunHistory(Protocol):
    """The blocking twin of :class:`AsyncRunHistory`."""

    def begin_run(self, run: RunRecord) -> None: ...

    def end_run(self, run: RunRecord) -> None: ...
