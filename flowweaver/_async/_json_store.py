"""The JSON state store: the reference's file format, crash-safe, shared safely.

``flowweaver/_async/_json_store.py`` is written by hand (``flowweaver.aio.JSONStateStore``,
on aiofiles); ``scripts/unasync.py`` generates ``flowweaver/_sync/_json_store.py``
(``flowweaver.JSONStateStore``). The file format, the journal and compaction are described
in ``flowweaver/_store/_json_format.py``; the I/O of each form is in ``flowweaver/_store/_io.py``.

Every operation holds the store's lock file (``<file>.lock``) and first brings the copy in
memory up to date with the disk, so several threads and processes can share one file:
writers take turns, and each merges what the others wrote, so no record is dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from .._status import TaskStatus
from .._store._api import RunRecord, StateStoreError, TaskRecord
from .._store._durability import Durability, check_durability
from .._store._io import AsyncFileLock, AsyncFiles, Identity
from .._store._json_format import JSONState
from .._store._records import (
    check_argument_status,
    check_folder,
    check_task_name,
    check_workflow,
    error_text,
    os_error,
    public_state,
    store_vanished,
)
from .._store._records import store_path as as_path
from .._store._runs import (
    INTERRUPTED,
    RUNNING,
    check_limit,
    newest_first,
    parse_sidecar,
    settle,
    to_line,
)
from .._store._serializers import Serializer, check_serializer
from .._store._sessions import blocking_form
from ._store_base import AsyncBaseStateStore


class AsyncJSONStateStore(AsyncBaseStateStore):
    """Task states in one JSON file, in the API reference's format.

    The file is a JSON object keyed by task name; each value has ``"status"``,
    ``"result"`` (the JSON value itself), ``"error"`` and ``"timestamp"`` (ISO 8601, UTC),
    plus ``"workflow"``, ``"version"``, ``"fingerprint"``, ``"token"`` and ``"inputs"``.
    Because the file is keyed by task name alone, two workflows with a task of the same
    name cannot share one file: the run that would overwrite the other's record fails
    before anything runs (an :class:`~flowweaver.SQLiteStateStore` keys by workflow too).

    Writes are crash-safe: the file is only ever replaced whole (temp file in the same
    folder, fsync, rename, fsync of the folder). A run appends each batch of results to
    a journal beside it (``<file>.journal``, one write per batch, fsync'd under
    ``durability="fsync"``) and folds the journal into the file when the journal
    outgrows it and when the run ends, so after a run the file alone holds everything.
    A lock file (``<file>.lock``) lets threads and processes share the store; it stays
    in place, which is harmless. The run history (:meth:`runs`) goes to another file
    beside it, ``<file>.runs.jsonl``, so the file itself keeps the reference's format.

    :param store_path: the JSON file. Its folder must exist (it is not created).
    :param pretty_print: indent the file for people to read.
    :param serializer: how results are stored (keyword-only): JSON by default, which
        keeps exactly what JSON holds and refuses anything else when the task completes;
        ``PickleSerializer()`` for any picklable object (never on an untrusted file); or
        any object with ``dumps`` and ``loads``.
    :param durability: what a crash may cost (keyword-only): ``"normal"`` (a dependent
        starts once its upstream's record is written to the OS: a kill -9 loses nothing
        committed, a power loss may lose the last batches), ``"fsync"`` (each journal
        batch is fsync'd first: a power loss loses nothing committed either) or
        ``"ordered"`` (dependents start at once; records are committed in completion
        order, at most ``commit_interval`` apart).
    :raises WorkflowValidationError: for a path, serializer or durability that is not one.
    """

    def __init__(
        self,
        store_path: str | os.PathLike[str],
        pretty_print: bool = True,
        *,
        serializer: Serializer | None = None,
        durability: Durability = "normal",
    ) -> None:
        self._path = as_path(store_path, "store_path")
        self.store_path = os.fspath(store_path)
        self.pretty_print = bool(pretty_print)
        self.serializer = check_serializer(serializer)
        self.durability = check_durability(durability)
        # Journal and history lines are fsync'd only when a power loss must not lose them.
        self._sync = self.durability == "fsync"
        self._state = JSONState(self._path, self.serializer)
        self._history = self._path.with_name(self._path.name + ".runs.jsonl")
        self._folder_checked = False
        # The history read so far: (device, inode), bytes read, runs (see _read_runs).
        self._runs_read: tuple[tuple[int, int], int, dict[str, RunRecord]] | None = None

    def _run_form(self) -> Any:
        """A run writes through the blocking twin of this store (see ``_sessions``)."""
        return blocking_form(self)

    def _twin_settings(self) -> dict[str, Any]:
        return dict(
            store_path=self.store_path,
            pretty_print=self.pretty_print,
            serializer=self.serializer,
            durability=self.durability,
        )

    def _lease_file(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store_path!r})"

    # -- the reference's five methods --------------------------------------------------------

    async def save_task_state(
        self,
        task_name: str,
        status: TaskStatus | str,
        result: Any,
        error: Exception | str | None,
        timestamp: datetime,
        workflow: str | None = None,
    ) -> None:
        """Save a task's state, replacing the one saved under its name; the file is
        rewritten at once (a run writes in batches through its journal instead).

        :param error: the exception (stored as ``"ValueError: bad"``) or its text.
        :param timestamp: a naive datetime is taken as local time; stored in UTC.
        :param workflow: the workflow the record belongs to (None: none).
        :raises StateSerializationError: when ``result`` cannot be stored; nothing is
            written.
        :raises StateStoreError: when the file is unreadable or not writable, or the
            name holds a record of another workflow.
        """
        name = check_task_name(task_name)
        workflow = check_workflow(workflow)
        record = TaskRecord(
            name,
            check_argument_status(status),
            self._state.encode(name, result),
            error_text(error),
            timestamp,
        )
        async with self._locked() as files:
            await self._refresh(files)
            if workflow is not None:
                self._state.check_owner(workflow, [name])
            self._state.put({name: self._state.raw(record, workflow)})
            await self._rewrite(files)

    async def load_task_state(
        self, task_name: str, workflow: str | None = None
    ) -> dict[str, Any] | None:
        """The saved state of a task as the file spells it (``"status"`` as text,
        ``"timestamp"`` as ISO 8601), its result decoded; None when there is none.

        :param workflow: only a record of this workflow (None: whichever is saved).
        :raises StateStoreError: when the file is unreadable.
        """
        name = check_task_name(task_name)
        workflow = check_workflow(workflow)
        async with self._locked() as files:
            await self._refresh(files)
            record = self._state.get(name, workflow)
        return None if record is None else public_state(record)

    async def delete_task_state(self, task_name: str, workflow: str | None = None) -> None:
        """Remove a task's saved state (nothing happens when there is none).

        :param workflow: only if it belongs to this workflow (None: whichever is saved).
        """
        name = check_task_name(task_name)
        workflow = check_workflow(workflow)
        async with self._locked() as files:
            await self._refresh(files)
            if self._state.get(name, workflow) is not None:
                self._state.delete([name])
                await self._rewrite(files)

    async def list_all_tasks(self, workflow: str | None = None) -> list[str]:
        """The task names with a saved state (of one workflow, or all)."""
        workflow = check_workflow(workflow)
        async with self._locked() as files:
            await self._refresh(files)
            return self._state.names(workflow)

    async def clear_all_states(self, workflow: str | None = None) -> None:
        """Remove every saved state (of one workflow, or all)."""
        workflow = check_workflow(workflow)
        async with self._locked() as files:
            await self._refresh(files)
            names = self._state.names(workflow)
            if names or self._state.journal_file is not None:
                self._state.delete(names)
                await self._rewrite(files)

    # -- for the command line ------------------------------------------------------------------

    async def list_records(self, workflow: str | None = None) -> list[TaskRecord]:
        """Every saved record (of one workflow), oldest first, results decoded."""
        workflow = check_workflow(workflow)
        async with self._locked() as files:
            await self._refresh(files)
            return self._state.all(workflow)

    async def list_workflows(self) -> list[str]:
        """The names of the workflows with records in this file."""
        async with self._locked() as files:
            await self._refresh(files)
            return self._state.workflows()

    async def _plan_reader(
        self, workflow: str, names: Sequence[str], prefixes: Sequence[str]
    ) -> tuple[Callable[[str, Any], Any], dict[str, TaskRecord]]:
        """What ``executor.plan`` reads: how a run would encode a value, and the records a
        run would load (refusing another workflow's names as a run does). Not through a
        session: closing one folds the journal into the file, which a plan must never do
        (a run of the workflow may be writing that journal)."""
        state = self._state
        if not self._path.exists() and not state.journal.exists():
            return state.encode, {}  # nothing saved yet: create nothing
        async with self._locked() as files:
            await self._refresh(files)
            return state.encode, state.load(workflow, names, prefixes)

    # -- the run history ------------------------------------------------------------------------

    async def runs(self, workflow: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """The recorded runs (of ``workflow``), newest first, at most ``limit``.

        A run recorded ``RUNNING`` whose process is gone is reported ``INTERRUPTED``. A
        line of the history file that is not a run is skipped (and logged).

        :raises WorkflowValidationError: for a ``limit`` that is not a whole number above 0.
        :raises StateStoreError: when the history file cannot be read.
        """
        workflow = check_workflow(workflow)
        limit = check_limit(limit)
        async with self._locked() as files:
            found = await self._read_runs(files)
        return settle(newest_first(found.values(), workflow, limit), self._path)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id (as :meth:`runs` reports it), or None."""
        async with self._locked() as files:
            run = (await self._read_runs(files)).get(str(run_id))
        return None if run is None else settle([run], self._path)[0]

    async def _read_runs(self, files: AsyncFiles) -> dict[str, RunRecord]:
        """The runs in the history file, by id (the lock is held); a torn last line is
        cut off, as the journal's is.

        The file only grows (two lines a run): what was read is kept, with the file's
        identity and the size read up to, and only the lines appended since are read,
        so a service that runs a workflow per request does not read its whole history
        each time. A file replaced or cut is read again from the start.
        """
        try:
            now = await files.identity(self._history)
            if now is None or now.size == 0:
                self._runs_read = None
                return {}
            kept = self._runs_read
            start: int = 0
            found: dict[str, RunRecord] = {}
            if kept is not None and kept[0] == (now.device, now.inode) and kept[1] <= now.size:
                start, found = kept[1], kept[2]  # read on: the lines after it only add
            data = await files.read(self._history, start) or b""
            more, size = parse_sidecar(self._history, data, start)
            found.update(more)
            if start + size < now.size:
                await files.truncate(self._history, start + size)
        except OSError as exc:
            raise os_error(self._history, exc, "read") from None
        self._runs_read = ((now.device, now.inode), start + size, found)
        return found  # read only by the callers (no copy per run of a growing history)

    async def _append_runs(self, files: AsyncFiles, runs: Sequence[RunRecord]) -> None:
        """Make ``runs`` durable as history lines (the lock is held)."""
        try:
            await files.append(self._history, to_line(runs), self._sync)
        except OSError as exc:
            raise os_error(self._history, exc, "write") from None

    async def _torn_runs(self, files: AsyncFiles) -> bool:
        """True when the history file ends in a torn line (a crash mid-append)."""
        try:
            found = await files.identity(self._history)
            if found is None or found.size == 0:
                return False
            return await files.read(self._history, found.size - 1) != b"\n"
        except OSError as exc:
            raise os_error(self._history, exc, "read") from None

    # -- a run's session -------------------------------------------------------------------------

    async def _open_session(self) -> AsyncJSONSession:
        return AsyncJSONSession(self)

    # -- the file --------------------------------------------------------------------------------

    def _locked(self) -> _Locked:
        return _Locked(self)

    async def _refresh(self, files: AsyncFiles) -> None:
        """Bring the copy in memory up to date with the disk (the lock is held)."""
        state = self._state
        try:
            main = await files.identity(self._path)
            journal = await files.identity(state.journal)
            if state.stale(main, journal):
                state.read_main(await files.read(self._path), main)
            if journal is not None:
                tail = b""
                if journal.size > state.journal_size:
                    tail = await files.read(state.journal, state.journal_size) or b""
                size = state.read_journal(tail, journal)
                if size < journal.size:
                    await files.truncate(state.journal, size)  # a torn last line
        except OSError as exc:
            raise os_error(self._path, exc, "read") from None

    async def _append(self, files: AsyncFiles, line: bytes) -> None:
        """Make one journal line durable; fold the journal in once it outgrows the file."""
        state = self._state
        try:
            state.appended(await files.append(state.journal, line, self._sync))
        except OSError as exc:
            raise os_error(state.journal, exc, "write") from None
        if state.should_compact():
            await self._rewrite(files)

    async def _rewrite(self, files: AsyncFiles) -> None:
        """Write the whole state to the file by atomic replace; drop the journal."""
        state = self._state
        try:
            main = await files.replace(self._path, state.render(self.pretty_print))
            if state.journal_file is not None:
                await files.remove(state.journal)
        except OSError as exc:
            raise os_error(self._path, exc, "write") from None
        state.compacted(main)


class _Locked:
    """While ``store._locked()`` is entered (as ``files``) the lock is held, and a failure
    halfway leaves the copy in memory distrusted so that the next operation reads the disk."""

    def __init__(self, store: AsyncJSONStateStore) -> None:
        self._store = store
        self._lock = AsyncFileLock(store._path)

    async def __aenter__(self) -> AsyncFiles:
        store = self._store
        # The folder is checked once per store object (four system calls: a run saves
        # many batches); when it is gone or changed later, taking the lock fails and the
        # check then says why.
        if not store._folder_checked:
            check_folder(store._path)
        try:
            await self._lock.__aenter__()
        except StateStoreError:
            check_folder(store._path)
            raise
        store._folder_checked = True
        return AsyncFiles()

    async def __aexit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self._store._state.forget()
        await self._lock.__aexit__(*exc)


class AsyncJSONSession:
    """A run's session on a JSON state store of this module.

    ``save`` appends one journal line per batch (one fsync); closing the session folds
    the journal into the file. On cancellation, a write that has started (the lock is held)
    finishes first; waiting for the lock is cancelled at once.

    A file deleted or replaced by someone else mid-run fails the run at the next batch.
    FlowWeaver's writers replace the file too (compaction), but always together with
    removing the journal, under the lock: so a file that is gone or has another inode
    while the journal is still the very file last seen (inode, size and mtime) was not
    replaced by one of them.
    And the session keeps one record it saved (name and timestamp) as a witness that
    must still be there, which also catches the journal and the file both going.
    """

    def __init__(self, store: AsyncJSONStateStore) -> None:
        self._store = store
        self._state = store._state
        #: What ``encode`` calls, for a caller that encodes every result of a run.
        self.encoder = store._state.encode
        #: ``encode`` gives the value itself (a copy), not text: under plain JSON.
        self.encodes_values = store._state.plain_json
        self._saved = False
        self._witness: tuple[str, object] | None = None

    def _check_unchanged(self, main: Identity | None, journal: Identity | None) -> None:
        """After a refresh: fail if someone other than a FlowWeaver writer deleted or
        replaced the file (given what the session knew before the refresh)."""
        state = self._state
        if (
            main is not None
            and journal is not None
            and state.journal_seen == journal
            and (state.main is None or state.main[:2] != main[:2])
        ):
            raise store_vanished(self._store._path, deleted=state.main is None)
        self._check_witness()

    def _check_witness(self) -> None:
        witness = self._witness
        if witness is None:
            return
        raw = self._state.records.get(witness[0])
        if raw is None or raw.get("timestamp") != witness[1]:
            raise store_vanished(self._store._path, deleted=self._state.main is None)

    def encode(self, task_name: str, value: Any) -> Any:
        """A copy of the result as it will be stored (see ``_json_format``).

        :raises StateSerializationError: when the result cannot be stored.
        """
        return self._state.encode(task_name, value)

    async def load(
        self, workflow: str, task_names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> dict[str, TaskRecord]:
        """The records a run of ``workflow`` may restore from: these names, and the names
        that start with one of ``prefixes`` (a mapped task's items).

        :raises StateStoreError: when the file is unreadable, or a task name (or a name
            with one of the prefixes) holds a record of another workflow (naming the task
            and both workflows).
        """
        async with self._store._locked() as files:
            await self._store._refresh(files)
            return self._state.load(workflow, task_names, prefixes)

    async def save(self, workflow: str, records: Sequence[TaskRecord]) -> None:
        """Make ``records`` durable as one journal line; returns once it is fsynced.

        :raises StateStoreError: when the file cannot be written, a name now holds a
            record of another workflow, or the file was deleted or replaced since this
            session saved into it; nothing of the batch is written then.
        """
        if not records:
            return
        state = self._state
        async with self._store._locked() as files:
            main, journal = state.main, state.journal_seen
            await self._store._refresh(files)
            self._check_unchanged(main, journal)
            state.check_owner(workflow, [r.task_name for r in records])
            raws = {r.task_name: state.raw(r, workflow) for r in records}
            line = state.put(raws)
            self._saved = True
            await self._store._append(files, line)
            if self._witness is None:
                name = records[0].task_name
                self._witness = (name, raws[name]["timestamp"])

    async def begin_run(self, run: RunRecord) -> None:
        """Append ``run`` (``RUNNING``) to the history file, with the other ``RUNNING``
        runs of its workflow marked ``INTERRUPTED``, as one fsynced append.

        :raises StateStoreError: when the history file cannot be read or written.
        """
        async with self._store._locked() as files:
            found = await self._store._read_runs(files)
            dead = [
                replace(r, status=INTERRUPTED)
                for r in found.values()
                if r.workflow == run.workflow and r.status == RUNNING and r.run_id != run.run_id
            ]
            await self._store._append_runs(files, [*dead, run])

    async def end_run(self, run: RunRecord) -> None:
        """Append how ``run`` ended to the history file (one fsynced line).

        :raises StateStoreError: when the history file cannot be written.
        """
        async with self._store._locked() as files:
            if await self._store._torn_runs(files):
                await self._store._read_runs(files)  # cuts the torn line off
            await self._store._append_runs(files, [run])

    async def aclose(self) -> None:
        """Fold the journal into the file, so the file alone holds everything.

        A session that saved nothing and finds no journal does not touch the store (so
        closing after a failed ``load`` does not raise the same error again).
        """
        if not self._saved and await AsyncFiles().identity(self._state.journal) is None:
            return
        async with self._store._locked() as files:
            main, journal = self._state.main, self._state.journal_seen
            await self._store._refresh(files)
            self._check_unchanged(main, journal)
            if self._state.journal_file is not None:
                await self._store._rewrite(files)
