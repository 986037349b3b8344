"""The base class of state stores, and how a run uses a store that only has its methods.

``flowweaver/_async/_store_base.py`` is written by hand; ``scripts/unasync.py`` turns it
into ``flowweaver/_sync/_store_base.py`` (the public ``flowweaver.BaseStateStore``, with
plain methods exactly as in the API reference). The async form is
``flowweaver.aio.BaseStateStore``.

A user's store implements the reference's five methods and nothing else. A run reaches it
through the session class below, which turns the engine's records into those calls
and back (the blocking form's calls run in a worker thread, see ``_sessions``). Such a
store cannot tell workflows apart, so its records come back without one and a run
restores them by task name, as the reference says.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .._errors import FlowWeaverError
from .._status import TaskStatus
from .._store._api import AsyncStoreSession, StateStoreError, TaskRecord
from .._store._records import record_from_state


class AsyncBaseStateStore(ABC):
    """The base of every state store: subclass it and implement the five methods.

    A run saves each task that reaches ``COMPLETED``, ``FAILED`` or ``SKIPPED`` with
    :meth:`save_task_state`, and before it starts asks :meth:`load_task_state` for each
    task: a task whose saved status is ``COMPLETED`` is restored instead of run again.
    Calls come one at a time, never concurrently, within one run.
    """

    @abstractmethod
    async def save_task_state(
        self,
        task_name: str,
        status: TaskStatus,
        result: Any,
        error: Exception | str | None,
        timestamp: datetime,
    ) -> None:
        """Persist a task's state (replacing what was saved under that name).

        :param status: ``COMPLETED``, ``FAILED`` or ``SKIPPED`` when a run saves.
        :param result: the task's result (``None`` unless completed).
        :param error: why the task failed, as text (``"ValueError: bad"``), or None.
        :param timestamp: when the task reached ``status`` (timezone-aware, UTC).
        """

    @abstractmethod
    async def load_task_state(self, task_name: str) -> dict[str, Any] | None:
        """The saved state of a task, or None.

        :returns: a dict with ``"status"`` (a :class:`TaskStatus` or its text, such as
            ``"COMPLETED"``), ``"result"``, ``"error"`` and ``"timestamp"`` (a datetime
            or an ISO 8601 string).
        """

    @abstractmethod
    async def delete_task_state(self, task_name: str) -> None:
        """Remove the saved state of a task (no error when there is none)."""

    @abstractmethod
    async def list_all_tasks(self) -> list[str]:
        """The names of all tasks with a saved state."""

    @abstractmethod
    async def clear_all_states(self) -> None:
        """Remove every saved state."""

    # -- the session protocol (see flowweaver._store._sessions.open_session) -----------

    async def _open_session(self) -> AsyncStoreSession:
        """How a run reaches this store: a session over the five methods."""
        return AsyncUserStoreSession(self)

    def _lease_file(self) -> Path | None:
        """A store of five methods has no file to hold a run lease beside."""
        return None


class AsyncUserStoreSession:
    """A run's session on a store that has only the five methods.

    Results are handed to the store as they are (it decides how to keep them), one
    ``save_task_state`` call per record; anything the store raises that is not already a
    FlowWeaver error becomes a :class:`StateStoreError` naming the store and the method.
    """

    def __init__(self, store: AsyncBaseStateStore) -> None:
        self._store = store
        self._name = type(store).__qualname__

    def encode(self, task_name: str, value: Any) -> Any:
        """The result itself: the user's store is the judge of what it can keep."""
        return value

    async def load(
        self, workflow: str, task_names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> dict[str, TaskRecord]:
        """The saved state of each task, by name (the store knows no workflows), and of
        each name in ``list_all_tasks()`` that starts with one of ``prefixes`` (a mapped
        task's items: the five methods have no other way to find them).

        :raises StateStoreError: when the store fails or returns something unusable.
        """
        found = {}
        names = list(task_names)
        if prefixes:
            try:
                saved = await self._store.list_all_tasks()
            except FlowWeaverError:
                raise
            except Exception as exc:
                raise self._failed("list_all_tasks", None, exc) from exc
            starts = tuple(prefixes)
            names.extend(n for n in saved if isinstance(n, str) and n.startswith(starts))
        for name in names:
            try:
                state = await self._store.load_task_state(name)
            except FlowWeaverError:
                raise
            except Exception as exc:
                raise self._failed("load_task_state", name, exc) from exc
            if state is not None:
                found[name] = record_from_state(name, state, self._name)
        return found

    async def save(self, workflow: str, records: Sequence[TaskRecord]) -> None:
        """Save each record with ``save_task_state``, in order.

        :raises StateStoreError: when the store fails.
        """
        for r in records:
            try:
                await self._store.save_task_state(
                    r.task_name, r.status, r.result, r.error, r.timestamp
                )
            except FlowWeaverError:
                raise
            except Exception as exc:
                raise self._failed("save_task_state", r.task_name, exc) from exc

    async def aclose(self) -> None:
        """Nothing to release: the five methods have no close."""

    def _failed(self, method: str, task_name: str | None, exc: Exception) -> StateStoreError:
        args = "" if task_name is None else repr(task_name)
        return StateStoreError(
            f"the state store {self._name}.{method}({args}) raised {type(exc).__name__}: {exc}"
        )
