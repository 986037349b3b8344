"""Delivering run events to an executor's observer without letting it break the run."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from .. import _log
from .._calls import is_async_callable
from .._events import RunEvent
from ._sigint import wait_event

logger = _log.logger  # with its NullHandler (see _log)


class Emitter:
    """Calls a sync observer at once; queues events for an async one, delivered in order.

    An async observer is awaited by :meth:`deliver`, a task of the run; events are never
    dropped and the run waits for the queue to drain before it returns.
    """

    def __init__(self, observer: Callable[[RunEvent], Any], run_id: str = "") -> None:
        self._observer = observer
        self._run_id = run_id
        self.is_async = is_async_callable(observer)
        self._queue: deque[RunEvent] = deque()
        self._more = anyio.Event()
        self._closed = False

    def emit(self, event: RunEvent) -> None:
        # Stamped here, not by each of the engine's many event sites: an event is made
        # only when there is an observer. Its slot, stored directly: the public field is
        # read-only (see _events).
        event._run_id = self._run_id  # type: ignore[attr-defined]
        if self.is_async:
            self._queue.append(event)
            self._more.set()
            return
        try:
            self._observer(event)
        except Exception:
            logger.exception("the run's observer raised on %r; the run goes on", event)

    def close(self) -> None:
        """No more events: :meth:`deliver` returns once the queue is empty."""
        self._closed = True
        self._more.set()

    async def deliver(self) -> None:
        queue = self._queue
        while True:
            while queue:
                event = queue.popleft()
                try:
                    await self._observer(event)
                except Exception:
                    logger.exception("the run's observer raised on %r; the run goes on", event)
            if self._closed:
                return
            self._more = anyio.Event()
            if not queue and not self._closed:
                await wait_event(self._more)
