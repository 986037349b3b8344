"""A run's use of its state store: open and load, what to restore, records, the writer.

The engine calls into :class:`RunStore` at fixed points: :meth:`open` before any state
changes (so a bad store fails the run before anything runs), :meth:`restorable` once,
:meth:`encode` and :meth:`completed` / :meth:`failed` / :meth:`skipped` as tasks settle,
and :meth:`close` at the end, always, inside a shield.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio

from .._resume import code_fingerprint, restorable
from .._status import TaskStatus
from .._store_api import AsyncStoreSession, TaskRecord
from ._sigint import InlineGuard
from ._writer import Writer

if TYPE_CHECKING:
    from .._graph import Graph
    from .._task import Task

logger = logging.getLogger("flowweaver")

# The writer gives every record of a batch the time the batch is written (one clock read
# and one formatted timestamp per batch, not per task).
_STAMPED_BY_WRITER = datetime.min.replace(tzinfo=timezone.utc)


class RunStore:
    """The state store as one run of one workflow sees it."""

    def __init__(
        self,
        store: Any,
        workflow: str,
        graph: Graph,
        tasks: Sequence[Task],
        *,
        fresh: bool,
        fingerprint_code: bool,
    ) -> None:
        self._store = store
        self._workflow = workflow
        self._graph = graph
        self._tasks = tasks
        self._fresh = fresh
        self._fingerprints: list[str | None] | None = (
            [code_fingerprint(t.func) for t in tasks] if fingerprint_code else None
        )
        self._session: AsyncStoreSession | None = None
        self._records: dict[str, TaskRecord] = {}
        # A result's token is the id of the run that produced it; a record keeps the
        # tokens of the upstream results it was computed from, which is how a stale
        # dependent is recognised next time (see _resume).
        self._tokens: list[str | None] = [None] * len(tasks)
        self._run_id = uuid.uuid4().hex[:16]
        self.writer: Writer | None = None

    async def open(
        self, on_durable: Callable[[list[int]], None], inline_guard: InlineGuard | None
    ) -> None:
        """Open the session and load this workflow's records.

        :param inline_guard: write batches on the loop's own thread (see
            ``ThreadSession.inline``), marked as inline calls so that Ctrl-C interrupts
            one that waits for another process's lock; None: in a worker thread.

        :raises StateStoreError: the store cannot be read, or holds another workflow's
            record under one of these task names; nothing has run and nothing was written.
        """
        from ._sessions import ThreadSession, open_session

        session = await open_session(self._store)
        guard = None
        if inline_guard is not None and isinstance(session, ThreadSession):
            session.inline = True
            guard = inline_guard
        try:
            # Loaded even for a fresh run: load is where a store refuses a run whose task
            # names belong to another workflow, and that must happen before anything runs.
            records = await session.load(self._workflow, self._graph.names)
            if not self._fresh:
                self._records = records
        except BaseException:
            with anyio.CancelScope(shield=True):
                await session.aclose()
            raise
        self._session = session
        self.writer = Writer(session, self._workflow, on_durable, deferred=True, guard=guard)

    def restorable(self) -> dict[int, TaskRecord]:
        """The tasks whose saved result this run may use, by index (see ``_resume``)."""
        if not self._records:
            return {}
        versions = [t.version for t in self._tasks]
        found = restorable(self._graph, self._workflow, self._records, versions, self._fingerprints)
        for i, rec in found.items():
            self._tokens[i] = rec.token
        return found

    def encode(self, name: str, value: Any) -> Any:
        """Serialise a result on the loop thread; raises StateSerializationError."""
        assert self._session is not None
        return self._session.encode(name, value)

    def completed(self, i: int, encoded: Any) -> None:
        """Queue task ``i``'s COMPLETED record; its dependents wait until it is durable."""
        self._outcome(i, TaskStatus.COMPLETED, encoded, None)

    def skipped_on_purpose(self, i: int, reason: str) -> None:
        """Queue task ``i``'s record of a ``Skip``: SKIPPED, with a token like a result's
        (which is how a resumed run tells it from a skip by an upstream failure)."""
        self._outcome(i, TaskStatus.SKIPPED, None, reason)

    def _outcome(self, i: int, status: TaskStatus, encoded: Any, error: str | None) -> None:
        assert self.writer is not None
        t = self._tasks[i]
        token = self._run_id
        tokens = self._tokens
        tokens[i] = token
        ups = self._graph.upstream[i]
        # Usually every upstream result is from this run: then the run id says it all.
        used = {tokens[j] or "" for j in ups}
        inputs = token if used == {token} else ",".join(sorted(used))
        fingerprint = self._fingerprints[i] if self._fingerprints is not None else None
        self.writer.put(
            i,
            TaskRecord(
                t.name,
                status,
                encoded,
                error,
                _STAMPED_BY_WRITER,
                self._workflow,
                t.version,
                fingerprint,
                token,
                inputs,
            ),
        )

    def failed(self, i: int, exc: BaseException) -> None:
        self._final(i, TaskStatus.FAILED, f"{type(exc).__name__}: {exc}")

    def skipped(self, i: int, reason: str) -> None:
        self._final(i, TaskStatus.SKIPPED, reason)

    def _final(self, i: int, status: TaskStatus, error: str) -> None:
        assert self.writer is not None
        t = self._tasks[i]
        self.writer.put(
            i,
            TaskRecord(t.name, status, None, error, _STAMPED_BY_WRITER, self._workflow, t.version),
        )

    async def close(self, ok: bool) -> None:
        """Save what is still queued and close the session, even after a cancellation.

        A failure to save is raised when the run was otherwise fine, and logged when an
        error or a cancellation is already on its way out.
        """
        session = self._session
        if session is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                if self.writer is not None:
                    await self.writer.flush()
            except Exception:
                if ok:
                    raise
                logger.exception("could not save the last task states of %r", self._workflow)
            finally:
                await session.aclose()
