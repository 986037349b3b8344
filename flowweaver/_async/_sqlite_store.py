"""The SQLite state store: the reference's table, keyed by workflow and task name.

``flowweaver/_async/_sqlite_store.py`` is written by hand
(``flowweaver.aio.SQLiteStateStore``, on aiosqlite); ``scripts/unasync.py`` generates
``flowweaver/_sync/_sqlite_store.py`` (``flowweaver.SQLiteStateStore``). The schema and the
statements are in ``flowweaver/_store/_sqlite_schema.py``; each form's connection is in
``flowweaver/_store/_io.py``.

Every write is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction. SQLite itself lets
several processes share the database: a writer waits for the one before it (up to
``BUSY_TIMEOUT``), and each saves only its own rows, so none loses another's update.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .._status import TaskStatus
from .._store._api import RunRecord, TaskRecord
from .._store._db import AsyncDatabase
from .._store._durability import Durability, check_durability
from .._store._io import AsyncShield
from .._store._pool import Idle
from .._store._records import (
    check_argument_status,
    check_folder,
    check_same_file,
    check_task_name,
    check_workflow,
    error_text,
    file_id,
    public_state,
)
from .._store._records import store_path as as_path
from .._store._runs import (
    CREATE_RUNS,
    CREATE_RUNS_INDEXES,
    GC_RUNS,
    MARK_INTERRUPTED,
    SELECT_RUN,
    UPSERT_RUN,
    check_limit,
    from_rows,
    select_runs,
    settle,
    to_row,
)
from .._store._serializers import Serializer, check_serializer
from .._store._sessions import blocking_form
from .._store._sqlite_schema import (
    BUSY_TIMEOUT,
    CHECKPOINT,
    COUNT_FOR_RUN,
    CREATE_INDEXES,
    CREATE_TABLE,
    GC,
    TABLE_INFO,
    UPSERT,
    WORKFLOWS,
    Rows,
    check_db_path,
    check_gc_days,
    check_shape,
    counts_first,
    delete,
    expired,
    gc_cutoff,
    kept,
    pragmas,
    select_all,
    select_for_run,
    select_names,
    select_one,
    translate_errors,
)
from ._store_base import AsyncBaseStateStore


class AsyncSQLiteStateStore(AsyncBaseStateStore):
    """Task states in an SQLite database, many workflows in one file.

    The table ``tasks`` has the reference's columns (``task_name``, ``status``,
    ``result`` as JSON text, ``error``, ``timestamp``) and index (``idx_timestamp``), plus
    ``workflow`` (with ``task_name``, the key), ``version``, ``fingerprint``, ``token``,
    ``inputs`` and ``logs`` (``capture_logs``), so the reference's query ``SELECT
    task_name, timestamp FROM tasks WHERE status = 'COMPLETED'`` works as it is. Beside
    it, the table ``runs`` keeps the run history (:meth:`runs`), one row per run.

    The database runs in WAL mode, with ``synchronous=NORMAL`` by default: a commit
    survives the process being killed at any moment, but a power loss or an OS crash may
    lose the last few commits (never corrupt the file); those tasks then simply run
    again. ``durability="fsync"`` sets ``synchronous=FULL``, which loses none.

    :param db_path: the database file. Its folder must exist (it is not created).
    :param enable_gc: delete records older than ``gc_days``, and runs that started
        before then, whenever a run opens the store (in the run's first commit; the run
        never restores such a record) and the first time this object opens it.
    :param gc_days: how many days of history to keep (a whole number above 0).
    :param serializer: how results are stored (keyword-only): JSON by default;
        ``PickleSerializer()`` for any picklable object (never on an untrusted file); or
        any object with ``dumps`` and ``loads``.
    :param durability: what a crash may cost (keyword-only): ``"normal"`` (a dependent
        starts once its upstream's record is committed: a kill -9 loses nothing
        committed, a power loss may lose the last commits), ``"fsync"`` (commits are
        flushed to the disk first: a power loss loses nothing committed either) or
        ``"ordered"`` (dependents start at once; records are committed in completion
        order, at most ``commit_interval`` apart).
    :raises WorkflowValidationError: for a bad path, ``gc_days``, serializer or
        durability.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        enable_gc: bool = True,
        gc_days: int = 30,
        *,
        serializer: Serializer | None = None,
        durability: Durability = "normal",
    ) -> None:
        self._path: Path = check_db_path(as_path(db_path, "db_path"))
        self.db_path = os.fspath(db_path)
        self.enable_gc = bool(enable_gc)
        self.gc_days = check_gc_days(gc_days)
        self.serializer = check_serializer(serializer)
        self.durability = check_durability(durability)
        self._rows = Rows(self._path, self.serializer)
        self._collected = False
        # Connections kept between sessions (the blocking form's only: see _pool).
        self._idle = Idle()

    def _run_form(self) -> Any:
        """A run writes through the blocking twin of this store (see ``_sessions``)."""
        return blocking_form(self)

    def _twin_settings(self) -> dict[str, Any]:
        return dict(
            db_path=self.db_path,
            enable_gc=self.enable_gc,
            gc_days=self.gc_days,
            serializer=self.serializer,
            durability=self.durability,
        )

    def _lease_file(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.db_path!r})"

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
        """Save a task's state (replacing the one of that workflow and name) in one
        transaction.

        :param error: the exception (stored as ``"ValueError: bad"``) or its text.
        :param timestamp: a naive datetime is taken as local time; stored in UTC.
        :param workflow: the workflow the record belongs to (None: none).
        :raises StateSerializationError: when ``result`` cannot be stored; nothing is
            written.
        :raises StateStoreError: when the database cannot be opened or written.
        """
        name = check_task_name(task_name)
        workflow = check_workflow(workflow)
        record = TaskRecord(
            name,
            check_argument_status(status),
            self._rows.encode(name, result),
            error_text(error),
            timestamp,
        )
        row = self._rows.row(record, workflow)
        db = await self._connect(gc=not self._collected)
        try:
            with translate_errors(self._path, "write"):
                await _write(db, [(UPSERT, [row])])
        finally:
            await db.close()

    async def load_task_state(
        self, task_name: str, workflow: str | None = None
    ) -> dict[str, Any] | None:
        """The saved state of a task (``"status"`` as text, ``"timestamp"`` as ISO 8601),
        its result decoded; None when there is none.

        :param workflow: only a record of this workflow (None: the newest of any).
        """
        name = check_task_name(task_name)
        rows = await self._query(*select_one(name, check_workflow(workflow)))
        return public_state(self._rows.record(rows[0])) if rows else None

    async def delete_task_state(self, task_name: str, workflow: str | None = None) -> None:
        """Remove a task's saved state (of one workflow, or of all); no error if none."""
        sql, params = delete(check_task_name(task_name), check_workflow(workflow))
        await self._change(sql, params)

    async def list_all_tasks(self, workflow: str | None = None) -> list[str]:
        """The task names with a saved state (of one workflow, or all), sorted."""
        rows = await self._query(*select_names(check_workflow(workflow)))
        return [row[0] for row in rows]

    async def clear_all_states(self, workflow: str | None = None) -> None:
        """Remove every saved state (of one workflow, or all)."""
        sql, params = delete(None, check_workflow(workflow))
        await self._change(sql, params)

    # -- for the command line ------------------------------------------------------------------

    async def list_records(self, workflow: str | None = None) -> list[TaskRecord]:
        """Every saved record (of one workflow), oldest first, results decoded."""
        rows = await self._query(*select_all(check_workflow(workflow)))
        return [self._rows.record(row) for row in rows]

    async def _plan_reader(
        self, workflow: str, names: Sequence[str], prefixes: Sequence[str]
    ) -> tuple[Callable[[str, Any], Any], dict[str, TaskRecord]]:
        """What ``executor.plan`` reads: how a run would encode a value, and the records of
        ``workflow`` (none, and no database created, when the file does not exist). Names
        are keyed by workflow here: no other workflow's record can be under them."""
        if not self._path.exists():
            return self._rows.encode, {}
        records = await self.list_records(workflow)
        return self._rows.encode, {r.task_name: r for r in records}

    async def list_workflows(self) -> list[str]:
        """The names of the workflows with records in this database."""
        return [row[0] for row in await self._query(WORKFLOWS, [])]

    # -- the run history ------------------------------------------------------------------------

    async def runs(self, workflow: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """The recorded runs (of ``workflow``), newest first, at most ``limit``.

        A run recorded ``RUNNING`` whose process is gone is reported ``INTERRUPTED``.

        :raises WorkflowValidationError: for a ``limit`` that is not a whole number above 0.
        :raises StateStoreError: when the database cannot be read.
        """
        rows = await self._query(*select_runs(check_workflow(workflow), check_limit(limit)))
        return settle(from_rows(rows, self._path), self._path)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id (as :meth:`runs` reports it), or None."""
        rows = await self._query(SELECT_RUN, [str(run_id)])
        return next(iter(settle(from_rows(rows, self._path), self._path)), None)

    # -- a run's session -------------------------------------------------------------------------

    async def _open_session(self) -> AsyncSQLiteSession:
        # Every session collects old records, on a kept connection too (see _pool), in
        # its first transaction: a transaction of its own cost a small run a fifth of
        # what the store costs it.
        db = self._idle.take(self._path)
        if db is None:
            db = await self._connect(gc=False)
        return AsyncSQLiteSession(self, db, gc_cutoff(self.gc_days) if self.enable_gc else None)

    # -- the database ----------------------------------------------------------------------------

    async def _connect(self, gc: bool) -> AsyncDatabase:
        """A connection with the table checked (or made) and, if asked, old records
        collected.

        :raises StateStoreError: for a missing or read-only folder, a file that is not
            an SQLite database, or a ``tasks`` table of another shape; the file is left
            as it is.
        """
        check_folder(self._path)
        with translate_errors(self._path, "open"):
            db = await AsyncDatabase.connect(str(self._path), BUSY_TIMEOUT)
        try:
            with translate_errors(self._path, "open"):
                # Check before anything writes, even the switch to WAL: a database that
                # is not ours is left byte for byte as it was.
                columns = await db.execute(TABLE_INFO)
                added = check_shape(self._path, columns) if columns else []
                for pragma in pragmas(self.durability):
                    await db.execute(pragma)
                if not columns:
                    await _write(db, [(CREATE_TABLE, None)])
                elif added:  # a table of an earlier FlowWeaver: the new columns, empty
                    try:
                        await _write(db, [(sql, None) for sql in added])
                    except sqlite3.OperationalError as exc:
                        # another connection added them first
                        if "duplicate column" not in str(exc):
                            raise
                for statement in (*CREATE_INDEXES, CREATE_RUNS, *CREATE_RUNS_INDEXES):
                    await db.execute(statement)
                if gc and self.enable_gc:
                    await self._collect(db)
        except BaseException:
            await db.close()
            raise
        return db

    async def _collect(self, db: AsyncDatabase) -> None:
        await _write(db, _collection(gc_cutoff(self.gc_days)))
        self._collected = True

    async def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        db = await self._connect(gc=not self._collected)
        try:
            with translate_errors(self._path, "read"):
                return await db.execute(sql, params)
        finally:
            await db.close()

    async def _change(self, sql: str, params: Sequence[Any]) -> None:
        db = await self._connect(gc=not self._collected)
        try:
            with translate_errors(self._path, "write"):
                await _write(db, [(sql, [params])])
        finally:
            await db.close()


def _collection(cutoff: str) -> list[tuple[str, Sequence[Sequence[Any]] | None]]:
    """The statements that delete the records and runs older than ``cutoff``."""
    return [(GC, [[cutoff]]), (GC_RUNS, [[cutoff]])]


async def _write(
    db: AsyncDatabase, statements: Sequence[tuple[str, Sequence[Sequence[Any]] | None]]
) -> None:
    """Run each statement once (rows None) or once per row of parameters, all in one
    transaction.

    If anything fails or the caller is cancelled, the transaction is rolled back
    (shielded, so the connection is never left inside one).
    """
    if len(statements) == 1:
        sql, rows = statements[0]
        if rows is not None and len(rows) == 1:
            # One statement of one row (a chain's batch, a run's end in the history): in
            # autocommit mode it is a transaction of its own, atomic as a whole, without
            # the calls for BEGIN and COMMIT (a fifth of a chain's step).
            await db.execute(sql, rows[0])
            return
    await db.begin()
    try:
        for sql, rows in statements:
            if rows is None:
                await db.execute(sql)
            else:
                await db.executemany(sql, rows)
        await db.commit()
    except BaseException:
        with AsyncShield():
            await db.rollback()
        raise


class AsyncSQLiteSession:
    """A run's session on an SQLite state store of this module: one connection for the
    run, one transaction per batch.

    The connection writes to the file it opened, whatever the path names later: each
    batch first checks (one ``stat``) that the path still names that file, so a store
    deleted or replaced mid-run fails the run instead of losing every record silently.
    """

    def __init__(self, store: AsyncSQLiteStateStore, db: AsyncDatabase, cutoff: str | None) -> None:
        self._store = store
        # Records older than ``cutoff`` are garbage: deleted by the session's first
        # transaction, whichever it is (a batch, the run's beginning, or aclose when
        # nothing was written), and until then never loaded, as if gone already. None:
        # nothing to collect (any more).
        self._cutoff = cutoff
        self._rows = store._rows
        #: What ``encode`` calls, for a caller that encodes every result of a run.
        self.encoder = store._rows.encode
        self._db = db
        self._opened = file_id(store._path)
        self._commits = 0  # counted towards the store's next checkpoint (see _pool)

    def encode(self, task_name: str, value: Any) -> Any:
        """The ``result`` column's value for a task's result.

        :raises StateSerializationError: when the result cannot be stored.
        """
        return self._rows.encode(task_name, value)

    async def load(
        self, workflow: str, task_names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> dict[str, TaskRecord]:
        """The records of ``workflow`` for these names and for the names that start with
        one of ``prefixes`` (a mapped task's items); a record saved without a workflow
        stands in where the workflow has none of its own.

        :raises StateStoreError: when the database cannot be read.
        """
        found: dict[str, TaskRecord] = {}
        names = list(task_names)
        wanted_prefixes = tuple(prefixes)
        cutoff = self._cutoff
        read = self._rows.record
        with translate_errors(self._store._path, "read"):
            saved = None
            if counts_first(names):
                saved = (await self._db.execute(COUNT_FOR_RUN, [workflow]))[0][0]
            statements, wanted = select_for_run(workflow, names, prefixes, saved)
            for sql, params in statements:
                rows, strict = await self._db.select(sql, params)
                for row in rows:  # kept and expired, inlined for the common rows
                    name = row[1]
                    if (
                        wanted is not None
                        and name not in wanted
                        and not kept(name, wanted, wanted_prefixes)
                    ):
                        continue
                    if cutoff is not None:
                        stamp = row[5]
                        if stamp < cutoff if type(stamp) is str else expired(stamp, cutoff):
                            continue
                    record = read(row, strict)
                    if record.workflow is not None or record.task_name not in found:
                        found[record.task_name] = record
        return found

    async def save(self, workflow: str, records: Sequence[TaskRecord]) -> None:
        """Write ``records`` in one transaction; returns once it is committed.

        :raises StateStoreError: when the database cannot be written (nothing of the
            batch is then), or its file was deleted or replaced since the session opened.
        """
        if not records:
            return
        check_same_file(self._store._path, self._opened)
        rows = [self._rows.row(r, workflow) for r in records]
        with translate_errors(self._store._path, "write"):
            await self._write([(UPSERT, rows)])
        self._commits += 1

    async def begin_run(self, run: RunRecord) -> None:
        """Record ``run`` (``RUNNING``) and mark the other ``RUNNING`` runs of its workflow
        ``INTERRUPTED``, in one transaction; returns once it is committed.

        :raises StateStoreError: when the database cannot be written.
        """
        await self._save_run(run, [(MARK_INTERRUPTED, [[run.workflow, run.run_id]])])

    async def end_run(self, run: RunRecord) -> None:
        """Record how ``run`` ended (its row replaced), in one transaction.

        :raises StateStoreError: when the database cannot be written.
        """
        await self._save_run(run, [])

    async def _save_run(
        self, run: RunRecord, before: list[tuple[str, Sequence[Sequence[Any]] | None]]
    ) -> None:
        check_same_file(self._store._path, self._opened)
        with translate_errors(self._store._path, "write"):
            await self._write([*before, (UPSERT_RUN, [to_row(run)])])

    async def _write(self, statements: list[tuple[str, Sequence[Sequence[Any]] | None]]) -> None:
        """``statements`` in one transaction, after the collection of old records when it
        is still to be done (then done once this one commits)."""
        if self._cutoff is None:
            await _write(self._db, statements)
            return
        await _write(self._db, [*_collection(self._cutoff), *statements])
        self._cutoff = None
        self._store._collected = True

    async def aclose(self) -> None:
        """Give the connection back to the store for its next session, or close it
        (shielded); once the log has grown big, copy it into the database first, as far
        as no reader holds it back."""
        store = self._store
        try:
            if self._cutoff is not None:  # nothing was written: collect on its own
                check_same_file(store._path, self._opened)
                with translate_errors(store._path, "write"):
                    await self._write([])
            if store._idle.due(self._commits):
                with translate_errors(store._path, "write"):
                    await self._db.execute(CHECKPOINT)
        except BaseException:
            await self._db.close()
            raise
        if not store._idle.give(self._db, self._opened):
            await self._db.close()
