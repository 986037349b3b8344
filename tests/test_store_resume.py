"""The stores under the real engine: every executor, both forms, asyncio and trio.

Run 1 saves, run 2 (a new Workflow object of the same name) restores instead of running
again. These prove the contract between the stores and the engine end to end.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import flowweaver.aio
from flowweaver import (
    AsyncExecutor,
    JSONStateStore,
    SequentialExecutor,
    SQLiteStateStore,
    StateStoreError,
    Task,
    TaskStatus,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
)
from tests.test_store_sessions import AsyncDictStore, DictStore

STORES: list[tuple[str, Callable[[Path], Any]]] = [
    ("json", lambda p: JSONStateStore(str(p / "state.json"))),
    ("sqlite", lambda p: SQLiteStateStore(str(p / "state.db"))),
    ("aio-json", lambda p: flowweaver.aio.JSONStateStore(p / "state.json")),
    ("aio-sqlite", lambda p: flowweaver.aio.SQLiteStateStore(p / "state.db")),
    ("user-dict", lambda p: DictStore()),
    ("user-async-dict", lambda p: AsyncDictStore()),
]
BLOCKING_EXECUTORS = [SequentialExecutor, ThreadedExecutor]
AWAITABLE_EXECUTORS = [
    flowweaver.aio.SequentialExecutor,
    flowweaver.aio.ThreadedExecutor,
    AsyncExecutor,
]


@pytest.fixture(params=STORES, ids=[name for name, _ in STORES])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return request.param[1](tmp_path)


def pipeline(calls: list[str], fail: bool = False) -> Workflow:
    def fetch() -> dict[str, Any]:
        calls.append("fetch")
        return {"users": ["alice", "bob"]}

    def count(fetch: dict[str, Any]) -> int:
        calls.append("count")
        return len(fetch["users"])

    def report(count: int) -> str:
        calls.append("report")
        if fail:
            raise ValueError("printer on fire")
        return f"{count} users"

    wf = Workflow("users")
    wf.add_task(Task("fetch", fetch))
    wf.add_task(Task("count", count), depends_on=["fetch"])
    wf.add_task(Task("report", report), depends_on=["count"])
    return wf


def results(wf: Workflow) -> dict[str, Any]:
    return {t.name: (t.status, t.result) for t in wf.tasks}


EXPECTED = {
    "fetch": (TaskStatus.COMPLETED, {"users": ["alice", "bob"]}),
    "count": (TaskStatus.COMPLETED, 2),
    "report": (TaskStatus.COMPLETED, "2 users"),
}


@pytest.mark.parametrize("executor_cls", BLOCKING_EXECUTORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_blocking_run_resumes_from_every_store(
    store: Any, executor_cls: type, backend: str
) -> None:
    calls: list[str] = []
    wf = pipeline(calls, fail=True)
    with pytest.raises(WorkflowExecutionError):
        executor_cls(state_store=store, backend=backend).execute(wf)
    assert calls == ["fetch", "count", "report"]
    calls.clear()
    wf = pipeline(calls)
    executor_cls(state_store=store, backend=backend).execute(wf)
    assert calls == ["report"]  # fetch and count were restored
    assert results(wf) == EXPECTED
    calls.clear()
    wf = pipeline(calls)
    executor_cls(state_store=store, backend=backend).execute(wf)
    assert calls == []
    assert results(wf) == EXPECTED


@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", AWAITABLE_EXECUTORS, ids=lambda c: c.__name__)
async def test_an_awaited_run_resumes_from_every_store(store: Any, executor_cls: type) -> None:
    calls: list[str] = []
    await executor_cls(state_store=store).execute(pipeline(calls))
    assert calls == ["fetch", "count", "report"]
    calls.clear()
    wf = pipeline(calls)
    await executor_cls(state_store=store).execute(wf)
    assert calls == []
    assert results(wf) == EXPECTED


def test_the_references_json_example_leaves_the_references_format(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = JSONStateStore(str(path))
    workflow = Workflow("resumable_workflow")
    workflow.add_task(Task("expensive", lambda: {"data": list(range(1000))}))
    SequentialExecutor(state_store=store).execute(workflow)
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    assert set(data) == {"expensive"}
    saved = data["expensive"]
    assert saved["status"] == "COMPLETED"
    assert saved["result"] == {"data": list(range(1000))}
    assert saved["error"] is None
    assert isinstance(saved["timestamp"], str)
    assert not path.with_name("state.json.journal").exists()

    workflow2 = Workflow("resumable_workflow")
    workflow2.add_task(Task("expensive", lambda: {"data": []}))
    SequentialExecutor(state_store=store).execute(workflow2)
    expensive = workflow2.get_task("expensive")
    assert expensive is not None
    assert expensive.result == {"data": list(range(1000))}  # restored, not run


def test_the_references_sqlite_example_and_query(tmp_path: Path) -> None:
    db = str(tmp_path / "state.db")
    workflow = Workflow("production_workflow")
    for i in range(100):
        workflow.add_task(Task(f"task_{i}", lambda i=i: {"result": i * 2}))
    store = SQLiteStateStore(db, enable_gc=True, gc_days=30)
    ThreadedExecutor(max_workers=4, state_store=store).execute(workflow)
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT task_name, timestamp FROM tasks WHERE status = 'COMPLETED'"
    ).fetchall()
    conn.close()
    assert sorted(name for name, _ in rows) == sorted(f"task_{i}" for i in range(100))


def test_two_workflows_with_one_task_name_cannot_share_a_json_file(tmp_path: Path) -> None:
    store = JSONStateStore(tmp_path / "state.json")
    first = Workflow("orders")
    first.add_task(Task("fetch", lambda: 1))
    SequentialExecutor(state_store=store).execute(first)
    ran: list[int] = []
    second = Workflow("users")
    second.add_task(Task("fetch", lambda: ran.append(1)))
    with pytest.raises(StateStoreError, match=r"'fetch'.*'orders'.*'users'"):
        SequentialExecutor(state_store=store).execute(second)
    assert ran == []  # nothing ran


def test_two_workflows_with_one_task_name_share_an_sqlite_database(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")
    for name, value in (("orders", 1), ("users", 2)):
        wf = Workflow(name)
        wf.add_task(Task("fetch", lambda value=value: value))
        SequentialExecutor(state_store=store).execute(wf)
    for name, value in (("orders", 1), ("users", 2)):
        wf = Workflow(name)
        wf.add_task(Task("fetch", lambda: -1))
        SequentialExecutor(state_store=store).execute(wf)
        fetch = wf.get_task("fetch")
        assert fetch is not None
        assert fetch.result == value


def test_a_result_the_store_cannot_hold_fails_its_task_naming_it(tmp_path: Path) -> None:
    store = JSONStateStore(tmp_path / "state.json")
    wf = Workflow("w")
    wf.add_task(Task("pairs", lambda: {(1, 2)}))
    with pytest.raises(WorkflowExecutionError, match=r"pairs.*set") as info:
        SequentialExecutor(state_store=store).execute(wf)
    assert info.value.failed_task == "pairs"
