"""The connections a blocking SQLite store keeps between its sessions.

Theory of operation. Opening a session used to cost a connection: connect, read the
schema, set the pragmas, check the table, collect old records, and at the end a
checkpoint (two fsyncs). A service that runs a 10-task workflow per request paid that
every time, six times the run itself. Now a session's connection goes back to its store
when the session closes, and the next session of that store takes it, with its schema
and page cache warm.

A kept connection is only handed out while it is safe: one session at a time uses it
(taken out of the list under a lock, so threads and event loops never share one), only
in the process that opened it (a forked child opens its own), and only while the path
still names the file it opened (a store deleted or replaced between runs gets a new
connection; the old one is closed). A store keeps at most :data:`KEEP`; more sessions at
once each open their own, and the extra ones are closed when they end.

Kept connections are closed when their store is collected or the interpreter exits, so
that, as before they were kept, the last close copies the log into the database file and
removes it: a database copied after the program ended holds every record in its one file.

Only the blocking :class:`~flowweaver._store._db.Database` is kept (``reusable``): an
aiosqlite connection belongs to the loop and thread that opened it.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

from ._records import file_id

#: The most connections a store keeps while no session uses them.
KEEP = 2

#: A session that ends once a store object has committed this many transactions since its
#: last checkpoint copies the log into the database: the log stays small (each commit
#: adds a few pages) without a checkpoint, two fsyncs, after every small run.
CHECKPOINT_EVERY = 500


class Idle:
    """A store's idle connections, each with the process and the file it opened.

    They are closed when the store object is collected, and at exit (``weakref.finalize``):
    a connection left to the collector is closed without its last checkpoint, and Python
    3.13 warns about it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Changed in place only (the finalizer holds this very list).
        self._idle: list[tuple[int, tuple[int, int] | None, Any]] = []
        self._commits = 0
        weakref.finalize(self, _close, self._idle, self._lock)

    def due(self, commits: int) -> bool:
        """Count a session's ``commits``; True when a checkpoint is due (and reset)."""
        with self._lock:
            self._commits += commits
            if self._commits < CHECKPOINT_EVERY:
                return False
            self._commits = 0
            return True

    def take(self, path: Path) -> Any | None:
        """A kept connection to the file ``path`` names now, or None (open a new one)."""
        if not self._idle:
            return None
        now = file_id(path)
        pid = os.getpid()
        found = None
        stale = []
        with self._lock:
            kept = []
            for entry in list(self._idle):
                owner, opened, db = entry
                if owner != pid:
                    # A parent's connection, inherited by fork: never used, never closed
                    # here (closing it could drop the parent's locks on the database).
                    continue
                if opened != now or now is None:
                    stale.append(db)  # its file is gone or replaced: never write there
                elif found is None:
                    found = db
                else:
                    kept.append(entry)
            self._idle[:] = kept
        for db in stale:
            db.close()
        return found

    def give(self, db: Any, opened: tuple[int, int] | None) -> bool:
        """Keep ``db`` (opened on the file ``opened``) for the next session; False when
        it cannot be kept (an aiosqlite connection, one inside a transaction, or enough
        kept already): the caller closes it."""
        if not getattr(db, "reusable", False) or not db.idle or opened is None:
            return False
        with self._lock:
            if len(self._idle) >= KEEP:
                return False
            self._idle.append((os.getpid(), opened, db))
        return True

    def close(self) -> None:
        """Close every kept connection of this process."""
        _close(self._idle, self._lock)


def _close(idle: list[tuple[int, tuple[int, int] | None, Any]], lock: threading.Lock) -> None:
    with lock:
        kept = list(idle)
        idle.clear()
    pid = os.getpid()
    for owner, _, db in kept:
        if owner == pid:
            db.close()
