"""Running task functions elsewhere (a Dask cluster) while the engine stays the scheduler.

An executor with a *remote runner* sends every task function to it. The engine keeps
doing everything else in the driver: retries, timeouts, callbacks, events, skipping,
state-store writes. A task's result stays where it was computed: the engine keeps the
runner's *handle* (for Dask, a ``Future``) and passes upstream handles as the inputs of a
dependent, so data moves between workers, not through the driver. A value comes to the
driver only when it is needed: a state store must save it, or someone reads
``task.result`` (a :class:`RemoteResult` fetches it on first access).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Done = Callable[[bool, Any], None]
#: ``(task name, attempt, runs)``: the runner ran a finished attempt's function again.
Recomputed = Callable[[str, int, int], None]


class RemoteRunner(Protocol):
    """What the engine needs from a remote runner; one instance serves one run."""

    async def start(self, recomputed: Recomputed) -> None:
        """Connect (or start a cluster); called inside the run before any task.

        ``recomputed`` is called, from any thread, each time the remote side ran the
        function of an attempt that had already finished (at-least-once execution).

        :raises FlowWeaverError: when the cluster cannot be reached, within a bounded time.
        """

    def submit(self, key: str, func: Callable[..., Any], kwargs: dict[str, Any], done: Done) -> Any:
        """Start ``func(**kwargs)`` remotely and return its handle at once.

        ``key`` is ``"<task name>-<run id>-<attempt>"``: unique per attempt, and the run
        id and attempt hold no ``-``. Values in ``kwargs`` may be handles of upstream
        tasks. ``done(ok, value)`` is called once, from any thread, with
        ``(True, handle)`` or ``(False, exception)``.
        """

    def cancel(self, handle: Any) -> None:
        """Cancel a submitted call (a timeout or a cancelled run); never raises."""

    async def fetch(self, handles: Sequence[Any]) -> list[Any]:
        """Bring the values of finished handles to the driver, in one round trip.

        :raises Exception: the error of the first value that cannot be brought back.
        """

    def fetch_blocking(self, handle: Any) -> Any:
        """:meth:`fetch` for one handle, from a plain thread (``task.result``)."""

    async def aclose(self) -> None:
        """Release the cluster connection (and a cluster the runner started)."""

    @property
    def keeps_results(self) -> bool:
        """True when results stay on the cluster after the run (the caller asked so);
        otherwise the engine brings every unfetched result home before :meth:`aclose`."""


class RemoteResult:
    """A task's result that still lives on the cluster; fetched once, on first use."""

    __slots__ = ("_lock", "_lost", "_runner", "_value", "handle")

    _MISSING: Any = object()

    def __init__(self, handle: Any, runner: RemoteRunner, value: Any = _MISSING) -> None:
        self.handle = handle
        self._runner = runner
        self._value = value
        self._lost: tuple[str, BaseException | None] | None = None
        self._lock = threading.Lock()

    @property
    def fetched(self) -> bool:
        return self._value is not RemoteResult._MISSING

    def set(self, value: Any) -> None:
        self._value = value

    def lost(self, reason: str, cause: BaseException | None = None) -> None:
        """The value cannot be brought back; ``reason`` says why and what to do (the
        first reason given stands)."""
        if self._lost is None:
            self._lost = (reason, cause)

    def get(self) -> Any:
        """The value, fetched from the cluster the first time (blocking).

        :raises FlowWeaverError: when it could not be brought back at the end of the run
            (the message says why), or it was left on the cluster and cannot be fetched.
        """
        if self._lost is not None:
            from .._errors import FlowWeaverError

            reason, cause = self._lost
            raise FlowWeaverError(reason) from cause
        if self._value is RemoteResult._MISSING:
            with self._lock:
                if self._value is RemoteResult._MISSING:
                    self._value = self._runner.fetch_blocking(self.handle)
        return self._value

    def __repr__(self) -> str:
        return f"<RemoteResult {'fetched' if self.fetched else 'on the cluster'}>"
