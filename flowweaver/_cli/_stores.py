"""Which state store a command uses, and opening it with a clear error.

The file's suffix picks the kind: ``.db`` (or ``.sqlite``, ``.sqlite3``) an SQLite store,
``.json`` a JSON store. Without ``--store``, ``run`` uses ``.flowweaver/state.db`` under
the current folder, so running the same command twice resumes; SQLite keys records by
workflow, so every workflow run from that folder shares the one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .._store._api import RunRecord, StateStoreError, TaskRecord
from .._sync._json_store import JSONStateStore
from .._sync._sqlite_store import SQLiteStateStore
from ._errors import BadInput

DEFAULT_STORE = Path(".flowweaver") / "state.db"

_KINDS: dict[str, type[SQLiteStateStore] | type[JSONStateStore]] = {
    ".db": SQLiteStateStore,
    ".sqlite": SQLiteStateStore,
    ".sqlite3": SQLiteStateStore,
    ".json": JSONStateStore,
}


class CliStore(Protocol):
    """What the commands use of a built-in store (both have these methods)."""

    def list_records(self, workflow: str | None = None) -> list[TaskRecord]: ...

    def delete_task_state(self, task_name: str, workflow: str | None = None) -> None: ...

    def clear_all_states(self, workflow: str | None = None) -> None: ...

    def runs(self, workflow: str | None = None, limit: int | None = None) -> list[RunRecord]: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...


def _kind(path: Path) -> type[SQLiteStateStore] | type[JSONStateStore]:
    kind = _KINDS.get(path.suffix.lower())
    if kind is None:
        raise BadInput(
            f"cannot tell what kind of state store {path} is: its name must end in .db "
            "(SQLite) or .json (JSON)"
        )
    return kind


def open_store(path: Path, *, create: bool) -> CliStore:
    """Open the store at ``path``.

    :param create: make a new store if there is none (``run``); ``status`` and
        ``reset`` only look at a store that exists.
    :raises BadInput: for a suffix that names no kind of store, a missing store (when not
        ``create``), a missing folder, or a file that is not a FlowWeaver store.
    """
    kind = _kind(path)
    if path.is_dir():
        raise BadInput(f"{path} is a folder, not a state store file")
    if path.exists() and not path.is_file():
        # a FIFO, a socket or a device: reading it could wait forever
        raise BadInput(
            f"{path} is not a regular file (a FIFO, a socket or a device), not a state store file"
        )
    if not path.exists():
        if not create:
            raise BadInput(
                f"no state store at {path}; it is made by the first `flowweaver run` "
                "(the default is .flowweaver/state.db in the folder you ran it from)"
            )
        if not path.parent.is_dir():
            raise BadInput(
                f"cannot make the state store {path}: the folder {path.parent} does not exist"
            )
    try:
        store: CliStore = kind(str(path))
    except StateStoreError as exc:
        raise BadInput(str(exc)) from exc
    return store


def run_store(store: str | None) -> tuple[CliStore, Path]:
    """The store for ``run``: ``--store PATH``, or the default one (its folder is made)."""
    if store is not None:
        path = Path(store)
        return open_store(path, create=True), path
    folder = DEFAULT_STORE.parent
    if not folder.is_dir():
        folder.mkdir()
        # Saved state belongs to this machine, not to the project's history (pytest and
        # mypy do the same with their cache folders).
        (folder / ".gitignore").write_text("# made by flowweaver run\n*\n", encoding="utf-8")
    return open_store(DEFAULT_STORE, create=True), DEFAULT_STORE


def store_if_any(store: str | None) -> tuple[CliStore | None, Path]:
    """The store ``plan`` reads, ``STORE`` or the default one: None when there is none
    yet (a plan never makes one; ``run`` makes it, and its folder for the default one).

    :raises BadInput: as :func:`open_store` does, and for a missing ``STORE`` that ``run``
        could not make either (an unknown suffix, a missing folder).
    """
    path = Path(store) if store is not None else DEFAULT_STORE
    if path.exists():
        return open_store(path, create=False), path
    _kind(path)
    if store is not None and not path.parent.is_dir():
        raise BadInput(f"no state store at {path}: the folder {path.parent} does not exist")
    return None, path


def existing_store(store: str | None) -> tuple[CliStore, Path]:
    """The store ``status`` and ``reset`` look at: ``STORE``, or the default one."""
    path = Path(store) if store is not None else DEFAULT_STORE
    return open_store(path, create=False), path


def read_records(store: CliStore, path: Path, workflow: str | None) -> list[TaskRecord]:
    """The saved records (of ``workflow``), oldest first.

    :raises BadInput: when the file turns out not to be a FlowWeaver store.
    """
    try:
        records = store.list_records(workflow=workflow)
    except StateStoreError as exc:
        raise BadInput(str(exc)) from exc
    return sorted(records, key=lambda r: (r.timestamp, r.task_name))


def workflows_of(records: Sequence[TaskRecord]) -> list[str]:
    """The workflow names of ``records`` in first-seen order (unknown ones as "?")."""
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(r.workflow or "?", None)
    return list(seen)
