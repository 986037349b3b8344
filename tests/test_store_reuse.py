"""What a store keeps between runs, and how a blocking run reaches it.

A blocking run owns its event loop: it opens, loads, records and closes its store on its
own thread, never through a worker thread (a 10-task run made twenty round trips). An
SQLite store keeps its connection between sessions (``_store/_pool.py``), only while it is
safe: one session at a time, same process, same file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

import flowweaver._store._pool as pool
import flowweaver.aio
from flowweaver import (
    JSONStateStore,
    SequentialExecutor,
    SQLiteStateStore,
    Task,
    ThreadedExecutor,
    Workflow,
)
from flowweaver._store._db import Database
from flowweaver._store._pool import Idle


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The functions sent to a worker thread with ``anyio.to_thread.run_sync``."""
    calls: list[Any] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return calls


def small(name: str = "small") -> Workflow:
    wf = Workflow(name)
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda a: a + 1), depends_on=["a"])
    return wf


@pytest.mark.parametrize("executor", [SequentialExecutor, ThreadedExecutor])
@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_blocking_run_reaches_its_store_on_its_own_thread(
    tmp_path: Path, thread_calls: list[Any], kind: str, executor: Any
) -> None:
    store = (
        JSONStateStore(tmp_path / "s.json")
        if kind == "json"
        else SQLiteStateStore(tmp_path / "s.db")
    )
    executor(state_store=store).execute(small())
    executor(state_store=store).execute(small())  # the second run restores both
    assert thread_calls == []
    assert sorted(store.list_all_tasks("small")) == ["a", "b"]


def test_an_awaited_run_still_reaches_a_blocking_store_through_a_worker_thread(
    tmp_path: Path, thread_calls: list[Any]
) -> None:
    store = SQLiteStateStore(tmp_path / "s.db")
    anyio.run(flowweaver.aio.AsyncExecutor(state_store=store).execute, small())
    assert thread_calls, "an awaited run must never block its caller's loop with the store"


def counted_connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real = Database.connect.__func__  # type: ignore[attr-defined]

    def connect(cls: type, path: str, busy_timeout: float) -> Database:
        opened.append(path)
        db: Database = real(cls, path, busy_timeout)
        return db

    monkeypatch.setattr(Database, "connect", classmethod(connect))
    return opened


def test_an_sqlite_store_keeps_its_connection_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = counted_connects(monkeypatch)
    store = SQLiteStateStore(tmp_path / "s.db")
    for _ in range(3):
        SequentialExecutor(state_store=store, fresh=True).execute(small())
    assert len(opened) == 1
    assert len(store._idle._idle) == 1


def test_a_store_file_deleted_between_runs_gets_a_new_connection_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = counted_connects(monkeypatch)
    path = tmp_path / "s.db"
    store = SQLiteStateStore(path)
    SequentialExecutor(state_store=store).execute(small())
    kept = store._idle._idle[0][2]
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.remove(f"{path}{suffix}")
    calls: list[str] = []
    wf = small()
    wf.add_task(Task("c", lambda b: calls.append("c") or b), depends_on=["b"])
    SequentialExecutor(state_store=store).execute(wf)
    assert calls == ["c"], "the deleted store's records must not be restored"
    assert len(opened) == 2
    with pytest.raises(Exception, match="closed"):
        kept.execute("SELECT 1")  # the old connection was closed, not kept
    assert sorted(SQLiteStateStore(path).list_all_tasks("small")) == ["a", "b", "c"]


def test_sessions_at_once_each_get_a_connection_and_only_a_few_are_kept(
    tmp_path: Path,
) -> None:
    store = SQLiteStateStore(tmp_path / "s.db")
    sessions = [store._open_session() for _ in range(pool.KEEP + 1)]
    assert len({id(s._db) for s in sessions}) == pool.KEEP + 1
    for session in sessions:
        session.close()
    assert len(store._idle._idle) == pool.KEEP
    again = [store._open_session() for _ in range(2)]
    assert {id(s._db) for s in again} <= {id(s._db) for s in sessions}
    for session in again:
        session.close()


def test_a_connection_in_a_transaction_or_of_another_process_is_never_handed_out(
    tmp_path: Path,
) -> None:
    class Fake:
        reusable = True
        idle = False
        closed = False

        def close(self) -> None:
            self.closed = True

    idle = Idle()
    assert not idle.give(Fake(), (1, 2))  # inside a transaction
    busy = Fake()
    busy.idle = True
    assert not idle.give(busy, None)  # its file is unknown
    path = tmp_path / "f"
    path.write_text("")
    st = os.stat(path)
    assert idle.give(busy, (st.st_dev, st.st_ino))
    idle._idle[:] = [(os.getpid() + 1, owner, db) for _, owner, db in idle._idle]
    assert idle.take(path) is None  # a forked child never uses its parent's
    assert not busy.closed  # nor closes it


def test_the_log_is_checked_in_once_enough_commits_were_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "CHECKPOINT_EVERY", 4)
    statements: list[str] = []
    real = Database.execute

    def execute(self: Database, sql: str, params: Any = ()) -> list[Any]:
        statements.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(Database, "execute", execute)
    store = SQLiteStateStore(tmp_path / "s.db")
    wf = Workflow("chain")
    for i in range(3):
        wf.add_task(Task(f"t{i}", lambda **_: 1), depends_on=[f"t{i - 1}"] if i else [])
    checkpoints = []
    for _ in range(3):
        SequentialExecutor(state_store=store, fresh=True).execute(wf)
        checkpoints.append(sum("wal_checkpoint" in s for s in statements))
    # three commits a run (one per task of the chain): the fourth commit falls in run 2
    assert checkpoints == [0, 1, 1]


@pytest.mark.anyio
async def test_the_awaitable_store_never_keeps_its_aiosqlite_connection(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = flowweaver.aio.SQLiteStateStore(tmp_path / "s.db")
    session = await store._open_session()
    await session.aclose()
    assert store._idle._idle == []


def test_kept_connections_are_closed_at_exit_leaving_one_database_file(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        from flowweaver import SequentialExecutor, SQLiteStateStore, Task, Workflow
        wf = Workflow("exit")
        wf.add_task(Task("a", lambda: 1))
        store = SQLiteStateStore({str(tmp_path / "s.db")!r})
        SequentialExecutor(state_store=store).execute(wf)
        assert store._idle._idle  # kept while the program runs
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    left = sorted(p.name for p in tmp_path.iterdir() if ".lease-" not in p.name)
    assert left == ["s.db"]  # no -wal or -shm beside it


def test_the_json_history_is_read_on_from_where_it_was_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowweaver._store._io import Files

    reads: list[int] = []
    real = Files.read

    def read(self: Files, path: Path, offset: int = 0) -> bytes | None:
        if path.name.endswith(".runs.jsonl"):
            reads.append(offset)
        return real(self, path, offset)

    monkeypatch.setattr(Files, "read", read)
    store = JSONStateStore(tmp_path / "s.json")
    for _ in range(3):
        SequentialExecutor(state_store=store, fresh=True).execute(small())
    # read whole once (the first run found no file), then only what was appended (and the
    # last byte, by the check for a torn line)
    assert reads.count(0) == 1, reads
    assert len(store.runs("small")) == 3
    # Replaced by another file (a copy: another inode): read again from the start.
    history = tmp_path / "s.json.runs.jsonl"
    copy = tmp_path / "copy"
    copy.write_bytes(history.read_bytes())
    os.replace(copy, history)
    reads.clear()
    assert len(store.runs("small")) == 3
    assert reads == [0]
    SequentialExecutor(state_store=store, fresh=True).execute(small())
    assert [r.status for r in store.runs("small")] == ["COMPLETED"] * 4


def test_a_json_store_whose_folder_went_away_between_runs_says_so(tmp_path: Path) -> None:
    """The folder is checked once per store object; when it is gone later, taking the
    lock fails and the check then names the folder (not a bare OSError)."""
    import shutil

    from flowweaver import StateStoreError

    folder = tmp_path / "state"
    folder.mkdir()
    store = JSONStateStore(folder / "s.json")
    SequentialExecutor(state_store=store).execute(small())
    shutil.rmtree(folder)
    with pytest.raises(StateStoreError, match=r"its folder .* does not exist; create the folder"):
        store.list_all_tasks()
    # (a run says so first, when it takes its lease beside the store)
    with pytest.raises(StateStoreError, match=r"check that the folder exists"):
        SequentialExecutor(state_store=store).execute(small())
    assert not folder.exists()  # never created by the store
