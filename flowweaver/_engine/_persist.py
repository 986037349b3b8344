"""A run's use of its state store: open and load, what to restore, records, the writer.

The engine calls into :class:`RunStore` at fixed points: :meth:`open` before any state
changes (so a bad store fails the run before anything runs), :meth:`restorable` once,
:meth:`encode` and :meth:`completed` / :meth:`failed` / :meth:`skipped` as tasks settle,
and :meth:`close` at the end, always, inside a shield.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import anyio

from .. import _log
from .._errors import WorkflowValidationError, describe_exception
from .._status import TaskStatus
from .._store._api import AsyncStoreSession, StateSerializationError, TaskRecord
from .._store._durability import durability_of
from .._store._io import give_up_after
from .._store._lease import Lease
from .._store._resume import (
    Judged,
    TaskFacts,
    code_fingerprint,
    element_digest,
    inputs_unchanged,
    item_inputs,
    item_stands,
    judge,
    key_entry,
    param_entry,
    result_token,
    skip_token,
)
from ._history import RunLog, outcome
from ._sigint import InlineGuard
from ._writer import Writer

if TYPE_CHECKING:
    from .._task import Task
    from ._graph import Graph

logger = _log.logger  # with its NullHandler (see _log)

_COMPLETED = TaskStatus.COMPLETED

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
        run_id: str,
        fresh: bool,
        fingerprint_code: bool,
        params: Mapping[str, Any] | None = None,
        commit_interval: float = 0.2,
        wait_for_lock: float | None = 0,
    ) -> None:
        self.history: RunLog | None = None
        self._store = store
        # durability="ordered": a completed task's dependents start before its record is
        # committed; the one writer commits records in the order tasks completed, which
        # puts every record after those of its upstream tasks (see _durability).
        self.ordered = durability_of(store) == "ordered"
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
        # A result's token is a hash of what it is; a record keeps the tokens of the
        # upstream results it was computed from and the entries of the parameters the
        # task took, which is how a stale dependent is recognised next time (see _resume).
        self._tokens: list[str | None] = [None] * len(tasks)
        self._run_id = run_id
        self._params = dict(params or {})
        # Each task's parameter entries, by name: hashed once per run, and only with a
        # store (a run without one never hashes anything).
        entries = {name: param_entry(name, value) for name, value in self._params.items()}
        # Each task's entries (none without parameters: the common case costs nothing).
        self._takes: list[dict[str, str]] | None = (
            [{n: e for n, e in entries.items() if t.accepts(n)} for t in tasks] if entries else None
        )
        # What the checks of each task's record need: made only when there are records.
        self._facts: list[TaskFacts] = []
        # The cache_key entries of the keyed tasks that ran: their records' inputs.
        self._keys: dict[int, str] = {}
        # Tasks outside a selection whose saved results it takes (see given).
        self._given: dict[int, TaskRecord] = {}
        # Mapped tasks: what each maps over, and the prefix of its items' names, whose
        # records are loaded with the rest (item names are known only once it expands).
        # (A mapped task given to a from_tasks selection is not run: what it maps over may
        # be outside the selection, and its saved result is taken whole.)
        self._sources = {
            graph.index[t.name]: graph.index[t.map_over]
            for t in tasks
            if t.map_over is not None and t.map_over in graph.index
        }
        self._item_of: dict[int, int] = {}  # each item's mapped task
        # Each expanded mapped task's first item and its items' element hashes.
        self._digests: dict[int, tuple[int, list[str | None]]] = {}
        # The tasks restored (at the start, or when ready) and not run again since: see
        # item_stands.
        self._restored: set[int] = set()
        self.writer: Writer | None = None
        self._encoder: Callable[[str, Any], Any] = _not_open
        self._values = False
        self._static = len(graph.names)  # the tasks of the graph (items come after)

    def _task_facts(self, i: int, plain: dict[str | None, TaskFacts]) -> TaskFacts:
        """What judging task ``i``'s record needs; ``plain``: the facts shared by the tasks
        that set nothing but a version (most of them), one per version: a resume of
        10,000 tasks makes a handful, not 10,000."""
        t = self._tasks[i]
        ttl = t.cache_ttl
        if ttl is None and t.cache_key is None and not self._takes and not self._fingerprints:
            facts = plain.get(t.version)
            if facts is None:
                facts = plain[t.version] = TaskFacts(t.version)
            return facts
        return TaskFacts(
            t.version,
            self._fingerprints[i] if self._fingerprints is not None else None,
            ttl.total_seconds() if isinstance(ttl, timedelta) else ttl,
            t.cache_key is not None,
            self._takes[i] if self._takes is not None else {},
        )

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
            session = await open_session(self._store, inline_guard)
        except BaseException:
            self._release()
            raise
        # A session on this thread (its calls marked on the guard for Ctrl-C) lets the
        # writer save on the spot.
        blocking_save = (
            session.save_inline if isinstance(session, ThreadSession) and session.inline else None
        )
        try:
            # Loaded even for a fresh run: load is where a store refuses a run whose task
            # names belong to another workflow, and that must happen before anything runs.
            names, prefixes = self._names()
            # Kept by a fresh run too: from_tasks takes upstream results from them.
            self._records = await session.load(self._workflow, names, prefixes)
            self._check_params(session.encode)
        except BaseException:
            try:
                with anyio.CancelScope(shield=True):
                    await session.aclose()
            finally:
                self._release()
            raise
        self._session = session
        # A result is encoded per task: the fewest calls that do it.
        self._encoder = getattr(session, "encoder", session.encode)
        # What encode gives is the value itself, not its text (see result_token).
        self._values = bool(getattr(session, "encodes_values", False))
        self.writer = Writer(
            session,
            self._workflow,
            _nothing_held if self.ordered else on_durable,
            deferred=True,
            interval=self._commit_interval,
            blocking_save=blocking_save,
        )

    async def begin(self) -> None:
        """Record the run's beginning in the store's history, once the run has passed
        every check (a run refused before anything ran leaves no history).

        :raises StateStoreError: the store cannot record it; the session is closed and
            the lease released (nothing has run).
        """
        assert self._session is not None
        self.history = RunLog(self._session, self._run_id, self._workflow, self._params)
        try:
            await self.history.begin()
        except BaseException:
            self.history = None
            await self.close(False)
            raise

    async def peek(self) -> None:
        """Load this workflow's records for a plan: no lease, no writer, nothing written.

        A built-in store reads through ``_plan_reader`` (its blocking form, in a thread):
        a file that does not exist is not created, and a JSON store's journal is read,
        never folded (a run may be writing it). A user's store is read through a session.

        :raises StateStoreError: the store cannot be read.
        :raises WorkflowValidationError: a parameter the store could not save.
        """
        from .._store._sessions import open_session

        form = getattr(self._store, "_run_form", None)
        store = form() if callable(form) else self._store
        reader = getattr(store, "_plan_reader", None)
        if callable(reader):
            names, prefixes = self._names()
            encode, self._records = await anyio.to_thread.run_sync(
                reader, self._workflow, names, prefixes
            )
            self._check_params(encode)
            return
        session = await open_session(self._store)
        try:
            names, prefixes = self._names()
            self._records = await session.load(self._workflow, names, prefixes)
            self._check_params(session.encode)
        finally:
            with anyio.CancelScope(shield=True):
                await session.aclose()

    def _names(self) -> tuple[list[str], list[str]]:
        """What a run loads: its task names, and the prefix of each mapped task's items
        (their names are known only once it expands)."""
        names = self._graph.names
        return names, [names[p] + "[" for p in self._sources]

    def _check_params(self, encode: Callable[[str, Any], Any]) -> None:
        """Refuse, before anything runs, a run parameter the store could not save with the
        run's history (the serializer's own check, as for a task's result)."""
        for name, value in self._params.items():
            try:
                encode(name, value)
            except Exception as exc:
                why = exc.reason if isinstance(exc, StateSerializationError) else None
                raise WorkflowValidationError(
                    f"parameter {name!r}: the state store cannot save its value, a "
                    f"{type(value).__name__} ({why or describe_exception(exc)}); pass plain "
                    "data (str, numbers, bool, None, lists and dicts of them) or give the "
                    "store another serializer"
                ) from None

    def judge(self, forced: Container[int] = ()) -> Judged:
        """Which tasks this run restores at the start, which it decides when they are
        ready, and why the others run (see ``_resume.judge``)."""
        if not self._records:
            return Judged(default="fresh run" if self._fresh else "no saved result")
        plain: dict[str | None, TaskFacts] = {}
        self._facts = [self._task_facts(i, plain) for i in range(self._static)]
        found = judge(
            self._graph,
            self._workflow,
            self._records,
            self._facts,
            datetime.now(timezone.utc),
            fresh=self._fresh,
            forced=forced,
            given=self._given,
        )
        for i, rec in found.restore.items():
            self._tokens[i] = rec.token
        self._restored = set(found.restore)
        return found

    def given(self, indices: Sequence[int]) -> tuple[dict[int, TaskRecord], list[int]]:
        """The saved results of tasks outside a selection that it needs (``from_tasks``),
        taken as they are saved: completed (or skipped on purpose), of this workflow.

        :returns: those found, by index, and the indices of those missing.
        """
        names = self._graph.names
        found = self._given
        missing: list[int] = []
        for i in indices:
            rec = self._records.get(names[i])
            status = rec.status if rec is not None else None
            usable = status is TaskStatus.COMPLETED or (
                status is TaskStatus.SKIPPED and rec is not None and rec.token is not None
            )
            if rec is None or not usable or rec.workflow not in (None, self._workflow):
                missing.append(i)
            else:
                found[i] = rec
                self._tokens[i] = rec.token
                self._restored.add(i)
        return found, missing

    def unchanged(self, i: int, rec: TaskRecord, kwargs: Mapping[str, Any] | None) -> str | None:
        """Task ``i`` is ready and its record stood but for what it receives: None when
        what it receives now is what it was saved with (then it is restored: see
        :meth:`restored`), else why it runs.

        :param kwargs: its keyword arguments, for a task with a ``cache_key`` (called
            here; its error is the caller's to report).
        """
        key = self._key(i, kwargs) if kwargs is not None else None
        names = self._graph.names
        tokens = self._tokens
        upstream = [(names[j], tokens[j]) for j in self._graph.upstream[i]]
        return inputs_unchanged(rec, upstream, key)

    def keyed(self, i: int, kwargs: Mapping[str, Any]) -> None:
        """Task ``i`` has a ``cache_key`` and runs: its record keeps the key (may raise)."""
        self._key(i, kwargs)

    def _key(self, i: int, kwargs: Mapping[str, Any]) -> str:
        t = self._tasks[i]
        assert t.cache_key is not None
        key = t.cache_key(**kwargs)
        if not isinstance(key, str):
            raise TypeError(f"cache_key returned a {type(key).__name__}, not a str")
        entry = self._keys[i] = key_entry(key)
        return entry

    def restored(self, i: int, rec: TaskRecord) -> None:
        """Task ``i`` was restored when it became ready."""
        self._tokens[i] = rec.token
        self._restored.add(i)
        self.restored_task(i)

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
        if not records or self._fresh:
            return {}
        name = self._tasks[p].name
        src = self._sources[p]
        ups = self._graph.upstream[p]
        tokens = self._tokens
        others = [tokens[j] for j in ups if j != src]
        unchanged = all(j in self._restored for j in ups)
        facts = self._facts[p]
        now = datetime.now(timezone.utc)
        found: dict[int, TaskRecord] = {}
        for n, key in enumerate(keys):
            # Popped: a record is judged once, and 10,000 of them need not stay in memory.
            rec = records.pop(f"{name}[{key}]", None)
            if rec is not None and item_stands(
                rec, self._workflow, facts, now, others, digests[n], unchanged
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
        return self._encoder(name, value)

    def completed(self, i: int, encoded: Any, logs: list[str] | None = None) -> None:
        """Queue task ``i``'s COMPLETED record; its dependents wait until it is durable.
        ``logs``: its captured lines (``capture_logs``), saved with it."""
        self._outcome(i, TaskStatus.COMPLETED, encoded, None, logs)

    def skipped_on_purpose(self, i: int, reason: str, logs: list[str] | None = None) -> None:
        """Queue task ``i``'s record of a ``Skip``: SKIPPED, with a token like a result's
        (which is how a resumed run tells it from a skip by an upstream failure)."""
        self._outcome(i, TaskStatus.SKIPPED, None, reason, logs)

    def _outcome(
        self,
        i: int,
        status: TaskStatus,
        encoded: Any,
        error: str | None,
        logs: list[str] | None = None,
    ) -> None:
        assert self.writer is not None
        t = self._tasks[i]
        name = t.name
        token = (
            result_token(name, encoded, self._values) if status is _COMPLETED else skip_token(name)
        )
        tokens = self._tokens
        tokens[i] = token
        if i >= self._static:
            inputs = self._item_inputs(i)
        elif self._keys and i in self._keys:
            inputs = self._keys.pop(i)
        else:
            ups = self._graph.upstream[i]
            if len(ups) == 1:  # a chain's step: nothing to sort or deduplicate
                used = [tokens[ups[0]] or ""]
            else:
                used = sorted({tokens[j] or "" for j in ups})
            takes = self._takes
            inputs = ",".join([*used, *takes[i].values()] if takes else used)
        fingerprint = self._fingerprints[i] if self._fingerprints is not None else None
        self.writer.put(
            i,
            TaskRecord(
                name,
                status,
                encoded,
                error,
                _STAMPED_BY_WRITER,
                self._workflow,
                t.version,
                fingerprint,
                token,
                inputs,
                logs,
            ),
        )

    def _item_inputs(self, i: int) -> str:
        """An item's ``inputs``: the tokens of its mapped task's upstream tasks but the
        source, and its element's hash (see ``_resume``)."""
        p = self._item_of[i]
        src = self._sources[p]
        tokens = self._tokens
        used = sorted({tokens[j] or "" for j in self._graph.upstream[p] if j != src})
        others = ",".join([*used, *self._takes[p].values()] if self._takes else used)
        first, digests = self._digests[p]
        return item_inputs(others, digests[i - first])

    def failed(self, i: int, exc: BaseException, logs: list[str] | None = None) -> None:
        self._final(i, TaskStatus.FAILED, describe_exception(exc), logs)

    def skipped(self, i: int, reason: str) -> None:
        self._final(i, TaskStatus.SKIPPED, reason)

    def _final(self, i: int, status: TaskStatus, error: str, logs: list[str] | None = None) -> None:
        assert self.writer is not None
        # Restored at the start, then run again anyway (a rule decided otherwise): its
        # result is no longer the saved one.
        self._restored.discard(i)
        t = self._tasks[i]
        self.writer.put(
            i,
            TaskRecord(
                t.name,
                status,
                None,
                error,
                _STAMPED_BY_WRITER,
                self._workflow,
                t.version,
                logs=logs,
            ),
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
            # The selection's tasks: those outside it whose saved results it took
            # (from_tasks) were neither run nor restored by this run.
            given = self._given
            static = [t for i, t in enumerate(self._tasks[: self._static]) if i not in given]
            status, counts = outcome(static, set(history.run.restored), ok, interrupted)
            await history.end(status, counts)

    def started(self, i: int, why: str) -> None:
        """Task ``i`` starts an attempt: the history notes, once, that it ran and ``why``."""
        history = self.history
        if history is not None and i < self._static:
            ran = history.run.ran  # the run's record of why each task ran: once per task
            name = self._tasks[i].name
            if name not in ran:
                ran[name] = why

    def restored_task(self, i: int) -> None:
        """Task ``i`` took its saved result: the history notes it."""
        self.restored_tasks((i,))

    def restored_tasks(self, indices: Sequence[int]) -> None:
        """These tasks took their saved results (at the start: one call for them all)."""
        history = self.history
        if history is not None:
            static = self._static
            tasks = self._tasks
            history.run.restored.extend([tasks[i].name for i in indices if i < static])

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


def _not_open(name: str, value: Any) -> Any:
    raise AssertionError("the run's store session is not open")


def _nothing_held(indices: list[int]) -> None:
    """An ordered run holds no dependent back: a saved batch releases nothing."""
