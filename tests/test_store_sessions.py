"""``open_session``: every kind of store, under asyncio and trio, as the engine reaches it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import flowweaver
import flowweaver.aio
from flowweaver import (
    BaseStateStore,
    JSONStateStore,
    SQLiteStateStore,
    StateStoreError,
    TaskRecord,
    TaskStatus,
    WorkflowValidationError,
)
from flowweaver._store._io import FileLock
from flowweaver._store._sessions import ThreadSession, open_session
from tests.store_helpers import NOW, record

STORE_KINDS = [
    ("json-sync", lambda p: JSONStateStore(p / "s.json")),
    ("json-async", lambda p: flowweaver.aio.JSONStateStore(p / "s.json")),
    ("sqlite-sync", lambda p: SQLiteStateStore(p / "s.db")),
    ("sqlite-async", lambda p: flowweaver.aio.SQLiteStateStore(p / "s.db")),
]


@pytest.fixture(params=STORE_KINDS, ids=[kind for kind, _ in STORE_KINDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return request.param[1](tmp_path)


@pytest.mark.anyio
async def test_every_built_in_store_round_trips_through_open_session(store: Any) -> None:
    session = await open_session(store)
    try:
        assert await session.load("wf", ["a", "b"]) == {}
        await session.save(
            "wf",
            [
                record("a", session.encode("a", {"v": 1}), token="t-a"),
                record("b", None, TaskStatus.FAILED, error="ValueError: x", inputs="t-a"),
            ],
        )
        await session.save("wf", [])  # an empty batch is fine
    finally:
        await session.aclose()
    session = await open_session(store)
    try:
        found = await session.load("wf", ["a", "b"])
    finally:
        await session.aclose()
    assert (found["a"].result, found["a"].token, found["a"].workflow) == ({"v": 1}, "t-a", "wf")
    assert (found["b"].status, found["b"].error, found["b"].inputs) == (
        TaskStatus.FAILED,
        "ValueError: x",
        "t-a",
    )


@pytest.mark.anyio
async def test_a_run_writes_every_built_in_store_through_one_worker_thread_call_per_batch(
    tmp_path: Path, anyio_backend: str
) -> None:
    # The async forms (aiofiles, aiosqlite) cost a round trip per statement; a run's batch
    # is one call of the blocking form in a worker thread, on asyncio and on trio.
    for store in (
        flowweaver.aio.JSONStateStore(tmp_path / "s.json"),
        flowweaver.aio.SQLiteStateStore(tmp_path / "s.db"),
        JSONStateStore(tmp_path / "s.json"),
        SQLiteStateStore(tmp_path / "s.db"),
    ):
        session = await open_session(store)
        await session.aclose()
        assert isinstance(session, ThreadSession)


@pytest.mark.anyio
async def test_an_unreadable_store_fails_at_load_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("{oops")
    session = await open_session(JSONStateStore(tmp_path / "s.json"))
    with pytest.raises(StateStoreError, match="not valid JSON"):
        await session.load("wf", ["a"])
    await session.aclose()
    (tmp_path / "s.db").write_text("not a database" * 100)
    with pytest.raises(StateStoreError, match="not an SQLite database"):
        await open_session(flowweaver.aio.SQLiteStateStore(tmp_path / "s.db"))


@pytest.mark.anyio
async def test_something_that_is_not_a_store_is_refused_naming_its_type() -> None:
    class LooksLikeAStore:
        def save_task_state(self, *args: Any) -> None: ...

    with pytest.raises(WorkflowValidationError, match="LooksLikeAStore"):
        await open_session(LooksLikeAStore())
    with pytest.raises(WorkflowValidationError, match="dict"):
        await open_session({})


@contextmanager
def held_by_another_writer(store: Any) -> Iterator[None]:
    """Hold the store's write lock the way another process would."""
    if isinstance(store, (JSONStateStore, flowweaver.aio.JSONStateStore)):
        with FileLock(Path(store.store_path)):
            yield
        return
    conn = sqlite3.connect(store.db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.anyio
async def test_a_cancelled_save_waiting_for_another_writer_gives_up_and_writes_nothing(
    store: Any,
) -> None:
    session = await open_session(store)
    await session.load("wf", ["a"])
    began = time.monotonic()
    with held_by_another_writer(store):
        with anyio.move_on_after(0.3) as scope:
            await session.save("wf", [record("a", session.encode("a", 1))])
    assert scope.cancelled_caught
    assert time.monotonic() - began < 10  # not the lock's full timeout
    await session.aclose()
    session = await open_session(store)
    assert await session.load("wf", ["a"]) == {}
    await session.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("rows", [1, 3], ids=["one row", "three rows"])
async def test_a_later_save_waits_for_another_writer_or_gives_up_writing_nothing(
    store: Any, rows: int
) -> None:
    # After a session's first transaction (which also collects old records), a batch of
    # one row is a statement of its own in SQLite's autocommit mode, and a bigger one an
    # explicit transaction: both wait for another writer, and a cancelled one is gone.
    session = await open_session(store)
    await session.load("wf", ["first"])
    await session.save("wf", [record("first", session.encode("first", 0))])
    names = [f"r{i}" for i in range(rows)]
    with held_by_another_writer(store):
        with anyio.move_on_after(0.3) as scope:
            await session.save("wf", [record(n, session.encode(n, 1)) for n in names])
    assert scope.cancelled_caught
    later = await open_session(store)
    assert set(await later.load("wf", ["first", *names])) == {"first"}
    await later.aclose()

    holding = threading.Event()

    def hold() -> None:
        with held_by_another_writer(store):
            holding.set()
            time.sleep(0.3)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        # the holder has the lock, and keeps it 0.3 s
        assert await anyio.to_thread.run_sync(holding.wait, 10)
        began = time.monotonic()
        await session.save("wf", [record(n, session.encode(n, 2)) for n in names])
        assert time.monotonic() - began > 0.1  # it waited for the other writer
    finally:
        holder.join()
    await session.aclose()
    later = await open_session(store)
    found = await later.load("wf", names)
    assert {n: r.result for n, r in found.items()} == dict.fromkeys(names, 2)
    await later.aclose()


# -- a user's own store ---------------------------------------------------------------------------


class DictStore(BaseStateStore):
    """The reference's five methods over a plain dict, as a user would write them."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.threads: set[int] = set()

    def save_task_state(
        self, task_name: str, status: TaskStatus, result: Any, error: Any, timestamp: datetime
    ) -> None:
        self.threads.add(threading.get_ident())
        self.states[task_name] = {
            "status": status,
            "result": result,
            "error": error,
            "timestamp": timestamp,
        }

    def load_task_state(self, task_name: str) -> dict[str, Any] | None:
        self.threads.add(threading.get_ident())
        return self.states.get(task_name)

    def delete_task_state(self, task_name: str) -> None:
        self.states.pop(task_name, None)

    def list_all_tasks(self) -> list[str]:
        return list(self.states)

    def clear_all_states(self) -> None:
        self.states.clear()


class AsyncDictStore(flowweaver.aio.BaseStateStore):
    """The same with ``async def`` methods, storing statuses and timestamps as text."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}

    async def save_task_state(
        self, task_name: str, status: TaskStatus, result: Any, error: Any, timestamp: datetime
    ) -> None:
        await anyio.lowlevel.checkpoint()
        self.states[task_name] = {
            "status": status.value,
            "result": result,
            "error": error,
            "timestamp": timestamp.isoformat(),
        }

    async def load_task_state(self, task_name: str) -> dict[str, Any] | None:
        await anyio.lowlevel.checkpoint()
        return self.states.get(task_name)

    async def delete_task_state(self, task_name: str) -> None:
        self.states.pop(task_name, None)

    async def list_all_tasks(self) -> list[str]:
        return list(self.states)

    async def clear_all_states(self) -> None:
        self.states.clear()


@pytest.mark.anyio
@pytest.mark.parametrize("store_cls", [DictStore, AsyncDictStore])
async def test_a_user_store_with_the_five_methods_works_through_a_session(
    store_cls: type,
) -> None:
    user_store = store_cls()
    session = await open_session(user_store)
    value = {"not": "copied"}
    assert session.encode("a", value) is value  # the user's store judges what it keeps
    await session.save(
        "wf",
        [
            record("a", value, token="ignored"),
            record("b", None, TaskStatus.FAILED, error="ValueError: bad"),
        ],
    )
    found = await session.load("wf", ["a", "b", "c"])
    await session.aclose()
    assert set(found) == {"a", "b"}
    a, b = found["a"], found["b"]
    assert (a.status, a.result, a.timestamp, a.workflow) == (TaskStatus.COMPLETED, value, NOW, None)
    assert (b.status, b.error) == (TaskStatus.FAILED, "ValueError: bad")
    assert a.timestamp.tzinfo is not None


@pytest.mark.anyio
async def test_a_blocking_user_store_is_called_in_a_worker_thread() -> None:
    user_store = DictStore()
    session = await open_session(user_store)
    await session.save("wf", [record("a", 1)])
    await session.load("wf", ["a"])
    await session.aclose()
    assert user_store.threads
    assert threading.get_ident() not in user_store.threads


@pytest.mark.anyio
async def test_a_user_store_that_raises_or_returns_nonsense_gives_a_store_error() -> None:
    class Broken(DictStore):
        def save_task_state(self, *args: Any) -> None:
            raise OSError("disk on fire")

        def load_task_state(self, task_name: str) -> dict[str, Any] | None:
            return {"status": "MAYBE"} if task_name == "odd" else "nonsense"  # type: ignore[return-value]

    session = await open_session(Broken())
    saving = r"Broken\.save_task_state\('a'\).*disk on fire"
    with pytest.raises(StateStoreError, match=saving) as info:
        await session.save("wf", [record("a", 1)])
    assert isinstance(info.value.__cause__, OSError)
    loading = r"Broken\.load_task_state\('x'\) returned 'nonsense'"
    with pytest.raises(StateStoreError, match=loading):
        await session.load("wf", ["x"])
    with pytest.raises(StateStoreError, match=r"'odd'.*MAYBE"):
        await session.load("wf", ["odd"])
    await session.aclose()


def test_the_base_classes_need_the_five_methods() -> None:
    with pytest.raises(TypeError):
        BaseStateStore()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        flowweaver.aio.BaseStateStore()  # type: ignore[abstract]


def test_the_store_names_are_exported() -> None:
    for name in (
        "BaseStateStore",
        "JSONStateStore",
        "SQLiteStateStore",
        "StateStoreError",
        "StateSerializationError",
        "JSONSerializer",
        "PickleSerializer",
        "TaskRecord",
    ):
        assert name in flowweaver.__all__
        assert getattr(flowweaver, name) is not None
    for name in ("BaseStateStore", "JSONStateStore", "SQLiteStateStore"):
        assert name in flowweaver.aio.__all__
    assert issubclass(flowweaver.JSONStateStore, flowweaver.BaseStateStore)
    assert issubclass(flowweaver.aio.SQLiteStateStore, flowweaver.aio.BaseStateStore)
    assert flowweaver.TaskRecord is TaskRecord
    plain = TaskRecord("a", TaskStatus.COMPLETED, 1, None, datetime.now(timezone.utc))
    assert plain.workflow is None


# A mapped task's item names are known only once it expands: a run loads them by prefix.
PREFIXED = ["p", "p[0]", "p[a b]", "p[[1]]", "p[", "p]", "p\\x", "pq[0]", "P[0]", "q[0]", "a_%[1]"]
NEAR_MISSES = ["ab%[1]", "a_x[1]", "a_%", "a_%]"]


@pytest.mark.anyio
async def test_every_store_loads_the_names_that_start_with_a_prefix(store: Any) -> None:
    session = await open_session(store)
    names = PREFIXED + NEAR_MISSES
    await session.save("wf", [record(n, i) for i, n in enumerate(names)])
    found = await session.load("wf", ["p"], prefixes=["p[", "a_%["])
    await session.aclose()
    assert set(found) == {"p", "p[0]", "p[a b]", "p[[1]]", "p[", "a_%[1]"}
    assert found["p[0]"].result == 1


@pytest.mark.anyio
async def test_an_sqlite_prefix_load_is_an_index_range_of_its_own_workflow(tmp_path: Path) -> None:
    from flowweaver._store._sqlite_schema import select_for_run

    store = SQLiteStateStore(tmp_path / "s.db")
    session = await open_session(store)
    await session.save("wf", [record("p[0]", 1), record("p[1]", 2)])
    await session.save("other", [record("p[0]", -1), record("p[2]", -2)])
    found = await session.load("wf", [], prefixes=["p["])
    await session.aclose()
    assert {n: r.result for n, r in found.items()} == {"p[0]": 1, "p[1]": 2}
    ((sql, params),), _ = select_for_run("wf", [], ["p["])
    with closing(sqlite3.connect(tmp_path / "s.db")) as db:
        plan = " ".join(str(row) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "SCAN" not in plan  # a search on the primary key, not a table scan
    assert "task_name>? AND task_name<?" in plan.replace("=", "")


SQLITE_KINDS = [k for k in STORE_KINDS if k[0].startswith("sqlite")]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", SQLITE_KINDS, ids=[k for k, _ in SQLITE_KINDS])
@pytest.mark.parametrize("gone", [3, 5000], ids=["walk", "lookups"])
async def test_an_sqlite_load_of_many_names_finds_exactly_the_runs_records(
    tmp_path: Path, kind: tuple[str, Any], gone: int
) -> None:
    # More names than one chunk of lookups: the store counts what the workflow (and no
    # workflow) holds, and walks all of it when that is at most twice the names, dropping
    # the rest; else it looks each name up. Both must find the same records.
    from flowweaver._store._sqlite_schema import COUNT_FOR_RUN, select_for_run

    session = await open_session(kind[1](tmp_path))

    def saved(name: str, value: Any) -> TaskRecord:
        return record(name, session.encode(name, value))

    names = [f"t{i}" for i in range(1200)]
    await session.save("wf", [saved(n, i) for i, n in enumerate(names[:1000])])
    await session.save("wf", [saved(f"gone{i}", "gone") for i in range(gone)])
    await session.save("wf", [saved("m[0]", "item"), saved("m[1]", "item")])
    await session.save("wf", [saved("mx", "not an item")])
    await session.save("other", [saved(n, "other's") for n in names[:10]])
    await session.save("", [saved("t1100", "ownerless"), saved("t5", "ownerless")])
    found = await session.load("wf", [*names, "m"], prefixes=["m["])
    await session.aclose()

    expected: dict[str, Any] = {n: i for i, n in enumerate(names[:1000])}
    expected.update({"t1100": "ownerless", "m[0]": "item", "m[1]": "item"})
    assert {n: r.result for n, r in found.items()} == expected
    assert found["t5"].workflow == "wf"
    assert found["t1100"].workflow is None
    with closing(sqlite3.connect(tmp_path / "s.db")) as db:
        ((count,),) = db.execute(COUNT_FOR_RUN, ["wf"]).fetchall()
    _, wanted = select_for_run("wf", [*names, "m"], ["m["], count)
    assert (wanted is not None) == (gone == 3)  # the path this test meant to take


@pytest.mark.anyio
async def test_a_user_store_finds_prefixed_names_with_list_all_tasks() -> None:
    user_store = DictStore()
    session = await open_session(user_store)
    await session.save("wf", [record(n, i) for i, n in enumerate(PREFIXED)])
    found = await session.load("wf", ["p"], prefixes=["p["])
    assert set(found) == {"p", "p[0]", "p[a b]", "p[[1]]", "p["}
    assert set(await session.load("wf", ["p"])) == {"p"}  # no prefix: no listing

    class Unlisted(DictStore):
        def list_all_tasks(self) -> list[str]:
            raise OSError("no listing today")

    session = await open_session(Unlisted())
    with pytest.raises(StateStoreError, match=r"Unlisted\.list_all_tasks\(\) raised.*listing"):
        await session.load("wf", ["p"], prefixes=["p["])
