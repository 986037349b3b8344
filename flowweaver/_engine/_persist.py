"""A run's use of its state store: open and load, what to restore, records, the writer.

The engine calls into :class:`RunStore` at fixed points: :meth:`open` before any state
changes (so a bad store fails the run before anything runs), :meth:`restorable` once,
:meth:`encode` and :meth:`completed` / :meth:`failed` / :meth:`skipped` as tasks settle,
and :meth:`close` at the end, always, inside a shield.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import describe_exception
from .._status import TaskStatus
from .._store._api import AsyncStoreSession, TaskRecord
from .._store._io import give_up_after
from .._store._lease import Lease
from .._store._resume import (
    code_fingerprint,
    element_digest,
    item_inputs,
    item_stands,
    restorable,
)
from ._history import RunLog, outcome
from ._sigint import InlineGuard
from ._writer import Writer

if TYPE_CHECKING:
    from .._task import Task
    from ._graph import Graph

logger = logging.getLogger("flowweaver")

#: After an interrupt, cancellation or error, how long the last save may wait for a store
#: that another process holds locked before the run gives up on it (and ends).
INTERRUPTED_PATIENCE = 3.0
# At most this many unsaved task names are listed in the log line.
_NAMES_SHOWN = 20

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
        commit_interval: float = 0.2,
        wait_for_lock: float | None = 0,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self._params = params
        self.history: RunLog | None = None
        self._store = store
        self._wait_for_lock = wait_for_lock
        self._lease: Lease | None = None
        self._commit_interval = commit_interval
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
        # Mapped tasks: what each maps over, and the prefix of its items' names, whose
        # records are loaded with the rest (item names are known only once it expands).
        self._sources = {
            graph.index[t.name]: graph.index[t.map_over] for t in tasks if t.map_over is not None
        }
        self._item_of: dict[int, int] = {}  # each item's mapped task
        # Each expanded mapped task's first item and its items' element hashes.
        self._digests: dict[int, tuple[int, list[str | None]]] = {}
        # The tasks restored at the start (not run again since): see item_stands.
        self._restored: set[int] = set()
        self.writer: Writer | None = None

    async def open(
        self, on_durable: Callable[[list[int]], None], inline_guard: InlineGuard | None
    ) -> None:
        """Open the session and load this workflow's records.

        :param inline_guard: write batches on the loop's own thread (see
            ``ThreadSession.inline``), marked as inline calls so that Ctrl-C interrupts
            one that waits for another process's lock; None: in a worker thread.

        :raises WorkflowLockedError: another run of this workflow holds the store's lease
            (still, after ``wait_for_lock`` seconds); nothing has run or been written.
        :raises StateStoreError: the store cannot be read, or holds another workflow's
            record under one of these task names; nothing has run and nothing was written.
        """
        from .._store._sessions import ThreadSession, open_session, store_file

        path = store_file(self._store)
        if path is not None:
            lease = Lease(path, self._workflow)
            await lease.acquire(self._wait_for_lock)
            self._lease = lease
        try:
            session = await open_session(self._store)
        except BaseException:
            self._release()
            raise
        guard = None
        if inline_guard is not None and isinstance(session, ThreadSession):
            session.inline = True
            guard = inline_guard
        try:
            # Loaded even for a fresh run: load is where a store refuses a run whose task
            # names belong to another workflow, and that must happen before anything runs.
            names = self._graph.names
            prefixes = [names[p] + "[" for p in self._sources]
            records = await session.load(self._workflow, names, prefixes)
            if not self._fresh:
                self._records = records
            self.history = RunLog(session, self._run_id, self._workflow, self._params)
            await self.history.begin()
        except BaseException:
            try:
                with anyio.CancelScope(shield=True):
                    await session.aclose()
            finally:
                self._release()
            raise
        self._session = session
        self.writer = Writer(
            session,
            self._workflow,
            on_durable,
            deferred=True,
            guard=guard,
            interval=self._commit_interval,
        )

    def restorable(self) -> dict[int, TaskRecord]:
        """The tasks whose saved result this run may use, by index (see ``_resume``)."""
        if not self._records:
            return {}
        versions = [t.version for t in self._tasks]
        found = restorable(self._graph, self._workflow, self._records, versions, self._fingerprints)
        for i, rec in found.items():
            self._tokens[i] = rec.token
        self._restored = set(found)
        return found

    def add_items(
        self, p: int, ids: range, values: Sequence[Any], keys: Sequence[str | int]
    ) -> dict[int, TaskRecord]:
        """Mapped task ``p`` expanded into items ``ids`` (appended to the run's tasks),
        one per element of ``values``, named by ``keys``.

        Hashes every element (its item's record keeps the hash, see ``_resume``).

        :returns: the items whose saved records this run may restore, by index (see
            ``_resume.item_stands``): none for a fresh run.
        """
        self._tokens.extend([None] * len(ids))
        fingerprint = None
        if self._fingerprints is not None:
            fingerprint = self._fingerprints[p]
            self._fingerprints.extend([fingerprint] * len(ids))
        self._item_of.update(dict.fromkeys(ids, p))
        digests = [element_digest(v) for v in values]
        self._digests[p] = (ids.start, digests)
        records = self._records
        if not records:
            return {}
        name = self._tasks[p].name
        src = self._sources[p]
        ups = self._graph.upstream[p]
        tokens = self._tokens
        others = [tokens[j] for j in ups if j != src]
        run_id = self._run_id
        unchanged = all(j in self._restored and tokens[j] != run_id for j in ups)
        version = self._tasks[p].version
        found: dict[int, TaskRecord] = {}
        for n, key in enumerate(keys):
            # Popped: a record is judged once, and 10,000 of them need not stay in memory.
            rec = records.pop(f"{name}[{key}]", None)
            if rec is not None and item_stands(
                rec, self._workflow, version, fingerprint, others, digests[n], unchanged
            ):
                found[ids.start + n] = rec
                tokens[ids.start + n] = rec.token
        return found

    def saved_keys(self, p: int, keys: Sequence[str | int]) -> list[str | int]:
        """Of ``keys``, those of mapped task ``p``'s items saved ``COMPLETED``: the keys of
        its result, in order, when ``p`` is restored whole."""
        name = self._tasks[p].name
        records = self._records
        out = []
        for key in keys:
            rec = records.get(f"{name}[{key}]")
            if rec is not None and rec.status is TaskStatus.COMPLETED:
                out.append(key)
        return out

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
        if i >= len(self._graph.names):
            inputs = self._item_inputs(i)
        else:
            # Usually every upstream result is from this run: then the run id says it all.
            used = {tokens[j] or "" for j in self._graph.upstream[i]}
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

    def _item_inputs(self, i: int) -> str:
        """An item's ``inputs``: the tokens of its mapped task's upstream tasks but the
        source, and its element's hash (see ``_resume``)."""
        p = self._item_of[i]
        src = self._sources[p]
        tokens = self._tokens
        others = ",".join(sorted({tokens[j] or "" for j in self._graph.upstream[p] if j != src}))
        first, digests = self._digests[p]
        return item_inputs(others, digests[i - first])

    def failed(self, i: int, exc: BaseException) -> None:
        self._final(i, TaskStatus.FAILED, describe_exception(exc))

    def skipped(self, i: int, reason: str) -> None:
        self._final(i, TaskStatus.SKIPPED, reason)

    def _final(self, i: int, status: TaskStatus, error: str) -> None:
        assert self.writer is not None
        # Restored at the start, then run again anyway (a rule decided otherwise): its
        # result is no longer the saved one.
        self._restored.discard(i)
        t = self._tasks[i]
        self.writer.put(
            i,
            TaskRecord(t.name, status, None, error, _STAMPED_BY_WRITER, self._workflow, t.version),
        )

    async def close(self, ok: bool, interrupted: bool = False) -> None:
        """Save what is still queued and close the session, even after a cancellation.

        A failure to save is raised when the run was otherwise fine. When an interrupt,
        a cancellation or an error is already on its way out (``ok`` false), a store held
        locked by another process gets :data:`INTERRUPTED_PATIENCE` seconds; then the run
        gives up, logs (error level) which task records were not saved (those tasks run
        again next time) and lets the original exception go on. The run's end is then
        recorded in the history (``FAILED`` when its last records could not be saved).

        :param interrupted: the run was cancelled or interrupted (history: ``CANCELLED``).
        """
        session = self._session
        if session is None:
            return
        try:
            await self._close(session, ok, interrupted)
        finally:
            self._release()

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    async def _close(self, session: AsyncStoreSession, ok: bool, interrupted: bool) -> None:
        with anyio.CancelScope(shield=True):
            if ok:
                try:
                    if self.writer is not None:
                        await self.writer.flush()
                except BaseException:
                    await self._end_history(False, interrupted)
                    raise
                else:
                    await self._end_history(True, interrupted)
                finally:
                    await session.aclose()
                return
            with give_up_after(INTERRUPTED_PATIENCE):
                try:
                    if self.writer is not None:
                        await self.writer.flush()
                except Exception as exc:
                    self._log_unsaved(exc)
                await self._end_history(False, interrupted)
                try:
                    await session.aclose()
                except Exception:
                    logger.exception("could not close the state store of %r", self._workflow)

    async def _end_history(self, ok: bool, interrupted: bool) -> None:
        history = self.history
        if history is not None:
            static = self._tasks[: len(self._graph.names)]
            status, counts = outcome(static, set(history.run.restored), ok, interrupted)
            await history.end(status, counts)

    def started(self, i: int) -> None:
        """Task ``i`` starts an attempt: the history notes, once, that it ran and why."""
        history = self.history
        if history is not None and i < len(self._graph.names):
            name = self._tasks[i].name
            if name not in history.run.ran:
                history.ran(name, self.why(i))

    def restored_task(self, i: int) -> None:
        """Task ``i`` took its saved result: the history notes it."""
        if self.history is not None and i < len(self._graph.names):
            self.history.restored(self._tasks[i].name)

    def why(self, i: int) -> str:
        """Why task ``i`` runs, for the history (until the plan's reasons reach the run)."""
        if self._fresh:
            return "fresh run"
        rec = self._records.get(self._tasks[i].name)
        if rec is None:
            return "no saved result"
        if rec.status is not TaskStatus.COMPLETED:
            return f"saved as {rec.status.value}"
        return "saved result does not stand"

    def _log_unsaved(self, exc: Exception) -> None:
        names = self.writer.unsaved() if self.writer is not None else []
        shown = ", ".join(repr(n) for n in names[:_NAMES_SHOWN])
        if len(names) > _NAMES_SHOWN:
            shown += f" and {len(names) - _NAMES_SHOWN} more"
        logger.error(
            "could not save the last task states of %r (%s: %s); not saved, so they will "
            "run again next time: %s",
            self._workflow,
            type(exc).__name__,
            exc,
            shown or "none",
        )
