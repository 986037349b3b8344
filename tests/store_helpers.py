"""Helpers shared by the store tests of both forms (plain functions, no event loop)."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flowweaver import TaskRecord, TaskStatus

CHILD = str(Path(__file__).with_name("store_child.py"))
# Recent (records older than 30 days are garbage to an SQLite store), in UTC, with
# microseconds, so that formats and round trips are exact.
NOW = datetime.now(timezone.utc).replace(microsecond=123456) - timedelta(hours=1)
NOW_TEXT = NOW.isoformat()  # "YYYY-MM-DDTHH:MM:SS.123456+00:00"
AWKWARD_NAMES = [
    "it's",
    'say "hi"',
    "a/b\\c",
    "ünïcödé-任务",
    "emoji 🚀 task",
    "new\nline",
]


def at(minutes: int) -> datetime:
    """A timestamp ``minutes`` after :data:`NOW`."""
    return NOW + timedelta(minutes=minutes)


def record(
    name: str,
    result: Any = None,
    status: TaskStatus = TaskStatus.COMPLETED,
    *,
    minutes: int = 0,
    **extra: Any,
) -> TaskRecord:
    """A record as the engine hands it to ``save`` (``result`` already encoded)."""
    return TaskRecord(name, status, result, extra.pop("error", None), at(minutes), **extra)


def snapshot(path: Path) -> bytes | None:
    """The file's bytes (None when missing), to prove an error left it as it was."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def spec(store_cls: type) -> str:
    return f"{store_cls.__module__}:{store_cls.__qualname__}"


def child(
    store_cls: type,
    path: Path,
    backend: str,
    *,
    workflow: str = "wf",
    prefix: str = "t",
    start: int = 0,
    count: int = 0,
    compact_min: int | None = None,
    durability: str = "normal",
) -> subprocess.Popen[bytes]:
    """Start ``tests/store_child.py`` saving batches into ``path``."""
    env = dict(os.environ)
    if compact_min is not None:
        env["FW_COMPACT_MIN_BYTES"] = str(compact_min)
    env["FW_DURABILITY"] = durability
    args = [spec(store_cls), str(path), backend, workflow, prefix, str(start), str(count)]
    return subprocess.Popen(
        [sys.executable, CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def acked(out: bytes) -> list[int]:
    """The batch numbers a child printed in full (a torn last line does not count)."""
    return [int(line) for line in out.split(b"\n")[:-1] if line.strip()]


def run_and_kill(
    store_cls: type,
    path: Path,
    backend: str,
    start: int,
    rng: random.Random,
    durability: str = "normal",
) -> list[int]:
    """Run a child until it has saved at least one batch, let it go on for a random
    moment, SIGKILL it, and return the batches whose ``save`` returned."""
    proc = child(store_cls, path, backend, start=start, compact_min=4096, durability=durability)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first:
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the child failed: {err.decode(errors='replace')}")
    # a random moment: sometimes mid-append, mid-compaction or mid-commit
    deadline = rng.uniform(0.0, 0.25)
    if deadline:
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    out, _ = proc.communicate(timeout=30)
    return acked(first + out)


def run_children(
    store_cls: type, path: Path, backend: str, workflows: list[str], count: int
) -> None:
    """Run one child per workflow at once, each saving ``count`` batches; all must pass."""
    procs = [
        child(store_cls, path, backend, workflow=w, prefix=f"{w}-", count=count, compact_min=2048)
        for w in workflows
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err.decode(errors="replace")
        assert acked(out) == list(range(count))


# Plain file access for the async tests (a test may block its own loop; these keep the
# async lint rules meaningful for the library code).


def write(path: Path, data: bytes | str) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def exists(path: Path) -> bool:
    return path.exists()


def size(path: Path) -> int:
    """The file's size, 0 when it does not exist."""
    return path.stat().st_size if path.exists() else 0


def load_json(path: Path) -> Any:
    """The file read with plain ``json.load``, as a user would."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def completed(store: Path) -> set[str]:
    """The completed tasks the store holds, read without FlowWeaver."""
    if store.suffix == ".json":
        main = json.loads(store.read_text()) if store.exists() else {}
        names = {n for n, r in main.items() if r["status"] == "COMPLETED"}
        journal = store.with_name(store.name + ".journal")
        if journal.exists():  # what a run wrote since the file was last compacted
            for line in journal.read_text().splitlines():
                try:
                    op = json.loads(line)
                except ValueError:
                    continue  # a torn last line: never reported durable
                for name, raw in op.get("put", {}).items():
                    if raw["status"] == "COMPLETED":
                        names.add(name)
        return names
    if not store.exists():
        return set()
    # closing(): a connection's own `with` commits but leaves it open (3.13 warns)
    with closing(sqlite3.connect(store)) as db:
        rows = db.execute("SELECT task_name FROM tasks WHERE status = 'COMPLETED'").fetchall()
    return {name for (name,) in rows}


def recorded_runs(store: Path) -> dict[str, str]:
    """Each run's status as the store recorded it (run id -> status), read without
    FlowWeaver: the ``runs`` table, or the JSON store's history file (last line wins)."""
    if store.suffix == ".json":
        history = store.with_name(store.name + ".runs.jsonl")
        found = {}
        for line in history.read_text().splitlines() if history.exists() else []:
            try:
                raw = json.loads(line)
            except ValueError:
                continue  # a torn or damaged line
            found[raw["run_id"]] = raw["status"]
        return found
    with closing(sqlite3.connect(store)) as db:
        return dict(db.execute("SELECT run_id, status FROM runs").fetchall())


@contextmanager
def holding_lease(store: Path, workflow: str) -> Iterator[None]:
    """Hold ``workflow``'s run lease on ``store``, as a run of it would."""
    from flowweaver._store._io import _release, _try_lock
    from flowweaver._store._lease import lease_path

    fd = os.open(lease_path(store, workflow), os.O_RDWR | os.O_CREAT, 0o666)
    assert _try_lock(fd), "the lease is taken"
    try:
        yield
    finally:
        _release(fd)
