"""The SQLite state store: async in tests/_async, its blocking twin in tests/_sync."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    PickleSerializer,
    StateSerializationError,
    StateStoreError,
    TaskStatus,
    WorkflowValidationError,
)
from flowweaver._store._db import AsyncDatabase
from flowweaver.aio import SQLiteStateStore
from tests.store_helpers import (
    AWKWARD_NAMES,
    NOW,
    NOW_TEXT,
    at,
    exists,
    record,
    snapshot,
    write,
)

COLUMNS = {
    "task_name",
    "status",
    "result",
    "error",
    "timestamp",
    "workflow",
    "version",
    "fingerprint",
    "token",
    "inputs",
    "logs",
}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def old_row(path: Path, name: str, days: float, workflow: str = "wf") -> None:
    """Put a record ``days`` old into the database with plain sqlite3."""
    stamp = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="microseconds")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO tasks (workflow, task_name, status, result, error, timestamp) "
            "VALUES (?, ?, 'COMPLETED', '1', NULL, ?)",
            (workflow, name, stamp),
        )
    conn.close()


# -- the reference's five methods ---------------------------------------------------------------


@pytest.mark.anyio
async def test_the_five_methods_round_trip(path: Path) -> None:
    store = SQLiteStateStore(str(path))
    await store.save_task_state("fetch", TaskStatus.COMPLETED, {"count": 100}, None, NOW)
    await store.save_task_state("bad", "FAILED", None, ValueError("boom"), at(1))
    assert await store.list_all_tasks() == ["bad", "fetch"]
    state = await store.load_task_state("fetch")
    assert state is not None
    assert (state["status"], state["result"], state["error"]) == ("COMPLETED", {"count": 100}, None)
    assert datetime.fromisoformat(state["timestamp"]) == NOW
    failed = await store.load_task_state("bad")
    assert failed is not None
    assert (failed["status"], failed["error"]) == ("FAILED", "ValueError: boom")
    assert await store.load_task_state("missing") is None
    await store.save_task_state("fetch", TaskStatus.COMPLETED, {"count": 101}, None, at(2))
    state = await store.load_task_state("fetch")
    assert state is not None
    assert state["result"] == {"count": 101}  # replaced, not added
    await store.delete_task_state("fetch")
    await store.delete_task_state("fetch")
    assert await store.list_all_tasks() == ["bad"]
    await store.clear_all_states()
    assert await store.list_all_tasks() == []


@pytest.mark.anyio
async def test_the_table_has_the_references_columns_index_and_query(path: Path) -> None:
    store = SQLiteStateStore(path)
    await store.save_task_state("done", TaskStatus.COMPLETED, {"k": "v"}, None, NOW)
    await store.save_task_state("bad", TaskStatus.FAILED, None, "ValueError: x", NOW)
    columns = {row[1]: row for row in query(path, "PRAGMA table_info(tasks)")}
    assert set(columns) == COLUMNS
    key = sorted((row[5], name) for name, row in columns.items() if row[5])
    assert [name for _, name in key] == ["workflow", "task_name"]
    indexes = query(
        path, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'"
    )
    assert any(name == "idx_timestamp" and "(timestamp)" in sql for name, sql in indexes if sql)
    # only the reference's index on tasks: each is one more tree to update per saved task
    # (the run history's table, runs, has its own)
    assert [name for name, sql in indexes if sql] == ["idx_timestamp"]
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    # the reference's own query, unchanged
    rows = query(path, "SELECT task_name, timestamp FROM tasks WHERE status = 'COMPLETED'")
    assert rows == [("done", NOW_TEXT)]
    assert query(path, "SELECT result FROM tasks WHERE task_name = 'done'") == [('{"k":"v"}',)]


@pytest.mark.anyio
async def test_many_workflows_share_one_database(path: Path) -> None:
    store = SQLiteStateStore(path)
    for workflow, value in (("orders", 1), ("users", 2)):
        session = await store._open_session()
        await session.save(workflow, [record("fetch", session.encode("fetch", value))])
        await session.aclose()
    assert await store.list_workflows() == ["orders", "users"]
    session = await store._open_session()
    orders = await session.load("orders", ["fetch"])
    users = await session.load("users", ["fetch"])
    other = await session.load("billing", ["fetch"])
    await session.aclose()
    assert (orders["fetch"].result, orders["fetch"].workflow) == (1, "orders")
    assert (users["fetch"].result, users["fetch"].workflow) == (2, "users")
    assert other == {}
    assert await store.list_all_tasks() == ["fetch"]
    assert await store.list_all_tasks(workflow="users") == ["fetch"]
    assert [(r.workflow, r.result) for r in await store.list_records()] == [
        ("orders", 1),
        ("users", 2),
    ]
    assert [r.workflow for r in await store.list_records("users")] == ["users"]
    await store.delete_task_state("fetch", workflow="orders")
    assert await store.list_workflows() == ["users"]
    await store.clear_all_states(workflow="billing")
    assert await store.list_workflows() == ["users"]


@pytest.mark.anyio
async def test_load_task_state_without_a_workflow_returns_the_newest(path: Path) -> None:
    store = SQLiteStateStore(path)
    await store.save_task_state("t", TaskStatus.COMPLETED, "old", None, NOW, workflow="a")
    await store.save_task_state("t", TaskStatus.COMPLETED, "new", None, at(5), workflow="b")
    await store.save_task_state("t", TaskStatus.COMPLETED, "mid", None, at(2), workflow="c")
    newest = await store.load_task_state("t")
    assert newest is not None
    assert (newest["result"], newest["workflow"]) == ("new", "b")
    of_a = await store.load_task_state("t", workflow="a")
    assert of_a is not None
    assert of_a["result"] == "old"


@pytest.mark.anyio
async def test_a_record_saved_without_a_workflow_is_restored_by_name(path: Path) -> None:
    store = SQLiteStateStore(path)
    await store.save_task_state("t", TaskStatus.COMPLETED, "anyone's", None, NOW)
    await store.save_task_state("u", TaskStatus.COMPLETED, "anyone's", None, NOW)
    session = await store._open_session()
    await session.save("wf", [record("u", session.encode("u", "mine"))])
    found = await session.load("wf", ["t", "u"])
    await session.aclose()
    assert (found["t"].result, found["t"].workflow) == ("anyone's", None)
    assert (found["u"].result, found["u"].workflow) == ("mine", "wf")  # its own comes first


@pytest.mark.anyio
async def test_awkward_task_names_round_trip(path: Path) -> None:
    store = SQLiteStateStore(path)
    for i, name in enumerate(AWKWARD_NAMES):
        await store.save_task_state(name, TaskStatus.COMPLETED, {"name": name}, None, at(i))
    assert sorted(await store.list_all_tasks()) == sorted(AWKWARD_NAMES)
    for name in AWKWARD_NAMES:
        state = await store.load_task_state(name)
        assert state is not None
        assert state["result"] == {"name": name}
    session = await store._open_session()
    await session.save("wf", [record(n, session.encode(n, n)) for n in AWKWARD_NAMES])
    found = await session.load("wf", AWKWARD_NAMES)
    await session.aclose()
    assert {n: r.result for n, r in found.items()} == {n: n for n in AWKWARD_NAMES}


# -- results and serializers ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "type_name"),
    [({1, 2}, "set"), ((1, 2), "tuple"), (float("inf"), "float"), (b"raw", "bytes")],
)
async def test_a_result_json_cannot_hold_is_refused_before_anything_is_written(
    path: Path, value: object, type_name: str
) -> None:
    store = SQLiteStateStore(path)
    with pytest.raises(StateSerializationError, match=rf"'bad'.*\b{type_name}\b"):
        await store.save_task_state("bad", TaskStatus.COMPLETED, value, None, NOW)
    assert not exists(path)
    session = await store._open_session()
    with pytest.raises(StateSerializationError, match="'bad'"):
        session.encode("bad", value)
    await session.aclose()
    assert query(path, "SELECT COUNT(*) FROM tasks") == [(0,)]


@pytest.mark.anyio
async def test_the_pickle_serializer_round_trips_any_object(path: Path) -> None:
    store = SQLiteStateStore(path, serializer=PickleSerializer())
    value = {"when": NOW, "pair": (1, 2), "tags": {"x"}}
    session = await store._open_session()
    await session.save("wf", [record("a", session.encode("a", value))])
    found = await session.load("wf", ["a"])
    await session.aclose()
    assert found["a"].result == value
    with pytest.raises(StateStoreError, match=r"'a'.*serializer"):
        await SQLiteStateStore(path).list_records()


# -- a run's session ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_session_round_trips_every_field(path: Path) -> None:
    store = SQLiteStateStore(path)
    session = await store._open_session()
    assert await session.load("wf", ["a"]) == {}
    await session.save(
        "wf",
        [
            record(
                "a",
                session.encode("a", [1, "two"]),
                version="v1",
                fingerprint="abc",
                token="tok-a",
                inputs="tok-up",
            ),
            record("b", None, TaskStatus.FAILED, minutes=1, error="KeyError: 'k'"),
            record("c", None, TaskStatus.SKIPPED, minutes=2),
        ],
    )
    await session.aclose()
    session = await SQLiteStateStore(path)._open_session()
    found = await session.load("wf", ["a", "b", "c", "zzz"])
    await session.aclose()
    a, b, c = found["a"], found["b"], found["c"]
    assert (a.status, a.result, a.version, a.fingerprint, a.token, a.inputs) == (
        TaskStatus.COMPLETED,
        [1, "two"],
        "v1",
        "abc",
        "tok-a",
        "tok-up",
    )
    assert (a.workflow, a.timestamp) == ("wf", NOW)
    assert (b.status, b.result, b.error) == (TaskStatus.FAILED, None, "KeyError: 'k'")
    assert b.timestamp == at(1)
    assert c.status is TaskStatus.SKIPPED


@pytest.mark.anyio
async def test_a_session_loads_more_names_than_sqlite_takes_in_one_statement(path: Path) -> None:
    store = SQLiteStateStore(path)
    names = [f"t{i}" for i in range(1200)]
    session = await store._open_session()
    await session.save("wf", [record(n, session.encode(n, i)) for i, n in enumerate(names)])
    found = await session.load("wf", names)
    await session.aclose()
    assert len(found) == 1200
    assert found["t1199"].result == 1199


@pytest.mark.anyio
async def test_a_batch_is_one_transaction(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStateStore(path)
    session = await store._open_session()
    begins: list[int] = []
    commits: list[int] = []
    real_begin, real_commit = AsyncDatabase.begin, AsyncDatabase.commit

    async def counting_begin(self: AsyncDatabase) -> None:
        begins.append(1)
        await real_begin(self)

    async def counting_commit(self: AsyncDatabase) -> None:
        commits.append(1)
        await real_commit(self)

    monkeypatch.setattr(AsyncDatabase, "begin", counting_begin)
    monkeypatch.setattr(AsyncDatabase, "commit", counting_commit)
    await session.save("wf", [record(f"t{i}", session.encode(f"t{i}", i)) for i in range(50)])
    assert (len(begins), len(commits)) == (1, 1)
    await session.aclose()
    assert query(path, "SELECT COUNT(*) FROM tasks") == [(50,)]


@pytest.mark.anyio
async def test_two_store_objects_on_one_database_keep_each_others_writes(path: Path) -> None:
    first, second = SQLiteStateStore(path), SQLiteStateStore(path)
    s1 = await first._open_session()
    s2 = await second._open_session()
    await s1.save("wf", [record("a", s1.encode("a", 1))])
    await s2.save("wf", [record("b", s2.encode("b", 2))])
    await first.save_task_state("c", TaskStatus.COMPLETED, 3, None, NOW, workflow="wf")
    await s2.save("wf", [record("d", s2.encode("d", 4))])
    await s1.aclose()
    await s2.aclose()
    assert await first.list_all_tasks() == ["a", "b", "c", "d"]


# -- garbage collection ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_records_older_than_gc_days_are_collected_when_a_store_opens(path: Path) -> None:
    await SQLiteStateStore(path).clear_all_states()  # make the table
    old_row(path, "ancient", days=40)
    old_row(path, "recent", days=20)
    store = SQLiteStateStore(path)
    assert await store.list_all_tasks() == ["recent"]
    old_row(path, "ancient", days=40)
    session = await store._open_session()  # every run collects
    await session.aclose()
    assert await store.list_all_tasks() == ["recent"]
    await SQLiteStateStore(path, gc_days=10).clear_all_states(workflow="none")
    assert query(path, "SELECT task_name FROM tasks") == []


@pytest.mark.anyio
async def test_a_session_collects_in_its_first_transaction_and_never_loads_the_garbage(
    path: Path,
) -> None:
    store = SQLiteStateStore(path)
    session = await store._open_session()
    await session.aclose()  # the table exists; the store may keep this connection
    old_row(path, "ancient", days=40)
    old_row(path, "recent", days=20)
    session = await store._open_session()
    try:
        loaded = await session.load("wf", ["ancient", "recent"])
        assert list(loaded) == ["recent"]  # as if collected already
        # nothing is written before the session's first transaction, collection included
        assert sorted(query(path, "SELECT task_name FROM tasks")) == [("ancient",), ("recent",)]
        await session.save("wf", [record("new", session.encode("new", 1))])
        names = query(path, "SELECT task_name FROM tasks ORDER BY task_name")
        assert names == [("new",), ("recent",)]  # collected with the batch, in one commit
        old_row(path, "later", days=40)
        await session.save("wf", [record("newer", session.encode("newer", 2))])
        assert ("later",) in query(path, "SELECT task_name FROM tasks")  # once a session
    finally:
        await session.aclose()


@pytest.mark.anyio
async def test_a_failed_first_transaction_leaves_the_collection_to_the_next(path: Path) -> None:
    store = SQLiteStateStore(path)
    session = await store._open_session()
    await session.aclose()
    old_row(path, "ancient", days=40)
    session = await store._open_session()
    try:
        with pytest.raises(StateStoreError, match="binding"):
            # a row sqlite3 cannot bind fails the batch after the collection's statements
            # ran in its transaction: nothing of it is committed, the collection neither
            await session.save("wf", [record("bad", object())])
        assert query(path, "SELECT task_name FROM tasks") == [("ancient",)]
    finally:
        await session.aclose()  # collects, as a session that wrote nothing does
    assert query(path, "SELECT task_name FROM tasks") == []


@pytest.mark.parametrize(
    "stamp",
    [
        "2000-01-01T00:00:00.000000+00:00",
        "2999-01-01T00:00:00.000000+00:00",
        "garbage",
        "",
        "ünïcödé",
        "5",
        "2.5",
        7,
        -1.5,
        None,
        b"\x00\xff",
    ],
)
def test_what_a_session_leaves_unloaded_is_what_sqlite_collects(stamp: Any) -> None:
    from flowweaver._store._sqlite_schema import expired, gc_cutoff

    cutoff = gc_cutoff(30)
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (timestamp DATETIME)")  # the tasks table's affinity
        conn.execute("INSERT INTO t VALUES (?)", (stamp,))
        [(stored, collected)] = conn.execute(
            "SELECT timestamp, coalesce(timestamp < ?, 0) FROM t", (cutoff,)
        ).fetchall()
    finally:
        conn.close()
    assert expired(stored, cutoff) is bool(collected)


@pytest.mark.anyio
async def test_enable_gc_false_keeps_every_record(path: Path) -> None:
    await SQLiteStateStore(path).clear_all_states()
    old_row(path, "ancient", days=400)
    store = SQLiteStateStore(path, enable_gc=False)
    session = await store._open_session()
    await session.aclose()
    assert await store.list_all_tasks() == ["ancient"]


@pytest.mark.parametrize("gc_days", [0, -1, 1.5, True, "30", None])
def test_gc_days_must_be_a_whole_number_above_zero(path: Path, gc_days: Any) -> None:
    with pytest.raises(WorkflowValidationError, match=r"gc_days.*above 0"):
        SQLiteStateStore(path, gc_days=gc_days)
    assert not exists(path)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [b"this is not a database, it is a text file\n" * 20, b'{"a": {"status": "COMPLETED"}}'],
)
async def test_a_file_that_is_not_a_database_is_an_error_and_is_left_as_it_is(
    path: Path, content: bytes
) -> None:
    write(path, content)
    store = SQLiteStateStore(path)
    with pytest.raises(StateStoreError, match="not an SQLite database") as info:
        await store.list_all_tasks()
    assert str(path) in str(info.value)
    with pytest.raises(StateStoreError, match="not an SQLite database"):
        await store.save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW)
    with pytest.raises(StateStoreError, match="not an SQLite database"):
        await store._open_session()
    assert snapshot(path) == content


@pytest.mark.anyio
@pytest.mark.parametrize(
    "schema",
    [
        # the reference's own table: one task per name, no workflow column
        "CREATE TABLE tasks (task_name TEXT PRIMARY KEY, status TEXT NOT NULL, result TEXT, "
        "error TEXT, timestamp DATETIME NOT NULL)",
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY, payload BLOB)",
        "CREATE TABLE tasks (workflow TEXT, task_name TEXT PRIMARY KEY, status TEXT, "
        "result TEXT, error TEXT, timestamp TEXT, version TEXT, fingerprint TEXT, token TEXT, "
        "inputs TEXT)",
    ],
)
async def test_a_tasks_table_of_another_shape_is_an_error_and_is_left_as_it_is(
    path: Path, schema: str
) -> None:
    conn = sqlite3.connect(path)
    conn.execute(schema)
    conn.commit()
    conn.close()
    before = snapshot(path)
    store = SQLiteStateStore(path)
    with pytest.raises(StateStoreError, match="another shape") as info:
        await store.save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW)
    assert str(path) in str(info.value)
    with pytest.raises(StateStoreError, match="another shape"):
        await store._open_session()
    assert snapshot(path) == before


@pytest.mark.anyio
async def test_a_store_in_a_missing_folder_is_an_error_and_no_folder_is_made(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing" / "state.db"
    store = SQLiteStateStore(path)
    with pytest.raises(StateStoreError, match=r"folder .*missing.* does not exist"):
        await store.list_all_tasks()
    with pytest.raises(StateStoreError, match="does not exist"):
        await store._open_session()
    assert not exists(path.parent)


@pytest.mark.parametrize("bad", ["", None, 3, ":memory:"])
def test_a_db_path_that_is_not_a_file_path_is_refused(bad: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="db_path"):
        SQLiteStateStore(bad)
