"""The JSON state store: async in tests/_async, its blocking twin in tests/_sync."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import flowweaver._store._json_format
from flowweaver import (
    PickleSerializer,
    StateSerializationError,
    StateStoreError,
    TaskStatus,
    WorkflowValidationError,
)
from flowweaver.aio import JSONStateStore
from tests.store_helpers import (
    AWKWARD_NAMES,
    NOW,
    NOW_TEXT,
    at,
    exists,
    load_json,
    record,
    size,
    snapshot,
    text,
    write,
)

REFERENCE_KEYS = {"status", "result", "error", "timestamp"}
EXTRA_KEYS = {"workflow", "version", "fingerprint", "token", "inputs"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.json"


def journal(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


# -- the reference's five methods ---------------------------------------------------------------


@pytest.mark.anyio
async def test_the_five_methods_round_trip(path: Path) -> None:
    store = JSONStateStore(str(path))
    await store.save_task_state("fetch", TaskStatus.COMPLETED, {"count": 100}, None, NOW)
    await store.save_task_state("bad", TaskStatus.FAILED, None, ValueError("boom"), at(1))
    assert await store.list_all_tasks() == ["fetch", "bad"]
    state = await store.load_task_state("fetch")
    assert state is not None
    assert state["status"] == "COMPLETED"
    assert state["result"] == {"count": 100}
    assert state["error"] is None
    assert datetime.fromisoformat(state["timestamp"]) == NOW
    failed = await store.load_task_state("bad")
    assert failed is not None
    assert (failed["status"], failed["error"]) == ("FAILED", "ValueError: boom")
    assert await store.load_task_state("missing") is None

    await store.delete_task_state("fetch")
    await store.delete_task_state("fetch")  # deleting what is gone is no error
    assert await store.list_all_tasks() == ["bad"]
    await store.clear_all_states()
    assert await store.list_all_tasks() == []
    assert load_json(path) == {}


@pytest.mark.anyio
async def test_the_file_is_the_references_format(path: Path) -> None:
    store = JSONStateStore(path)
    await store.save_task_state("fetch", "COMPLETED", {"key": "value"}, None, NOW)
    data = load_json(path)
    assert list(data) == ["fetch"]
    saved = data["fetch"]
    assert set(saved) >= REFERENCE_KEYS | EXTRA_KEYS
    assert saved["status"] == "COMPLETED"
    assert saved["result"] == {"key": "value"}  # the value itself, not a string
    assert saved["error"] is None
    assert saved["timestamp"] == NOW_TEXT
    assert "\n  " in text(path)  # pretty-printed by default


@pytest.mark.anyio
async def test_pretty_print_false_writes_one_line(path: Path) -> None:
    store = JSONStateStore(path, pretty_print=False)
    await store.save_task_state("a", TaskStatus.COMPLETED, [1, 2], None, NOW)
    assert text(path).count("\n") == 1
    assert load_json(path)["a"]["result"] == [1, 2]


@pytest.mark.anyio
async def test_timestamps_are_stored_in_utc(path: Path) -> None:
    store = JSONStateStore(path)
    paris = timezone(timedelta(hours=1))
    noon_in_paris = datetime(2024, 1, 15, 11, 30, tzinfo=paris)
    await store.save_task_state("a", TaskStatus.COMPLETED, 1, None, noon_in_paris)
    assert load_json(path)["a"]["timestamp"] == "2024-01-15T10:30:00.000000+00:00"
    naive = datetime(2024, 1, 15, 10, 30)  # taken as local time, as Python does
    await store.save_task_state("b", TaskStatus.COMPLETED, 1, None, naive)
    saved = datetime.fromisoformat(load_json(path)["b"]["timestamp"])
    assert saved == naive.astimezone(timezone.utc)


@pytest.mark.anyio
async def test_a_reference_file_without_the_extra_keys_loads(path: Path) -> None:
    write(
        path,
        json.dumps(
            {
                "task_name": {
                    "status": "COMPLETED",
                    "result": {"key": "value"},
                    "error": None,
                    "timestamp": "2024-01-15T10:30:00",
                }
            }
        ),
    )
    store = JSONStateStore(path)
    state = await store.load_task_state("task_name")
    assert state is not None
    assert state["result"] == {"key": "value"}
    assert state["workflow"] is None
    session = await store._open_session()
    found = await session.load("any", ["task_name"])  # ownerless: restored by name
    await session.aclose()
    assert found["task_name"].result == {"key": "value"}
    assert found["task_name"].timestamp.tzinfo is not None


@pytest.mark.anyio
async def test_the_workflow_keyword_narrows_each_method(path: Path) -> None:
    store = JSONStateStore(path)
    await store.save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW, workflow="w1")
    await store.save_task_state("b", TaskStatus.COMPLETED, 2, None, at(1), workflow="w2")
    assert await store.list_all_tasks(workflow="w1") == ["a"]
    assert await store.list_all_tasks() == ["a", "b"]
    assert await store.load_task_state("a", workflow="w2") is None
    state = await store.load_task_state("a", workflow="w1")
    assert state is not None
    assert state["workflow"] == "w1"
    await store.delete_task_state("a", workflow="w2")  # not w2's: kept
    assert await store.list_all_tasks() == ["a", "b"]
    assert await store.list_workflows() == ["w1", "w2"]
    records = await store.list_records()
    assert [(r.task_name, r.workflow, r.result) for r in records] == [
        ("a", "w1", 1),
        ("b", "w2", 2),
    ]
    assert [r.task_name for r in await store.list_records("w2")] == ["b"]
    await store.clear_all_states(workflow="w1")
    assert await store.list_all_tasks() == ["b"]


@pytest.mark.anyio
async def test_saving_over_another_workflows_task_is_refused(path: Path) -> None:
    store = JSONStateStore(path)
    await store.save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW, workflow="w1")
    before = snapshot(path)
    with pytest.raises(StateStoreError, match=r"'a'.*'w1'.*'w2'"):
        await store.save_task_state("a", TaskStatus.COMPLETED, 2, None, NOW, workflow="w2")
    assert snapshot(path) == before


@pytest.mark.anyio
async def test_awkward_task_names_round_trip(path: Path) -> None:
    store = JSONStateStore(path)
    for i, name in enumerate(AWKWARD_NAMES):
        await store.save_task_state(name, TaskStatus.COMPLETED, {"name": name}, None, at(i))
    assert await store.list_all_tasks() == AWKWARD_NAMES
    assert list(load_json(path)) == AWKWARD_NAMES
    for name in AWKWARD_NAMES:
        state = await store.load_task_state(name)
        assert state is not None
        assert state["result"] == {"name": name}
    session = await store._open_session()
    found = await session.load("wf", AWKWARD_NAMES)
    await session.save("wf", [record(n, session.encode(n, n)) for n in AWKWARD_NAMES])
    await session.aclose()
    assert set(found) == set(AWKWARD_NAMES)
    assert {n: r["result"] for n, r in load_json(path).items()} == {n: n for n in AWKWARD_NAMES}


# -- results and serializers ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ({1, 2}, "set"),
        ((1, 2), "tuple"),
        ({1: "a"}, "dict"),
        (float("nan"), "float"),
        (object(), "object"),
    ],
)
async def test_a_result_json_cannot_hold_is_refused_before_anything_is_written(
    path: Path, value: object, type_name: str
) -> None:
    store = JSONStateStore(path)
    await store.save_task_state("first", TaskStatus.COMPLETED, 1, None, NOW)
    before = snapshot(path)
    with pytest.raises(StateSerializationError, match=rf"'bad'.*\b{type_name}\b") as info:
        await store.save_task_state("bad", TaskStatus.COMPLETED, value, None, NOW)
    assert info.value.task_name == "bad"
    assert snapshot(path) == before
    session = await store._open_session()
    with pytest.raises(StateSerializationError, match="'bad'"):
        session.encode("bad", value)
    await session.aclose()
    assert snapshot(path) == before


@pytest.mark.anyio
async def test_a_saved_result_is_a_copy_taken_when_the_task_completed(path: Path) -> None:
    store = JSONStateStore(path)
    session = await store._open_session()
    value = {"rows": [1, 2]}
    encoded = session.encode("a", value)
    value["rows"].append(3)  # the task's object changes after it completed
    await session.save("wf", [record("a", encoded)])
    loaded = (await session.load("wf", ["a"]))["a"].result
    loaded["rows"].append(4)  # and the restored object is the caller's to change
    again = (await session.load("wf", ["a"]))["a"].result
    await session.aclose()
    assert again == {"rows": [1, 2]}
    assert load_json(path)["a"]["result"] == {"rows": [1, 2]}


@pytest.mark.anyio
async def test_the_pickle_serializer_round_trips_any_object(path: Path) -> None:
    store = JSONStateStore(path, serializer=PickleSerializer())
    value = {"when": NOW, "pair": (1, 2), "tags": {"x"}}
    await store.save_task_state("a", TaskStatus.COMPLETED, value, None, NOW)
    state = await store.load_task_state("a")
    assert state is not None
    assert state["result"] == value
    saved = load_json(path)["a"]
    assert saved["result_encoding"] == "base64"
    assert isinstance(saved["result"], str)
    with pytest.raises(StateStoreError, match="serializer"):
        await JSONStateStore(path).load_task_state("a")


@pytest.mark.anyio
async def test_a_store_read_with_another_serializer_fails_clearly(path: Path) -> None:
    await JSONStateStore(path).save_task_state("a", TaskStatus.COMPLETED, [1], None, NOW)
    with pytest.raises(StateStoreError, match=r"'a'.*serializer"):
        await JSONStateStore(path, serializer=PickleSerializer()).load_task_state("a")


@pytest.mark.anyio
async def test_any_object_with_dumps_and_loads_is_a_serializer(path: Path) -> None:
    store = JSONStateStore(path, serializer=json)  # the json module itself qualifies
    await store.save_task_state("a", TaskStatus.COMPLETED, {"k": 1}, None, NOW)
    assert load_json(path)["a"]["result"] == '{"k": 1}'
    state = await store.load_task_state("a")
    assert state is not None
    assert state["result"] == {"k": 1}


def test_a_serializer_without_dumps_and_loads_is_refused(path: Path) -> None:
    with pytest.raises(WorkflowValidationError, match="dumps"):
        JSONStateStore(path, serializer=object())  # type: ignore[arg-type]


# -- a run's session ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_session_round_trips_every_field(path: Path) -> None:
    store = JSONStateStore(path)
    session = await store._open_session()
    assert await session.load("wf", ["a", "b"]) == {}
    saved = [
        record(
            "a",
            session.encode("a", {"x": 1}),
            version="v2",
            fingerprint="f" * 8,
            token="tok-a",
            inputs="",
        ),
        record(
            "b",
            None,
            TaskStatus.FAILED,
            minutes=1,
            error="ValueError: bad",
            token="tok-b",
            inputs="tok-a",
        ),
        record("c", None, TaskStatus.SKIPPED, minutes=2),
    ]
    await session.save("wf", saved)
    await session.aclose()

    session = await JSONStateStore(path)._open_session()
    found = await session.load("wf", ["a", "b", "c", "d"])
    await session.aclose()
    assert set(found) == {"a", "b", "c"}
    a, b, c = found["a"], found["b"], found["c"]
    assert (a.status, a.result, a.version, a.fingerprint, a.token, a.inputs) == (
        TaskStatus.COMPLETED,
        {"x": 1},
        "v2",
        "ffffffff",
        "tok-a",
        "",
    )
    assert (a.workflow, a.timestamp) == ("wf", NOW)
    assert (b.status, b.error, b.inputs, b.timestamp) == (
        TaskStatus.FAILED,
        "ValueError: bad",
        "tok-a",
        at(1),
    )
    assert c.status is TaskStatus.SKIPPED
    data = load_json(path)
    assert data["b"]["inputs"] == "tok-a"
    assert data["a"]["workflow"] == "wf"


@pytest.mark.anyio
async def test_load_refuses_a_task_of_another_workflow_before_anything_runs(path: Path) -> None:
    store = JSONStateStore(path)
    session = await store._open_session()
    await session.save("orders", [record("fetch", session.encode("fetch", 1))])
    await session.aclose()
    before = snapshot(path)
    session = await store._open_session()
    with pytest.raises(StateStoreError, match=r"'fetch'.*'orders'.*'users'"):
        await session.load("users", ["fetch", "other"])
    with pytest.raises(StateStoreError, match=r"'fetch'.*'orders'.*'users'"):
        await session.save("users", [record("fetch", session.encode("fetch", 2))])
    await session.aclose()
    assert snapshot(path) == before


@pytest.mark.anyio
@pytest.mark.parametrize(("durability", "per_batch"), [("fsync", 1), ("normal", 0), ("ordered", 0)])
async def test_a_batch_is_one_journal_append_fsyncd_only_under_fsync_durability(
    path: Path, monkeypatch: pytest.MonkeyPatch, durability: str, per_batch: int
) -> None:
    store = JSONStateStore(path, durability=durability)
    session = await store._open_session()
    await session.save("wf", [record("first", session.encode("first", 0))])
    lines = snapshot(journal(path)).count(b"\n")
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    batch = [record(f"t{i}", session.encode(f"t{i}", {"i": i})) for i in range(50)]
    await session.save("wf", batch)
    assert len(fsyncs) == per_batch
    assert snapshot(journal(path)).count(b"\n") == lines + 1
    # Folding the journal into the file replaces it whole, fsync'd, under every setting.
    await session.aclose()
    assert len(fsyncs) > per_batch
    monkeypatch.undo()
    assert not exists(journal(path))
    assert len(load_json(path)) == 51


@pytest.mark.anyio
async def test_the_journal_is_folded_into_the_file_in_the_references_format(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flowweaver._store._json_format, "COMPACT_MIN_BYTES", 512)
    store = JSONStateStore(path)
    session = await store._open_session()
    sizes = []
    for n in range(30):
        names = [f"t{n}-{i}" for i in range(5)]
        await session.save("wf", [record(t, session.encode(t, {"pad": "x" * 40})) for t in names])
        sizes.append(size(journal(path)))
        # the journal never grows past the file (or the floor) before it is folded in
        assert sizes[-1] <= max(size(path), 512) + 2048
    assert 0 in sizes  # compaction happened during the run, not only at the end
    # mid-run, the file is always complete JSON in the reference's format
    mid = load_json(path)
    assert all(set(v) >= REFERENCE_KEYS for v in mid.values())
    await session.aclose()
    assert not exists(journal(path))
    data = load_json(path)
    assert len(data) == 150
    assert all(v["status"] == "COMPLETED" for v in data.values())
    assert all(v["result"] == {"pad": "x" * 40} for v in data.values())


@pytest.mark.anyio
async def test_a_journal_left_by_a_crashed_run_is_folded_in_by_the_next_run(path: Path) -> None:
    crashed = await JSONStateStore(path)._open_session()
    await crashed.save("wf", [record("a", crashed.encode("a", 1))])  # never closed
    assert exists(journal(path))
    session = await JSONStateStore(path)._open_session()
    assert set(await session.load("wf", ["a"])) == {"a"}
    await session.aclose()  # saved nothing itself, but folds what it found
    assert not exists(journal(path))
    assert load_json(path)["a"]["result"] == 1


@pytest.mark.anyio
async def test_a_torn_last_journal_line_is_dropped(path: Path) -> None:
    store = JSONStateStore(path)
    session = await store._open_session()
    await session.save("wf", [record("a", session.encode("a", 1))])
    await session.save("wf", [record("b", session.encode("b", 2))])
    # a crash mid-append: half a line, no newline (the save never returned)
    write(journal(path), snapshot(journal(path)) + b'{"put":{"c":{"status":"COMPL')
    fresh = JSONStateStore(path)
    assert await fresh.list_all_tasks() == ["a", "b"]
    assert snapshot(journal(path)).endswith(b"\n")  # cut back to the last full line
    await fresh.save_task_state("d", TaskStatus.COMPLETED, 4, None, NOW)
    assert list(load_json(path)) == ["a", "b", "d"]
    await session.aclose()


@pytest.mark.anyio
async def test_an_empty_journal_left_by_a_crash_is_removed_at_the_next_close(path: Path) -> None:
    await JSONStateStore(path).save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW)
    write(journal(path), b"")  # created, then killed before the first byte
    session = await JSONStateStore(path)._open_session()
    assert set(await session.load("wf", ["a"])) == {"a"}
    await session.aclose()
    assert not exists(journal(path))


@pytest.mark.anyio
async def test_a_journal_replayed_on_the_file_it_was_folded_into_changes_nothing(
    path: Path,
) -> None:
    store = JSONStateStore(path)
    session = await store._open_session()
    await session.save("wf", [record("a", session.encode("a", 1))])
    await session.save("wf", [record("b", session.encode("b", 2))])
    kept = snapshot(journal(path))
    await session.aclose()
    # a crash after the atomic replace but before the journal was removed
    write(journal(path), kept)
    fresh = JSONStateStore(path)
    assert [(r.task_name, r.result) for r in await fresh.list_records()] == [("a", 1), ("b", 2)]


@pytest.mark.anyio
async def test_a_damaged_journal_line_is_an_error_and_nothing_is_overwritten(path: Path) -> None:
    store = JSONStateStore(path)
    await store.save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW)
    write(journal(path), b"not json\n")
    before, before_journal = snapshot(path), snapshot(journal(path))
    with pytest.raises(StateStoreError, match=r"journal.*damaged at line 1"):
        await JSONStateStore(path).list_all_tasks()
    with pytest.raises(StateStoreError, match="damaged"):
        await store.save_task_state("b", TaskStatus.COMPLETED, 2, None, NOW)
    assert (snapshot(path), snapshot(journal(path))) == (before, before_journal)


@pytest.mark.anyio
async def test_two_store_objects_on_one_file_merge_each_others_writes(path: Path) -> None:
    first, second = JSONStateStore(path), JSONStateStore(path)
    s1 = await first._open_session()
    s2 = await second._open_session()
    await s1.save("wf", [record("a", s1.encode("a", 1))])
    await s2.save("wf", [record("b", s2.encode("b", 2))])
    await first.save_task_state("c", TaskStatus.COMPLETED, 3, None, NOW)  # a full rewrite
    await s2.save("wf", [record("d", s2.encode("d", 4))])
    await s1.aclose()
    await s2.aclose()
    assert sorted(load_json(path)) == ["a", "b", "c", "d"]
    assert sorted(await first.list_all_tasks()) == ["a", "b", "c", "d"]


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": {"status": "COMPLETED", "result": 1, "err', "not valid JSON"),
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n", "not valid JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"a": 1}', "record of task 'a' is a int"),
        (b'{"a": {"status": "DONE", "timestamp": "2024-01-15T10:30:00"}}', "no valid status"),
        (b'{"a": {"status": "COMPLETED", "timestamp": "yesterday"}}', "timestamp"),
        (b'{"a": {"status": "COMPLETED"}}', "timestamp"),
    ],
)
async def test_a_corrupt_or_foreign_file_is_an_error_and_is_left_as_it_is(
    path: Path, content: bytes, message: str
) -> None:
    write(path, content)
    store = JSONStateStore(path)
    with pytest.raises(StateStoreError, match=message) as info:
        await store.list_all_tasks()
    assert str(path) in str(info.value)
    with pytest.raises(StateStoreError, match=message):
        await store.save_task_state("b", TaskStatus.COMPLETED, 1, None, NOW)
    with pytest.raises(StateStoreError, match=message):
        await store.clear_all_states()
    session = await store._open_session()
    with pytest.raises(StateStoreError, match=message):
        await session.load("wf", ["a"])
    with pytest.raises(StateStoreError, match=message):
        await session.save("wf", [record("b", 1)])
    await session.aclose()  # nothing was saved: closing does not raise it all again
    assert snapshot(path) == content
    assert not exists(journal(path))


@pytest.mark.anyio
async def test_a_store_in_a_missing_folder_is_an_error_and_no_folder_is_made(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing" / "state.json"
    store = JSONStateStore(path)
    with pytest.raises(StateStoreError, match=r"folder .*missing.* does not exist"):
        await store.save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW)
    session = await store._open_session()
    with pytest.raises(StateStoreError, match="does not exist"):
        await session.load("wf", ["a"])
    assert not exists(path.parent)


@pytest.mark.anyio
async def test_a_folder_as_the_store_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="is a folder"):
        await JSONStateStore(tmp_path).list_all_tasks()


@pytest.mark.parametrize("bad", ["", None, 3])
def test_a_store_path_that_is_not_a_path_is_refused(bad: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="store_path"):
        JSONStateStore(bad)


@pytest.mark.anyio
async def test_bad_arguments_to_the_five_methods_are_refused(path: Path) -> None:
    store = JSONStateStore(path)
    with pytest.raises(WorkflowValidationError, match="status"):
        await store.save_task_state("a", "DONE", 1, None, NOW)
    with pytest.raises(WorkflowValidationError, match="task name"):
        await store.save_task_state("", TaskStatus.COMPLETED, 1, None, NOW)
    with pytest.raises(WorkflowValidationError, match="workflow"):
        await store.list_all_tasks(workflow="")
    assert not exists(path)
