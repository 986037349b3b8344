"""The SQLite store's schema, statements and row conversions; no I/O here.

The table keeps the reference's columns (``task_name``, ``status``, ``result``, ``error``,
``timestamp``) and index (``idx_timestamp``), so the reference's own query,
``SELECT task_name, timestamp FROM tasks WHERE status = 'COMPLETED'``, runs unchanged. It
adds ``workflow`` (part of the key, so many workflows share one database; ``''`` for a
record saved without one), ``version``, ``fingerprint``, ``token`` and ``inputs``, and
``logs`` (the lines of a run with ``capture_logs``, a JSON list; NULL otherwise). A
database made before ``logs`` existed gets the column when a store opens it (``ALTER
TABLE ... ADD COLUMN``: its rows read NULL, and older FlowWeavers still read it).

Timestamps are ISO 8601 text in UTC with microseconds, so they sort and compare as text
and garbage collection can use the index.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .._errors import WorkflowValidationError
from .._status import TaskStatus
from ._api import StateSerializationError, StateStoreError, TaskRecord
from ._records import STATUS_OF_TEXT, format_timestamp, parse_timestamp
from ._serializers import JSONSerializer, NotJSONError, Serializer, encode, json_copy

#: How long a statement waits for another connection's write lock before failing.
BUSY_TIMEOUT = 30.0

COLUMNS = (
    "workflow",
    "task_name",
    "status",
    "result",
    "error",
    "timestamp",
    "version",
    "fingerprint",
    "token",
    "inputs",
    "logs",
)
#: What a database made by an earlier FlowWeaver may lack: added when a store opens it.
ADDED_COLUMNS = {"logs": "ALTER TABLE tasks ADD COLUMN logs TEXT"}
_SELECT = ", ".join(COLUMNS)

PRAGMAS = (
    # WAL: readers never wait for the writer, and each commit is one append to the log.
    "PRAGMA journal_mode=WAL",
    # NORMAL: a commit survives a crash of the process (kill -9) but not necessarily a
    # power loss or an OS crash, which may lose the last commits (never corrupt the
    # database). durability="fsync" swaps in FULL: an fsync on every commit.
    "PRAGMA synchronous=NORMAL",
    # Copy the log into the database every 10,000 pages (about 40 MB) instead of every
    # 1,000: a long run spends a fifth less per saved task; sessions check it in at close.
    "PRAGMA wal_autocheckpoint=10000",
)


def pragmas(durability: str) -> tuple[str, ...]:
    """The connection's settings for a store's ``durability`` (see ``_durability``)."""
    if durability == "fsync":
        return tuple(p.replace("NORMAL", "FULL") for p in PRAGMAS)
    return PRAGMAS


CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS tasks (
    workflow TEXT NOT NULL DEFAULT '',
    task_name TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    timestamp DATETIME NOT NULL,
    version TEXT,
    fingerprint TEXT,
    token TEXT,
    inputs TEXT,
    logs TEXT,
    PRIMARY KEY (workflow, task_name)
) WITHOUT ROWID"""
# WITHOUT ROWID keeps the rows in the primary key's own tree, and only the reference's
# idx_timestamp is added: every index is one more tree to update per saved task, which
# is most of what a store costs a run (lookups by task name alone, made by the command
# line only, scan the table instead).
CREATE_INDEXES = ("CREATE INDEX IF NOT EXISTS idx_timestamp ON tasks(timestamp)",)
TABLE_INFO = "PRAGMA table_info(tasks)"

UPSERT = f"INSERT OR REPLACE INTO tasks ({_SELECT}) VALUES ({', '.join('?' * len(COLUMNS))})"
GC = "DELETE FROM tasks WHERE timestamp < ?"
WORKFLOWS = "SELECT DISTINCT workflow FROM tasks WHERE workflow != '' ORDER BY workflow"

# SQLite before 3.32 allows at most 999 parameters in one statement.
_CHUNK = 500


def where(workflow: str | None, *conditions: str) -> tuple[str, list[Any]]:
    """A WHERE clause (possibly empty) and its parameters, for one workflow or all."""
    parts = list(conditions)
    params: list[Any] = []
    if workflow is not None:
        parts.append("workflow = ?")
        params.append(workflow)
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def select_one(task_name: str, workflow: str | None) -> tuple[str, list[Any]]:
    """The newest record of a task name (of one workflow, or any)."""
    clause, params = where(workflow, "task_name = ?")
    sql = f"SELECT {_SELECT} FROM tasks{clause} ORDER BY timestamp DESC LIMIT 1"
    return sql, [task_name, *params]


def select_all(workflow: str | None) -> tuple[str, list[Any]]:
    """Every record (of one workflow), oldest first."""
    clause, params = where(workflow)
    return f"SELECT {_SELECT} FROM tasks{clause} ORDER BY timestamp, workflow, task_name", params


def select_names(workflow: str | None) -> tuple[str, list[Any]]:
    """The task names saved (of one workflow)."""
    clause, params = where(workflow)
    return f"SELECT DISTINCT task_name FROM tasks{clause} ORDER BY task_name", params


def delete(task_name: str | None, workflow: str | None) -> tuple[str, list[Any]]:
    """Delete one task name's records, or all (of one workflow, or any)."""
    if task_name is None:
        clause, params = where(workflow)
        return f"DELETE FROM tasks{clause}", params
    clause, params = where(workflow, "task_name = ?")
    return f"DELETE FROM tasks{clause}", [task_name, *params]


#: How many records a run's load could read at most: its workflow's and ownerless ones.
COUNT_FOR_RUN = "SELECT count(*) FROM tasks WHERE workflow IN (?, '')"


def counts_first(names: Sequence[str]) -> bool:
    """A load of this many names asks :data:`COUNT_FOR_RUN` first (see
    :func:`select_for_run`): more than one chunk of lookups."""
    return len(names) > _CHUNK


def select_for_run(
    workflow: str, names: Sequence[str], prefixes: Sequence[str] = (), saved: int | None = None
) -> tuple[list[tuple[str, list[Any]]], frozenset[str] | None]:
    """What a run restores from: its records and ownerless ones, in chunks of names, and
    for each prefix (a mapped task's items, ``"P["``) the names that start with it.

    :param saved: what :data:`COUNT_FOR_RUN` counted, when asked (:func:`counts_first`).
        When that is at most twice the names, one walk of the workflow's part of the key
        reads every row instead (10,000 records: 1.3 us a row, where looking each name
        up costs 2.0), and the rows of other names are dropped: see :func:`kept`.
    :returns: the statements, and the names a row of the walk must have (None: every
        row the statements return is wanted).
    """
    if saved is not None and saved <= 2 * len(names):
        sql = f"SELECT {_SELECT} FROM tasks WHERE workflow IN (?, '')"
        return [(sql, [workflow])], frozenset(names)
    statements = []
    for start in range(0, len(names), _CHUNK):
        chunk = list(names[start : start + _CHUNK])
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT {_SELECT} FROM tasks WHERE workflow IN (?, '') AND task_name IN ({marks})"
        statements.append((sql, [workflow, *chunk]))
    for prefix in prefixes:
        # A range on the key's second column, which the primary key index serves; LIKE
        # would scan (and '_' and '%' in task names would need escaping). Text compares
        # byte by byte (BINARY), so the names starting with "P[" are exactly those from
        # "P[" up to, not including, "P\\" (the prefix with its last character bumped).
        sql = (
            f"SELECT {_SELECT} FROM tasks WHERE workflow IN (?, '') "
            "AND task_name >= ? AND task_name < ?"
        )
        statements.append((sql, [workflow, prefix, after_prefix(prefix)]))
    return statements, None


def kept(name: object, wanted: frozenset[str], prefixes: tuple[str, ...]) -> bool:
    """A row of the workflow's walk (see :func:`select_for_run`) is one the run asked for:
    one of its names, or an item of one of its mapped tasks."""
    return name in wanted or (type(name) is str and name.startswith(prefixes))


def after_prefix(prefix: str) -> str:
    """The least text greater than every text that starts with ``prefix`` (non-empty)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def gc_cutoff(days: int, now: datetime | None = None) -> str:
    """Records older than this timestamp text are garbage."""
    now = now if now is not None else datetime.now(timezone.utc)
    return format_timestamp(now - timedelta(days=days))


def expired(stamp: object, cutoff: str) -> bool:
    """A row's ``timestamp`` is one :data:`GC` deletes with this cutoff, compared as SQLite
    compares: text by its bytes (UTF-8 sorts as its code points do), any number below
    any text, NULL and blobs never."""
    if type(stamp) is str:
        return stamp < cutoff
    return type(stamp) is int or type(stamp) is float


def check_shape(path: Path, columns: Sequence[Sequence[Any]]) -> list[str]:
    """Fail unless ``PRAGMA table_info(tasks)`` shows a table this store can use.

    :returns: the statements that add what a table of an earlier FlowWeaver lacks.
    :raises StateStoreError: naming the database, what is missing and what to do.
    """
    names = {row[1] for row in columns}
    key = sorted((row[5], row[1]) for row in columns if row[5])
    missing = [c for c in COLUMNS if c not in names and c not in ADDED_COLUMNS]
    if not missing and [name for _, name in key] == ["workflow", "task_name"]:
        return [sql for column, sql in ADDED_COLUMNS.items() if column not in names]
    problem = (
        f"it has no column {', '.join(missing)}"
        if missing
        else f"its key is ({', '.join(name for _, name in key)}), not (workflow, task_name)"
    )
    raise StateStoreError(
        f"the state store {str(path)!r} has a 'tasks' table of another shape ({problem}); it "
        "was left as it is: move the database away or choose another db_path"
    )


def check_db_path(path: Path) -> Path:
    """:raises WorkflowValidationError: for ``":memory:"``, which no second connection sees."""
    if str(path) == ":memory:":
        raise WorkflowValidationError(
            "db_path ':memory:' is not supported: the store opens a connection per run (and "
            "per call), and an in-memory database dies with its connection; use a file path"
        )
    return path


#: The most days ``gc_days`` may say: a cutoff further back than year 1 cannot be computed.
MAX_GC_DAYS = 700_000


def check_gc_days(gc_days: object) -> int:
    """:raises WorkflowValidationError: unless ``gc_days`` is a whole number from 1 to
    :data:`MAX_GC_DAYS`."""
    if isinstance(gc_days, bool) or not isinstance(gc_days, int) or not 1 <= gc_days <= MAX_GC_DAYS:
        raise WorkflowValidationError(
            f"gc_days must be a whole number of days above 0 and at most {MAX_GC_DAYS:,}, got "
            f"{gc_days!r}; to keep records forever pass enable_gc=False"
        )
    return gc_days


@contextmanager
def translate_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn an sqlite3 error inside the block into a :class:`StateStoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise database_error(path, exc, doing) from None


def database_error(path: Path, exc: sqlite3.Error, doing: str) -> StateStoreError:
    """A :class:`StateStoreError` for an sqlite3 error, saying what to do about it."""
    text = str(exc)
    if "not a database" in text or (isinstance(exc, sqlite3.DatabaseError) and "malformed" in text):
        return StateStoreError(
            f"the state store {str(path)!r} is not an SQLite database, or is damaged ({text}); "
            "it was left as it is: move it away or choose another db_path"
        )
    if "locked" in text or "busy" in text:
        return StateStoreError(
            f"the state store {str(path)!r} stayed locked by another connection while "
            f"trying to {doing} (waited up to {BUSY_TIMEOUT:g} s, a few seconds once the run "
            f"was interrupted; {text}); wait for the other process or stop it"
        )
    return StateStoreError(
        f"cannot {doing} the state store {str(path)!r}: {type(exc).__name__}: {text}; check "
        "the file, its folder's permissions and the free disk space"
    )


class Rows:
    """Converts between :class:`TaskRecord` and rows, with the store's serializer."""

    def __init__(self, path: Path, serializer: Serializer) -> None:
        self.path = path
        self.serializer = serializer
        self._plain_json = isinstance(serializer, JSONSerializer)

    def encode(self, task_name: str, value: Any) -> str | bytes:
        """The ``result`` column's value for a task's result (text or a BLOB).

        :raises StateSerializationError: naming the task and the type.
        """
        if self._plain_json:
            try:
                return json_copy(value)[0]
            except NotJSONError as exc:
                raise StateSerializationError(task_name, value, str(exc)) from exc
        return encode(self.serializer, task_name, value)

    def row(self, record: TaskRecord, workflow: str | None) -> tuple[Any, ...]:
        """The row for a record whose ``result`` :meth:`encode` made."""
        return (
            workflow or "",
            record.task_name,
            record.status._value_,  # .value goes through a Python-level property
            record.result,
            record.error,
            format_timestamp(record.timestamp),
            record.version,
            record.fingerprint,
            record.token,
            record.inputs,
            None if record.logs is None else json.dumps(record.logs, ensure_ascii=False),
        )

    def record(self, row: Sequence[Any], strict: bool = False) -> TaskRecord:
        """A :class:`TaskRecord` from a row, its result decoded.

        :param strict: its text was decoded strictly (``Database.select``): no column
            can hold a lone surrogate, so none is looked for.

        :raises StateStoreError: for a row this store cannot read, naming the row (its
            workflow and task name), the column and what is wrong with it.
        """
        (
            workflow,
            name,
            status,
            result,
            error,
            stamp,
            version,
            fingerprint,
            token,
            inputs,
            logs,
        ) = row
        if not strict and not "".join([v for v in row if type(v) is str]).isascii():
            for column, value in zip(COLUMNS, row, strict=True):
                if isinstance(value, str) and not value.isascii() and not _utf8(value):
                    raise self._damaged(row, f"its {column!r} is not valid UTF-8 text")
        task_status = STATUS_OF_TEXT.get(status) if type(status) is str else None
        if task_status is None:
            names = ", ".join(s.value for s in TaskStatus)
            raise self._damaged(row, f"its status {status!r} is not one of {names}")
        try:
            timestamp = parse_timestamp(stamp)
        except (ValueError, TypeError, OverflowError):
            raise self._damaged(row, f"its timestamp {stamp!r} is not an ISO 8601 time") from None
        try:
            if result is None or (result == "null" and self._plain_json):
                value = None  # a task that returned None, the most common result
            else:
                value = self.serializer.loads(result)
        except Exception as exc:
            raise StateStoreError(
                f"the state store {str(self.path)!r} has a record of task {name!r} "
                f"(workflow {workflow!r}) whose result cannot be read with "
                f"{self.serializer!r} ({type(exc).__name__}: {exc}); open it with the "
                "serializer that wrote it, or delete that record"
            ) from None
        # Positional (in the order of TaskRecord's fields): half the cost of keywords.
        return TaskRecord(
            name,
            task_status,
            value,
            error,
            timestamp,
            workflow or None,
            version,
            fingerprint,
            token,
            inputs,
            None if logs is None else self._logs(row, logs),
        )

    def _logs(self, row: Sequence[Any], text: object) -> list[str]:
        try:
            lines = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            lines = None
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise self._damaged(row, "its 'logs' are not a JSON list of strings")
        return lines

    def _damaged(self, row: Sequence[Any], problem: str) -> StateStoreError:
        workflow, name = row[0], row[1]
        return StateStoreError(
            f"the state store {str(self.path)!r} has a damaged record (workflow {workflow!r}, "
            f"task {name!r}): {problem}; something other than FlowWeaver changed it. Delete "
            "that record (flowweaver reset), or restore the file from a copy"
        )


def text_factory(data: bytes) -> str:
    """How the connections decode TEXT: text that is not UTF-8 comes back with lone
    surrogates instead of failing the whole query, so that :meth:`Rows.record` can say
    which row and column are damaged."""
    return data.decode("utf-8", "surrogateescape")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
