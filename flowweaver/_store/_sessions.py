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

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .._calls import is_async_callable
from .._errors import WorkflowValidationError
from ._api import AsyncStoreSession, RunRecord, StoreSession, TaskRecord

T = TypeVar("T")


async def open_session(store: object, guard: Any = None) -> AsyncStoreSession:
    """Open ``store`` for one run on the current event loop (asyncio or trio).

    A store offers the session protocol with two methods:

    * ``_open_session()``: a new session; ``async def`` when the store is awaitable (its
      session is used as it is), a plain method when it blocks (called in a worker thread,
      each call of its session too: :class:`ThreadSession`). The bases of users' stores
      give every subclass one over its five methods (``AsyncUserStoreSession``);
    * optionally ``_run_form()``: the store that serves a run instead. The built-in
      awaitable stores name their blocking twin: one thread call per batch, where
      aiosqlite and aiofiles cost one per statement, and under trio they cannot work.

    :param guard: for a blocking store, the ``InlineGuard`` of a run that owns its loop:
        the session is opened, and used, on the calling thread (see :class:`ThreadSession`).
    :raises WorkflowValidationError: when ``store`` offers no session (naming its type).
    :raises StateStoreError: when a built-in store cannot be opened.
    """
    form = getattr(store, "_run_form", None)
    if callable(form):
        store = form()
    opener = getattr(store, "_open_session", None)
    if not callable(opener):
        raise WorkflowValidationError(
            f"state_store must be a FlowWeaver state store, got a {type(store).__qualname__} "
            f"({store!r}); use JSONStateStore or SQLiteStateStore, or subclass "
            "flowweaver.BaseStateStore (plain methods) or flowweaver.aio.BaseStateStore "
            "(async methods) and implement its five methods"
        )
    if is_async_callable(opener):
        session: AsyncStoreSession = await opener()
        return session
    limiter = anyio.CapacityLimiter(1)
    if guard is not None:
        return ThreadSession(marked(guard, opener), limiter, guard)
    blocking = await anyio.to_thread.run_sync(opener, limiter=limiter)
    return ThreadSession(blocking, limiter)


def store_file(store: object) -> Path | None:
    """The file a store keeps its records in (its run lease lives beside it), from its
    ``_lease_file()``; None for a store that cannot be leased (a user's)."""
    form = getattr(store, "_run_form", None)
    if callable(form):
        store = form()
    lease_file = getattr(store, "_lease_file", None)
    path: Path | None = lease_file() if callable(lease_file) else None
    return path


def blocking_form(store: Any) -> Any:
    """The blocking twin of a built-in awaitable store, with the same settings (made once
    per store); a blocking store is its own.

    The twin is found by the generator's naming rule: ``flowweaver._async.M.AsyncX`` has
    ``flowweaver._sync.M.X``; its settings come from the store's ``_twin_settings()``.
    """
    for cls in type(store).__mro__:
        if cls.__module__.startswith("flowweaver._async."):
            break
    else:
        return store
    twin = store.__dict__.get("_blocking_twin")
    if twin is None:
        module = importlib.import_module(cls.__module__.replace("._async.", "._sync.", 1))
        twin = getattr(module, cls.__name__.removeprefix("Async"))(**store._twin_settings())
        store.__dict__["_blocking_twin"] = twin
    return twin


class ThreadSession:
    """An async session over a blocking one: each call runs in a worker thread, or on
    the calling thread for a run that owns its loop (``inline``).

    ``encode`` is called directly (it is quick and must run on the loop thread).

    An inline session serves a blocking run whose loop is its own: while the store opens,
    loads, records the run's beginning and end and closes, nothing else is running, and
    while a batch is written the run waits for it (see ``_writer``). A thread round trip
    per call would only add latency: a 10-task run made twenty. Each inline call is marked
    on the run's ``InlineGuard``, so Ctrl-C interrupts one that waits for another
    process's lock, as it interrupts a task's function.
    """

    def __init__(
        self, session: StoreSession, limiter: anyio.CapacityLimiter, guard: Any = None
    ) -> None:
        self._session = session
        self._limiter = limiter
        self._guard = guard
        self.inline = guard is not None
        #: ``encode`` without the calls in between: the built-in sessions' own encoder.
        self.encoder: Callable[[str, Any], Any] = getattr(session, "encoder", session.encode)
        self.encodes_values = bool(getattr(session, "encodes_values", False))

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self.inline:
            return marked(self._guard, func, *args)
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    def encode(self, task_name: str, value: Any) -> Any:
        """The blocking session's ``encode``."""
        return self._session.encode(task_name, value)

    async def load(
        self, workflow: str, task_names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> dict[str, TaskRecord]:
        """The blocking session's ``load``."""
        return await self._run(self._session.load, workflow, task_names, prefixes)

    async def save(self, workflow: str, records: Sequence[TaskRecord]) -> None:
        """The blocking session's ``save``; once started in a thread it finishes even if
        the caller is cancelled."""
        await self._run(self._session.save, workflow, records)

    def save_inline(self, workflow: str, records: Sequence[TaskRecord]) -> None:
        """The blocking session's ``save`` on this thread, marked on the guard: an inline
        session's writer calls it when the run waits for the store (see ``_writer``)."""
        marked(self._guard, self._session.save, workflow, records)

    async def begin_run(self, run: RunRecord) -> None:
        """The blocking session's ``begin_run``; nothing when it has none (a user's store
        keeps no history)."""
        await self._history("begin_run", run)

    async def end_run(self, run: RunRecord) -> None:
        """The blocking session's ``end_run``, as ``begin_run``."""
        await self._history("end_run", run)

    async def _history(self, method: str, run: RunRecord) -> None:
        call = getattr(self._session, method, None)
        if call is not None:
            await self._run(call, run)

    async def aclose(self) -> None:
        """The blocking session's ``close``."""
        await self._run(self._session.close)


def marked(guard: Any, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on this thread, marked as an inline call on the run's guard (so
    that Ctrl-C interrupts it: see ``_engine._sigint``)."""
    guard.active = True
    try:
        return func(*args)
    finally:
        guard.active = False
