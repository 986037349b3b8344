"""A store file deleted or replaced while a run uses it fails the run with StateStoreError
(issue 9, item 7); before, ``execute`` returned normally and the records were lost.

A task in the middle of the run deletes the file, or puts another file in its place;
the next commit notices and the run fails, naming the path and what happened.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    JSONStateStore,
    SequentialExecutor,
    SQLiteStateStore,
    StateStoreError,
    Task,
    ThreadedExecutor,
    Workflow,
)

TASKS = 40


def chain(act: Any) -> Workflow:
    """``TASKS`` tasks in a chain (each waits for the one before to be durable); the
    middle one calls ``act``."""
    wf = Workflow("vanishing")
    previous: list[str] = []
    for k in range(TASKS):
        name = f"t{k:02d}"
        func = act if k == TASKS // 2 else (lambda **_: 1)
        wf.add_task(Task(name, func), depends_on=previous)
        previous = [name]
    return wf


def seeded(kind: str, folder: Path) -> tuple[Any, Path]:
    """A store that already has a file (another workflow's record in it)."""
    if kind == "json":
        path = folder / "s.json"
        store: Any = JSONStateStore(path)
    else:
        path = folder / "s.db"
        store = SQLiteStateStore(path)
    other = Workflow("other")
    other.add_task(Task("seed", lambda: 0))
    SequentialExecutor(store).execute(other)
    return store, path


def another_file(kind: str, path: Path) -> Path:
    """A valid store file of the same kind, not the one the run opened."""
    twin = path.with_name("twin" + path.suffix)
    if kind == "json":
        twin.write_text("{}\n")
    else:
        sqlite3.connect(twin).close()
    return twin


@pytest.mark.parametrize("executor", [SequentialExecutor, ThreadedExecutor])
@pytest.mark.parametrize("how", ["deleted", "replaced"])
@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_a_store_deleted_or_replaced_mid_run_fails_the_run(
    tmp_path: Path, kind: str, how: str, executor: Any
) -> None:
    store, path = seeded(kind, tmp_path)
    twin = another_file(kind, path) if how == "replaced" else None

    def act(**_: Any) -> int:
        if twin is None:
            os.remove(path)
        else:
            os.replace(twin, path)
        return 1

    with pytest.raises(StateStoreError) as info:
        executor(state_store=store, commit_interval=0.01).execute(chain(act))
    message = str(info.value)
    assert repr(str(path)) in message
    assert ("was deleted" if how == "deleted" else "was replaced by another file") in message
