"""``durability=``: what each store setting promises, and when a dependent starts.

The crash tests (``tests/test_crash_resume.py``, ``tests/_async/test_store_crash.py``) kill
runs and writers under every setting; these check each promise in one process: under
``"normal"`` and ``"fsync"`` a dependent starts only once its upstream's record is on
disk, under ``"ordered"`` it may start before, every record lands after its upstream's,
and everything is on disk when ``execute`` returns.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import flowweaver.aio
from flowweaver import (
    BaseStateStore,
    JSONStateStore,
    SQLiteStateStore,
    Task,
    TaskStatus,
    Workflow,
    WorkflowValidationError,
)
from tests.run_helpers import FORM_IDS, Runner, form_named
from tests.store_helpers import completed

STORES = {
    "json": (JSONStateStore, flowweaver.aio.JSONStateStore, "state.json"),
    "sqlite": (SQLiteStateStore, flowweaver.aio.SQLiteStateStore, "state.db"),
}


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("bad", ["NORMAL", "safe", "", None, 1, b"fsync"])
def test_an_unknown_setting_is_refused_naming_it_and_the_settings(
    tmp_path: Path, kind: str, bad: Any
) -> None:
    blocking, awaitable, name = STORES[kind]
    for cls in (blocking, awaitable):
        with pytest.raises(WorkflowValidationError, match=r"durability must be one of") as info:
            cls(tmp_path / name, durability=bad)
        assert repr(bad) in str(info.value)
        assert "'ordered'" in str(info.value)


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("setting", ["normal", "fsync", "ordered"])
def test_the_setting_is_kept_and_passed_to_the_blocking_twin_a_run_writes_through(
    tmp_path: Path, kind: str, setting: str
) -> None:
    blocking, awaitable, name = STORES[kind]
    assert blocking(tmp_path / name).durability == "normal"
    store = awaitable(tmp_path / name, durability=setting)
    assert store.durability == setting
    assert store._run_form().durability == setting


@pytest.mark.parametrize(("setting", "synchronous"), [("normal", 1), ("fsync", 2), ("ordered", 1)])
def test_sqlite_commits_are_flushed_to_disk_only_under_fsync(
    tmp_path: Path, setting: str, synchronous: int
) -> None:
    session = SQLiteStateStore(tmp_path / "state.db", durability=setting)._open_session()
    try:
        assert session._db.execute("PRAGMA synchronous", ())[0][0] == synchronous
    finally:
        session.close()


def _on_disk(store: Path, name: str) -> bool:
    return name in completed(store)


def _watching_workflow(store: Path, seen: dict[str, bool]) -> Workflow:
    """a -> b: b records whether a's record was on disk when b started."""
    wf = Workflow("durable")
    wf.add_task(Task("a", lambda: 1))

    def b(a: int) -> int:
        seen["a"] = _on_disk(store, "a")
        return a + 1

    wf.add_task(Task("b", b), depends_on=["a"])
    return wf


@pytest.mark.parametrize("form", FORM_IDS)
@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("setting", ["normal", "fsync", "ordered"])
def test_a_dependent_waits_for_its_upstreams_commit_unless_ordered_and_all_is_committed(
    tmp_path: Path, form: str, kind: str, setting: str
) -> None:
    blocking, _, name = STORES[kind]
    path = tmp_path / name
    seen: dict[str, bool] = {}
    backend = "trio" if FORM_IDS.index(form) % 2 else "asyncio"
    # A long interval: an ordered run commits only at its end (or once 1,024 wait).
    Runner(blocking(path, durability=setting), *form_named(form), backend).run(
        _watching_workflow(path, seen), commit_interval=30
    )
    if setting != "ordered":
        assert seen == {"a": True}
    elif "sequential" in form:
        # Nothing else to do while b runs: an ordered run has not committed a yet. (A
        # threaded run may commit it while b runs, as a slot is free: either is right.)
        assert seen == {"a": False}
    # Whatever the setting, execute returns once every record is committed.
    assert completed(path) == {"a", "b"}


class _Forgetful(BaseStateStore):
    """Saves nothing it can give back: these tests look at the order of saves only."""

    def load_task_state(self, task_name: str) -> Any:
        return None

    def delete_task_state(self, task_name: str) -> None:
        return None

    def list_all_tasks(self) -> list[str]:
        return []

    def clear_all_states(self) -> None:
        return None


class _Stalled(_Forgetful):
    """A store of the user's own that declares ``durability = "ordered"`` and cannot
    commit ``a`` until ``b`` has run: only a run that starts ``b`` before ``a``'s record
    is committed can end."""

    durability = "ordered"

    def __init__(self) -> None:
        self.b_ran = threading.Event()
        self.saved: list[str] = []

    def save_task_state(self, task_name: str, *rest: Any, **kw: Any) -> None:
        if task_name == "a" and not self.b_ran.wait(10):
            raise RuntimeError("b never started while a's record was being saved")
        self.saved.append(task_name)


@pytest.mark.parametrize("form", FORM_IDS)
def test_an_ordered_dependent_starts_while_its_upstreams_record_is_not_yet_committed(
    form: str,
) -> None:
    store = _Stalled()
    wf = Workflow("stalled")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda a: store.b_ran.set()), depends_on=["a"])
    backend = "trio" if FORM_IDS.index(form) % 2 else "asyncio"
    Runner(store, *form_named(form), backend).run(wf, commit_interval=0.001)
    assert store.saved == ["a", "b"]


class _Recording(_Forgetful):
    """A store of the user's own that declares ``durability = "ordered"`` and records
    the order its records were saved in (each batch is saved record by record)."""

    durability = "ordered"

    def __init__(self) -> None:
        self.order: list[str] = []
        self.lock = threading.Lock()

    def save_task_state(self, task_name: str, status: Any, *rest: Any, **kw: Any) -> None:
        if status == TaskStatus.COMPLETED:
            with self.lock:
                self.order.append(task_name)


@pytest.mark.parametrize("form", FORM_IDS)
@pytest.mark.parametrize("seed", range(3))
def test_an_ordered_run_saves_every_record_after_its_upstream_tasks_records(
    form: str, seed: int
) -> None:
    rng = random.Random(seed)
    wf = Workflow("ordered")
    deps: dict[str, list[str]] = {}
    previous: list[str] = []
    for layer in range(6):
        current = [f"t{layer}_{k}" for k in range(8)]
        for name in current:
            deps[name] = rng.sample(previous, min(2, len(previous)))
            # A random, tiny pause: completions interleave differently on every seed.
            pause = rng.random() / 500

            def run(_pause: float = pause, **upstream: Any) -> int:
                threading.Event().wait(_pause)
                return len(upstream)

            wf.add_task(Task(name, run), depends_on=deps[name])
        previous = current
    store = _Recording()
    backend = "trio" if seed % 2 else "asyncio"
    Runner(store, *form_named(form), backend).run(wf, commit_interval=0.001)
    assert sorted(store.order) == sorted(deps)
    position = {name: i for i, name in enumerate(store.order)}
    late = [(n, up) for n in deps for up in deps[n] if position[up] > position[n]]
    assert not late, f"records saved before their upstream's: {late}"


def test_an_ordered_store_keeps_a_resume_exact(tmp_path: Path) -> None:
    """What an ordered run saved is restored as any run's: nothing runs twice."""
    path = tmp_path / "state.db"
    calls: list[str] = []
    wf = Workflow("resumed")
    wf.add_task(Task("a", lambda: calls.append("a") or 1))
    wf.add_task(Task("b", lambda a: calls.append("b") or a + 1), depends_on=["a"])
    runner = Runner(SQLiteStateStore(path, durability="ordered"), *form_named("sequential"), "trio")
    runner.run(wf)
    runner.run(wf)
    assert calls == ["a", "b"]
    with closing(sqlite3.connect(path)) as db:  # closing(): `with db` only commits
        rows = db.execute("SELECT task_name FROM tasks WHERE status = 'COMPLETED'").fetchall()
    assert sorted(r[0] for r in rows) == ["a", "b"]
