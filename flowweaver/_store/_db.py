"""SQLite, once in each form: :class:`AsyncDatabase` beside its blocking :class:`Database`.

The pair of ``_store_io`` for the SQLite store: aiosqlite under asyncio, and under trio
(where aiosqlite cannot work) the blocking form in a worker thread of the store's own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ._io import (
    AsyncShield,
    StoreThread,
    check_cancelled_in_worker,
    running_on_asyncio,
    wait_deadline,
)
from ._sqlite_schema import text_factory

if TYPE_CHECKING:
    import aiosqlite

Params = Sequence[Any]

#: SQLite's own wait for a lock held by another connection, per try. Waiting longer is
#: done in tries of this length, with a cancellation check between them: SQLite's wait
#: cannot be interrupted, and a cancelled run must not sit in it for the full timeout.
_BUSY_TRY = 0.1


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class Database:
    """One ``sqlite3`` connection in autocommit mode; transactions are explicit.

    A statement that meets another connection's write lock is tried again until
    ``busy_timeout`` s have passed (less inside ``give_up_after``); in a worker thread of
    a run, the run's cancellation ends the wait. It may be used from any thread, one call at a time.
    """

    #: A store may keep it open for its next session (see ``_pool``).
    reusable = True

    def __init__(self, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = conn
        self._patience = busy_timeout

    @property
    def idle(self) -> bool:
        """No transaction is open: the connection can serve another session."""
        return not self._conn.in_transaction

    @classmethod
    def connect(cls, path: str, busy_timeout: float) -> Database:
        """Open ``path``; a statement waits up to ``busy_timeout`` s for another writer."""
        # TEXT is decoded by sqlite3 itself (in C), and only a query that meets text
        # that is not UTF-8 is run again with text_factory (see execute).
        return cls(
            sqlite3.connect(path, timeout=_BUSY_TRY, isolation_level=None, check_same_thread=False),
            busy_timeout,
        )

    def execute(self, sql: str, params: Params = ()) -> list[Any]:
        """Run one statement and return its rows."""
        return self.select(sql, params)[0]

    def select(self, sql: str, params: Params = ()) -> tuple[list[Any], bool]:
        """:meth:`execute`, and whether the rows' text was decoded strictly: sqlite3's own
        UTF-8 decoding, which fails on what is not UTF-8, leaves no lone surrogate to look
        for (``Rows.record`` then skips its check of every column of every row)."""
        deadline = wait_deadline(self._patience)
        while True:
            try:
                return self._conn.execute(sql, params).fetchall(), True
            except sqlite3.OperationalError as exc:
                if "Could not decode" in str(exc):  # sqlite3's text for TEXT not UTF-8
                    return self._damaged_text(sql, params), False
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            check_cancelled_in_worker()

    def _damaged_text(self, sql: str, params: Params) -> list[Any]:
        """The rows again, text that is not UTF-8 with lone surrogates instead of failing
        the whole query, so that ``Rows.record`` can say which row and column it is."""
        conn = self._conn
        conn.text_factory = text_factory
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.text_factory = str

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each row of parameters (inside a transaction)."""
        self._conn.executemany(sql, rows)

    def begin(self) -> None:
        """Start a write transaction now (waits for another writer, see above)."""
        self.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit the transaction: with WAL and synchronous=NORMAL, one write."""
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the transaction, if one is open."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._conn.close()


class AsyncDatabase:
    """The async form of :class:`Database`: aiosqlite on asyncio, worker threads on trio.

    Waiting for another connection's write lock can be cancelled between tries.
    """

    #: Never kept between sessions: aiosqlite's thread and futures belong to one loop.
    reusable = False
    idle = False

    def __init__(
        self, conn: aiosqlite.Connection | None, blocking: Database | None, busy_timeout: float
    ) -> None:
        self._conn = conn
        self._blocking = blocking
        self._patience = busy_timeout
        self._worker = StoreThread()

    @classmethod
    async def connect(cls, path: str, busy_timeout: float) -> AsyncDatabase:
        """Open ``path``; a statement waits up to ``busy_timeout`` s for another writer."""
        if running_on_asyncio():
            import aiosqlite  # on first use: `import flowweaver` should not pay for it

            conn = await aiosqlite.connect(path, timeout=_BUSY_TRY, isolation_level=None)
            conn.text_factory = text_factory
            return cls(conn, None, busy_timeout)
        db = cls(None, None, busy_timeout)
        db._blocking = await db._worker.run(Database.connect, path, busy_timeout)
        return db

    def _sync(self) -> Database:
        assert self._blocking is not None
        return self._blocking

    async def execute(self, sql: str, params: Params = ()) -> list[Any]:
        """Run one statement and return its rows."""
        if self._conn is None:
            return await self._worker.run(self._sync().execute, sql, params)
        deadline = wait_deadline(self._patience)
        while True:
            try:
                return list(await self._conn.execute_fetchall(sql, params))
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            await anyio.lowlevel.checkpoint()

    async def select(self, sql: str, params: Params = ()) -> tuple[list[Any], bool]:
        """The blocking form's :meth:`Database.select`; aiosqlite's text always comes
        through the surrogate-escaping factory, so it is never strict."""
        if self._conn is None:
            return await self._worker.run(self._sync().select, sql, params)
        return await self.execute(sql, params), False

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each row of parameters (inside a transaction)."""
        if self._conn is None:
            return await self._worker.run(self._sync().executemany, sql, rows)
        cursor = await self._conn.executemany(sql, rows)
        await cursor.close()

    async def begin(self) -> None:
        """Start a write transaction now (waits for another writer, see above)."""
        await self.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        """Commit the transaction."""
        await self.execute("COMMIT")

    async def rollback(self) -> None:
        """Roll back the transaction, if one is open."""
        if self._conn is None:
            return await self._worker.run(self._sync().rollback)
        if self._conn.in_transaction:
            await self._conn.execute_fetchall("ROLLBACK")

    async def close(self) -> None:
        """Close the connection; shielded, so its thread never outlives the program."""
        with AsyncShield():
            if self._conn is None:
                if self._blocking is not None:
                    await self._worker.run(self._blocking.close)
                return
            await self._conn.close()
