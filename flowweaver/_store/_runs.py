"""The run history as both built-in stores keep it: rows, sidecar lines, and which
``RUNNING`` runs are really running. No I/O here but the lease probe of :func:`settle`.

Theory of operation. A run records itself twice: ``RUNNING`` when it begins (durable
before any task runs) and once more when it ends. A run that dies in between (kill -9,
power loss) stays ``RUNNING`` in the store; readers report it ``INTERRUPTED`` when its
process is gone (same host, by pid) or nobody holds its workflow's run lease, and the
next run of the workflow records it so (it holds the lease, so the older run cannot be
alive).

The SQLite store keeps one row per run in the ``runs`` table (:data:`CREATE_RUNS`). The
JSON store keeps the reference's file unchanged and appends history to a sidecar,
``<file>.runs.jsonl``: one JSON object per line, one line per begin or end, the last
line of a run winning. A torn last line (a crash mid-append) and a line that is not a
run are skipped, never fatal: history must not stop a run or hide the records.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import _log
from .._errors import WorkflowValidationError
from ._api import RUN_STATUSES, RunRecord
from ._lease import lease_held
from ._records import format_timestamp, parse_timestamp

logger = _log.logger  # with its NullHandler (see _log)

RUNNING = "RUNNING"
INTERRUPTED = "INTERRUPTED"

RUN_COLUMNS = (
    "run_id",
    "workflow",
    "params",
    "started",
    "ended",
    "status",
    "counts",
    "ran",
    "restored",
    "pid",
    "host",
)
_SELECT_RUNS = ", ".join(RUN_COLUMNS)

CREATE_RUNS = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    params TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    status TEXT NOT NULL,
    counts TEXT,
    ran TEXT,
    restored TEXT,
    pid INTEGER,
    host TEXT
)"""
# Each run reads only its own rows, whatever the history holds (a service keeps a month
# of runs): the history's listing by workflow and time; garbage collection, which every
# session runs, by start time; and begin_run's marking of its workflow's RUNNING runs as
# INTERRUPTED, through a partial index of the few RUNNING rows. Without the last two, a
# 10-task run over 20,000 past runs took 11.9 ms a run, 0.9 with them (1.0 over none).
CREATE_RUNS_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_runs_workflow_started ON runs(workflow, started)",
    "CREATE INDEX IF NOT EXISTS idx_runs_started ON runs(started)",
    "CREATE INDEX IF NOT EXISTS idx_runs_running ON runs(workflow) WHERE status = 'RUNNING'",
)
UPSERT_RUN = (
    f"INSERT OR REPLACE INTO runs ({_SELECT_RUNS}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
)
MARK_INTERRUPTED = (
    "UPDATE runs SET status = 'INTERRUPTED' WHERE workflow = ? AND status = 'RUNNING' "
    "AND run_id != ?"
)
GC_RUNS = "DELETE FROM runs WHERE started < ?"
SELECT_RUN = f"SELECT {_SELECT_RUNS} FROM runs WHERE run_id = ?"


def select_runs(workflow: str | None, limit: int | None) -> tuple[str, list[Any]]:
    """The runs (of one workflow), newest first, at most ``limit``."""
    sql = f"SELECT {_SELECT_RUNS} FROM runs"
    params: list[Any] = []
    if workflow is not None:
        sql += " WHERE workflow = ?"
        params.append(workflow)
    sql += " ORDER BY started DESC, run_id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def check_limit(limit: object) -> int | None:
    """:raises WorkflowValidationError: unless ``limit`` is None or a whole number above 0."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise WorkflowValidationError(
            f"limit must be a whole number above 0, or None for every run; got {limit!r}"
        )
    return limit


# -- encoding -------------------------------------------------------------------------------


def _json(value: Any) -> str:
    # A store with another serializer may take parameters JSON cannot hold: history is
    # for people, so those are kept as their repr rather than failing the run.
    if not value:  # most columns of a run's first row: no encoder call at all
        if type(value) is dict:
            return "{}"
        if type(value) is list:
            return "[]"
    return _encode(value)


# One encoder for every row: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False, default=repr).encode


def to_row(run: RunRecord) -> tuple[Any, ...]:
    """The ``runs`` row of ``run``."""
    return (
        run.run_id,
        run.workflow,
        _json(run.params),
        format_timestamp(run.started),
        None if run.ended is None else format_timestamp(run.ended),
        run.status,
        _json(run.counts),
        _json(run.ran),
        _json(run.restored),
        run.pid,
        run.host,
    )


def from_row(row: Sequence[Any]) -> RunRecord:
    """A :class:`RunRecord` from a ``runs`` row.

    :raises ValueError: for a row that is not a run (saying what is wrong).
    """
    raw = dict(zip(RUN_COLUMNS, row, strict=True))
    for key in ("params", "counts", "ran", "restored"):
        raw[key] = json.loads(raw[key]) if raw[key] is not None else None
    return from_raw(raw)


def from_rows(rows: Iterable[Sequence[Any]], path: Path) -> list[RunRecord]:
    """The runs of ``runs`` rows; a row that is not a run is skipped (and logged)."""
    found = []
    for row in rows:
        try:
            found.append(from_row(row))
        except (ValueError, TypeError, OverflowError) as exc:
            logger.warning("skipped run %r in the run history of %s: %s", row[0], path, exc)
    return found


def to_line(runs: Iterable[RunRecord]) -> bytes:
    """Sidecar lines for ``runs``, one each (ASCII, so a torn line never ends
    mid-character and a line never holds a raw newline)."""
    lines = []
    for run in runs:
        row = to_row(run)
        raw = dict(zip(RUN_COLUMNS, row, strict=True))
        for key in ("params", "counts", "ran", "restored"):
            raw[key] = json.loads(raw[key])
        lines.append(json.dumps(raw, separators=(",", ":")) + "\n")
    return "".join(lines).encode("ascii")


def from_raw(raw: Any) -> RunRecord:
    """A :class:`RunRecord` from a row or sidecar line made a dict.

    :raises ValueError: for anything that is not a run.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"a run is a JSON object, got {type(raw).__name__}")
    run_id, workflow, status = raw.get("run_id"), raw.get("workflow"), raw.get("status")
    if not isinstance(run_id, str) or not isinstance(workflow, str):
        raise ValueError("a run needs a run_id and a workflow (text)")
    if status not in RUN_STATUSES:
        raise ValueError(f"run {run_id!r} has an unknown status {status!r}")
    params, counts, ran, restored = (raw.get(k) for k in ("params", "counts", "ran", "restored"))
    pid, host = raw.get("pid"), raw.get("host")
    ended = raw.get("ended")
    return RunRecord(
        run_id=run_id,
        workflow=workflow,
        params=_mapping(params, "params", run_id),
        started=parse_timestamp(raw.get("started")),
        ended=None if ended is None else parse_timestamp(ended),
        status=status,
        counts={str(k): int(v) for k, v in _mapping(counts, "counts", run_id).items()},
        ran={str(k): str(v) for k, v in _mapping(ran, "ran", run_id).items()},
        restored=[str(n) for n in (restored or [])],
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host=host if isinstance(host, str) else None,
    )


def _mapping(value: Any, key: str, run_id: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"run {run_id!r} has {key!r} that is not an object")
    return value


def parse_sidecar(path: Path, data: bytes, start: int = 0) -> tuple[dict[str, RunRecord], int]:
    """The runs in a sidecar's bytes (read from byte ``start`` on), the last line of each
    run winning.

    :returns: the runs by id, and the size up to the end of the last complete line (a
        torn last line after it was never reported durable; the writer cuts it off).
    """
    end = data.rfind(b"\n") + 1
    runs: dict[str, RunRecord] = {}
    after = f" after byte {start}" if start else ""
    for number, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            run = from_raw(json.loads(line))
        except (ValueError, TypeError, OverflowError) as exc:
            # Skipped, not fatal: a damaged history line must not stop runs or hide
            # the store's records (the reference file is never touched for it).
            logger.warning("skipped line %d%s of the run history %s: %s", number, after, path, exc)
            continue
        runs[run.run_id] = run
    return runs, end


def newest_first(
    runs: Iterable[RunRecord], workflow: str | None, limit: int | None
) -> list[RunRecord]:
    """``runs`` (of ``workflow``) sorted newest first, at most ``limit``."""
    found = [r for r in runs if workflow is None or r.workflow == workflow]
    found.sort(key=lambda r: r.run_id)
    found.sort(key=lambda r: r.started, reverse=True)
    return found if limit is None else found[:limit]


def started_before(run: RunRecord, cutoff: str) -> bool:
    """Garbage: a run that started before the cutoff timestamp text."""
    return format_timestamp(run.started) < cutoff


# -- which RUNNING runs still run -----------------------------------------------------------


def settle(runs: list[RunRecord], store: Path) -> list[RunRecord]:
    """``runs`` with each ``RUNNING`` one whose process is gone reported ``INTERRUPTED``
    (the store is not changed: the next run of its workflow records that)."""
    return [_settled(r, store) if r.status == RUNNING else r for r in runs]


def _settled(run: RunRecord, store: Path) -> RunRecord:
    # The pid first: it decides most cases without touching the lease. Probing the lease
    # takes it for an instant, which a run starting at that very moment without
    # wait_for_lock would take for a concurrent run.
    if _process_gone(run.pid, run.host) or not lease_held(store, run.workflow):
        return replace(run, status=INTERRUPTED)
    return run


def _process_gone(pid: int | None, host: str | None) -> bool:
    if pid is None or host != socket.gethostname() or sys.platform == "win32":
        return False  # cannot tell (and os.kill on Windows would end the process)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, owned by someone else
    return False


def now_utc() -> datetime:
    """The time a run begins or ends (UTC)."""
    return datetime.now(timezone.utc)
