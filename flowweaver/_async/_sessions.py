"""``open_session``: how a run reaches its state store, whatever kind of store it is.

Written by hand (no blocking twin): the engine always runs on an event loop.

* A built-in store, async or blocking: the blocking form of the store, its session run
  in a worker thread. A run writes in batches, and a batch is one transaction or one
  journal append: done in one thread call it costs one round trip, where the async form
  on aiosqlite or aiofiles costs one per statement (begin, write, commit, fsync...), which
  measured 5 to 10 times slower per batch. Under trio those libraries cannot work at all.
  The async forms serve the stores' own awaitable methods (``await store.load_task_state``).
* A user's store with the five methods: an adapter that calls them, in a worker thread
  for a :class:`~flowweaver.BaseStateStore`, awaited for a
  :class:`~flowweaver.aio.BaseStateStore`.

Worker-thread sessions use a limiter of their own with one token: the session's calls
never overlap and never wait behind the process-wide thread pool. A call that has
started in a thread runs to its end even if the run is cancelled (it is not abandoned),
so a batch is either durable or not written, never half-written by a thread left behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread

from .._errors import WorkflowValidationError
from .._store_api import AsyncStoreSession, TaskRecord
from .._sync._json_store import JSONStateStore
from .._sync._sqlite_store import SQLiteStateStore
from .._sync._store_base import BaseStateStore, UserStoreSession
from ._json_store import AsyncJSONStateStore
from ._sqlite_store import AsyncSQLiteStateStore
from ._store_base import AsyncBaseStateStore, AsyncUserStoreSession


class BlockingSession(Protocol):
    """The blocking twin of :class:`~flowweaver._store_api.AsyncStoreSession`."""

    def encode(self, task_name: str, value: Any) -> Any: ...

    def load(self, workflow: str, task_names: Sequence[str]) -> dict[str, TaskRecord]: ...

    def save(self, workflow: str, records: Sequence[TaskRecord]) -> None: ...

    def close(self) -> None: ...


async def open_session(store: object) -> AsyncStoreSession:
    """Open ``store`` for one run on the current event loop (asyncio or trio).

    :raises WorkflowValidationError: when ``store`` is not a state store (naming its
        type).
    :raises StateStoreError: when a built-in store cannot be opened.
    """
    if isinstance(store, (AsyncJSONStateStore, AsyncSQLiteStateStore)):
        return await _thread_session(_blocking_form(store)._open_session)
    if isinstance(store, (JSONStateStore, SQLiteStateStore)):
        return await _thread_session(store._open_session)
    if isinstance(store, BaseStateStore):
        return ThreadSession(UserStoreSession(store), anyio.CapacityLimiter(1))
    if isinstance(store, AsyncBaseStateStore):
        return AsyncUserStoreSession(store)
    raise WorkflowValidationError(
        f"state_store must be a FlowWeaver state store, got a {type(store).__qualname__} "
        f"({store!r}); use JSONStateStore or SQLiteStateStore, or subclass "
        "flowweaver.BaseStateStore (plain methods) or flowweaver.aio.BaseStateStore (async "
        "methods) and implement its five methods"
    )


def store_file(store: object) -> Path | None:
    """The file of a built-in store (its run lease lives beside it); None for a user's
    store, which cannot be leased."""
    if isinstance(
        store, (AsyncJSONStateStore, AsyncSQLiteStateStore, JSONStateStore, SQLiteStateStore)
    ):
        path: Path = store._path
        return path
    return None


def _blocking_form(store: AsyncJSONStateStore | AsyncSQLiteStateStore) -> Any:
    """The blocking store with the same settings, made once per async store."""
    twin = store.__dict__.get("_blocking_twin")
    if twin is None:
        if isinstance(store, AsyncJSONStateStore):
            twin = JSONStateStore(store.store_path, store.pretty_print, serializer=store.serializer)
        else:
            twin = SQLiteStateStore(
                store.db_path, store.enable_gc, store.gc_days, serializer=store.serializer
            )
        store.__dict__["_blocking_twin"] = twin
    return twin


async def _thread_session(opener: Any) -> ThreadSession:
    limiter = anyio.CapacityLimiter(1)
    session = await anyio.to_thread.run_sync(opener, limiter=limiter)
    return ThreadSession(session, limiter)


class ThreadSession:
    """An async session over a blocking one: each call runs in a worker thread.

    ``encode`` is called directly (it is quick and must run on the loop thread).

    :ivar inline: save batches on the calling thread instead. Set by a run that owns its
        loop and runs one task at a time: its loop has nothing else to do while a batch
        is written, and a thread round trip per batch would only add latency.
    """

    def __init__(self, session: BlockingSession, limiter: anyio.CapacityLimiter) -> None:
        self._session = session
        self._limiter = limiter
        self.inline = False

    def encode(self, task_name: str, value: Any) -> Any:
        """The blocking session's ``encode``."""
        return self._session.encode(task_name, value)

    async def load(self, workflow: str, task_names: Sequence[str]) -> dict[str, TaskRecord]:
        """The blocking session's ``load``, in a worker thread."""
        return await anyio.to_thread.run_sync(
            self._session.load, workflow, task_names, limiter=self._limiter
        )

    async def save(self, workflow: str, records: Sequence[TaskRecord]) -> None:
        """The blocking session's ``save``, in a worker thread; once started it
        finishes even if the caller is cancelled."""
        if self.inline:
            self._session.save(workflow, records)
            return
        await anyio.to_thread.run_sync(self._session.save, workflow, records, limiter=self._limiter)

    async def aclose(self) -> None:
        """The blocking session's ``close``, in a worker thread."""
        await anyio.to_thread.run_sync(self._session.close, limiter=self._limiter)
