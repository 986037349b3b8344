"""Running and planning a workflow in every form, for the engine tests of resume.

A :class:`Runner` is one executor class (blocking, or awaited on a loop of the test's own)
on one backend and one store. ``run`` and ``plan`` take the run options (``params``,
``targets``, ``from_tasks``) as ``execute`` and ``plan`` do, and any other keyword goes to
the executor (``fresh=...``, ``observer=...``, ``fingerprint_code=...``). Nothing here
asserts; the tests do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio

import flowweaver.aio
from flowweaver import (
    JSONStateStore,
    Plan,
    ProcessExecutor,
    SequentialExecutor,
    SQLiteStateStore,
    ThreadedExecutor,
    Workflow,
)

# Blocking executors and awaited ones, each on both backends.
FORMS = [
    ("sequential", SequentialExecutor, False),
    ("threaded", ThreadedExecutor, False),
    ("aio-sequential", flowweaver.aio.SequentialExecutor, True),
    ("aio-threaded", flowweaver.aio.ThreadedExecutor, True),
    ("aio-async", flowweaver.aio.AsyncExecutor, True),
]
FORM_IDS = [name for name, _, _ in FORMS]
# Sync tasks in worker processes: not among FORMS, whose tests share memory with their
# tasks (counters, lists); the process tests use them (tests/test_process_engine.py).
PROCESS_FORMS = [
    ("process", ProcessExecutor, False),
    ("aio-process", flowweaver.aio.ProcessExecutor, True),
]

# The two built-in stores, in their blocking form (a run reaches either form the same way).
BUILT_IN: list[tuple[str, Callable[[Path], Any]]] = [
    ("json", lambda p: JSONStateStore(p / "state.json")),
    ("sqlite", lambda p: SQLiteStateStore(p / "state.db")),
]
BUILT_IN_KINDS = [name for name, _ in BUILT_IN]


def make_store(kind: str, directory: Path) -> Any:
    """A built-in store in ``directory`` (``"json"``, ``"sqlite"``), or None (``"none"``)."""
    return None if kind == "none" else dict(BUILT_IN)[kind](directory)


def pairwise(stores: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(form, store, backend)``: every form with every store, and with both backends
    when there are two stores or more; every store with both backends. Half the full
    product, which costs minutes on a small machine and finds nothing more: the backend
    is chosen apart from the store (a run reaches every store through its blocking twin)."""
    backends = ("asyncio", "trio")
    return [
        (form, store, backends[(i + j) % 2])
        for i, form in enumerate(FORM_IDS)
        for j, store in enumerate(stores)
    ]


def form_named(name: str) -> tuple[type, bool]:
    """The executor class and whether it is awaited, of the form called ``name``."""
    _, cls, awaited = next(f for f in FORMS + PROCESS_FORMS if f[0] == name)
    return cls, awaited


class Runner:
    """Runs and plans workflows with one executor form, backend and store."""

    def __init__(self, store: Any, executor_cls: type, awaited: bool, backend: str) -> None:
        self.store = store
        self.executor_cls = executor_cls
        self.awaited = awaited
        self.backend = backend

    def executor(self, **settings: Any) -> Any:
        if self.store is not None:
            settings["state_store"] = self.store
        if not self.awaited:
            settings["backend"] = self.backend
        return self.executor_cls(**settings)

    def run(self, wf: Workflow, **options: Any) -> None:
        """``execute(wf, ...)``: blocking, or awaited under ``anyio.run``."""
        self._call("execute", wf, **options)

    def plan(self, wf: Workflow, **options: Any) -> Plan:
        """``plan(wf, ...)``: blocking, or awaited under ``anyio.run``."""
        plan: Plan = self._call("plan", wf, **options)
        return plan

    def _call(
        self,
        method: str,
        wf: Workflow,
        *,
        params: Mapping[Any, Any] | None = None,
        targets: Iterable[str] | None = None,
        from_tasks: Iterable[str] | None = None,
        **settings: Any,
    ) -> Any:
        bound = getattr(self.executor(**settings), method)
        call = partial(bound, wf, params=params, targets=targets, from_tasks=from_tasks)
        if self.awaited:
            return anyio.run(call, backend=self.backend)
        return call()


def age_records(store: Any, workflow: str, names: Iterable[str], by: timedelta) -> None:
    """Make the saved records of ``names`` look ``by`` older, through the store's own
    session (a record keeps its token and inputs: only its timestamp moves)."""
    session = store._open_session()
    try:
        names = list(names)
        found = session.load(workflow, names)
        aged = [
            replace(
                rec,
                result=session.encode(name, rec.result),
                timestamp=rec.timestamp - by,
            )
            for name, rec in found.items()
        ]
        session.save(workflow, aged)
    finally:
        session.close()


def store_files(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its bytes (a store, its journal, its sidecars)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def stored_state(directory: Path) -> dict[str, bytes]:
    """The store's files, without the lease and lock files that only coordinate runs (a
    run refused after taking the lease rewrites its holder and time), and SQLite's
    shared-memory index (``-shm``), which every reader of a database in WAL mode updates
    while another connection (a store keeps one between runs) holds it open."""
    return {
        name: data
        for name, data in store_files(directory).items()
        if ".lease-" not in name and not name.endswith((".lock", "-shm"))
    }
