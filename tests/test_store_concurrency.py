"""Several writers on one store (threads, tasks, processes) lose no record."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

import flowweaver.aio
from flowweaver import JSONStateStore, SQLiteStateStore, TaskStatus
from flowweaver._store._sessions import open_session
from tests.store_helpers import NOW, record, run_children

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

BLOCKING = [JSONStateStore, SQLiteStateStore]
ASYNC = [flowweaver.aio.JSONStateStore, flowweaver.aio.SQLiteStateStore]


def store_path(tmp_path: Path, store_cls: type) -> Path:
    return tmp_path / ("state.json" if "JSON" in store_cls.__name__ else "state.db")


def check_all(path: Path, store: Any, expected: set[str]) -> None:
    names = set(store.list_all_tasks())
    assert expected <= names, f"lost: {sorted(expected - names)[:10]}"
    if path.suffix == ".json":
        with open(path, encoding="utf-8") as f:
            assert expected <= set(json.load(f))  # the file alone, after every close


@pytest.mark.parametrize("store_cls", BLOCKING)
@pytest.mark.parametrize("shared", [True, False], ids=["one-object", "one-object-each"])
def test_threads_saving_at_once_lose_nothing(tmp_path: Path, store_cls: type, shared: bool) -> None:
    path = store_path(tmp_path, store_cls)
    common = store_cls(path)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            store = common if shared else store_cls(path)
            session = store._open_session()
            try:
                for n in range(5):
                    names = [f"s{w}-{n}-{i}" for i in range(10)]
                    session.save(f"wf{w}", [record(t, session.encode(t, n)) for t in names])
            finally:
                session.close()
            for n in range(5):
                store.save_task_state(f"m{w}-{n}", TaskStatus.COMPLETED, n, None, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    expected = {f"s{w}-{n}-{i}" for w in range(4) for n in range(5) for i in range(10)}
    expected |= {f"m{w}-{n}" for w in range(4) for n in range(5)}
    check_all(path, store_cls(path), expected)


@pytest.mark.anyio
@pytest.mark.parametrize("store_cls", ASYNC)
async def test_tasks_saving_at_once_lose_nothing(tmp_path: Path, store_cls: type) -> None:
    path = store_path(tmp_path, store_cls)
    store = store_cls(path)

    async def writer(w: int) -> None:
        session = await open_session(store if w % 2 else store_cls(path))
        try:
            for n in range(5):
                names = [f"s{w}-{n}-{i}" for i in range(10)]
                await session.save(f"wf{w}", [record(t, session.encode(t, n)) for t in names])
                await store.save_task_state(f"m{w}-{n}", TaskStatus.COMPLETED, n, None, NOW)
        finally:
            await session.aclose()

    async with anyio.create_task_group() as tg:
        for w in range(4):
            tg.start_soon(writer, w)
    expected = {f"s{w}-{n}-{i}" for w in range(4) for n in range(5) for i in range(10)}
    expected |= {f"m{w}-{n}" for w in range(4) for n in range(5)}
    blocking = JSONStateStore(path) if path.suffix == ".json" else SQLiteStateStore(path)
    check_all(path, blocking, expected)


def form(store_cls: type) -> str:
    return store_cls.__module__.split(".")[1] + "." + store_cls.__name__


@pytest.mark.parametrize("store_cls", BLOCKING + ASYNC, ids=form)
def test_processes_saving_at_once_lose_nothing(
    tmp_path: Path, store_cls: type, anyio_backend: str
) -> None:
    path = store_path(tmp_path, store_cls)
    workflows = ["w0", "w1", "w2"]
    run_children(store_cls, path, anyio_backend, workflows, count=6)
    expected = {f"{w}-{n}-{i}" for w in workflows for n in range(6) for i in range(10)}
    blocking = JSONStateStore(path) if path.suffix == ".json" else SQLiteStateStore(path)
    check_all(path, blocking, expected)
    if path.suffix == ".json":
        assert not path.with_name(path.name + ".journal").exists()
