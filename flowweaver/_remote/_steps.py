"""A run's use of a remote runner (``_remote._protocol``): submit, wait, fetch, close.

The engine owns the schedule; this object owns what is on the cluster: the handle of
each attempt in flight (to cancel it), the values a state store needs brought back (one
round trip per batch), and the end of the connection (results of a cluster that goes
away with the run are brought home first, so ``task.result`` still works afterwards).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from .. import _log
from .._engine._sigint import wait_event
from .._engine._workers import CallSoon, threadsafe_caller
from .._errors import TaskTimeoutError
from .._events import RunEvent, TaskRecomputed
from ._protocol import RemoteResult, RemoteRunner

if TYPE_CHECKING:
    from .._task import Task

#: After an interrupt, how long the driver waits for the completed tasks' results; the
#: rest are reported lost (a run must honour Ctrl-C within a few seconds).
INTERRUPTED_FETCH_WAIT = 3.0

logger = _log.logger  # with its NullHandler (see _log)

Settle = Callable[[int, Any, float], None]
Fail = Callable[[int, Exception, float], None]


class RemoteSteps:
    """Remote execution for one run.

    :param succeeded: the engine's settle-a-success, called with a :class:`RemoteResult`.
    :param failed_for_good: fails a task without retries (its value cannot come back).
    :param needs_values: True when a state store must save every result.
    """

    def __init__(
        self,
        runner: RemoteRunner,
        run_id: str,
        succeeded: Settle,
        failed_for_good: Fail,
        needs_values: bool,
        wrap: Callable[[int, Callable[..., Any]], Callable[..., Any]] | None = None,
    ) -> None:
        self.runner = runner
        # flowweaver.current() (and a trace context) on the worker: each attempt's function
        # is wrapped to carry them (see _context.InContext)
        self._wrap = wrap
        self._run_id = run_id
        self._succeeded = succeeded
        self._failed_for_good = failed_for_good
        self._live: dict[int, Any] = {}  # task index -> handle of its attempt in flight
        self._queue: list[tuple[int, RemoteResult, float]] = []
        self._more: anyio.Event | None = anyio.Event() if needs_values else None
        self._closing = False

    async def start(self, workflow: str, emit: Callable[[RunEvent], None] | None) -> None:
        """Connect the runner; a recomputation it reports is logged and emitted here.

        :raises FlowWeaverError: the cluster cannot be reached (see the runner).
        """
        call_soon = threadsafe_caller()

        def on_loop(task: str, attempt: int, runs: int) -> None:
            logger.warning(
                "task %r of workflow %r: Dask ran its function again after attempt %d had "
                "finished (%d runs now): a worker holding its result was lost while a "
                "dependent still needed it. Task functions on Dask run at least once: "
                "make them idempotent",
                task,
                workflow,
                attempt,
                runs,
            )
            if emit is not None and not self._closing:
                emit(TaskRecomputed(workflow, time.time(), task, attempt, runs))

        def recomputed(task: str, attempt: int, runs: int) -> None:
            try:
                call_soon(lambda: on_loop(task, attempt, runs))
            except Exception:
                pass  # the run's loop is gone: the run has ended

        await self.runner.start(recomputed)

    def key(self, t: Task) -> str:
        return f"{t.name}-{self._run_id}-{t.attempts}"

    def submit(
        self, i: int, t: Task, kwargs: dict[str, Any], done: Callable[[bool, Any], None]
    ) -> None:
        """Start an attempt; ``done`` hears of it from any thread."""
        func = t.func if self._wrap is None else self._wrap(i, t.func)
        self._live[i] = self.runner.submit(self.key(t), func, kwargs, done)

    async def submit_and_wait(
        self, i: int, t: Task, kwargs: dict[str, Any], call_soon: CallSoon
    ) -> Any:
        """Start an attempt and wait for it until the task's timeout; return its handle.

        :raises TaskTimeoutError: at the deadline; the remote call is cancelled.
        :raises Exception: the task function's own error.
        """
        assert t.timeout is not None
        finished = anyio.Event()
        outcome: list[tuple[bool, Any]] = []

        def done(ok: bool, value: Any) -> None:
            outcome.append((ok, value))
            try:
                call_soon(finished.set)
            except Exception:
                pass  # the loop is gone: the run ended without this result

        self.submit(i, t, kwargs, done)
        try:
            with anyio.move_on_after(t.timeout):
                await wait_event(finished)
        except BaseException:
            self.runner.cancel(self._live.pop(i))
            raise
        if not outcome:
            self.runner.cancel(self._live.pop(i))
            raise TaskTimeoutError(t.name, t.timeout)
        ok, value = outcome[0]
        if not ok:
            self._live.pop(i, None)
            raise value
        return value

    def done(self, i: int, handle: Any, ended: float) -> None:
        """An attempt finished on the cluster; with a store its value comes back first."""
        self._live.pop(i, None)
        lazy = RemoteResult(handle, self.runner)
        if self._more is None:
            self._succeeded(i, lazy, ended)
            return
        self._queue.append((i, lazy, ended))
        self._more.set()

    def stop_fetching(self) -> None:
        self._closing = True
        if self._more is not None:
            self._more.set()

    def restart(self) -> None:
        """A ``fail_fast`` stop cancelled what was in flight: forget the values still to
        fetch (their tasks were skipped) and fetch again for the clean-up tasks."""
        self._queue = []
        self._closing = False

    async def fetcher(self) -> None:
        """Bring back the values a state store must save, one round trip per batch."""
        if self._more is None:
            return
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._more = anyio.Event()
                await wait_event(self._more)
                continue
            batch, self._queue = self._queue, []
            try:
                values: list[Any] | None = await self.runner.fetch([h.handle for _, h, _ in batch])
            except Exception:
                values = None  # find out which one cannot come back, one by one
            for k, (i, lazy, ended) in enumerate(batch):
                if values is not None:
                    lazy.set(values[k])
                else:
                    try:
                        lazy.set((await self.runner.fetch([lazy.handle]))[0])
                    except Exception as exc:
                        self._failed_for_good(i, exc, ended)
                        continue
                self._succeeded(i, lazy, ended)

    async def _bring_home(self, lazies: list[tuple[str, RemoteResult]]) -> None:
        """Fetch these values in one round trip; if one cannot come back, each on its own,
        so that one bad value does not cost the others (it is marked lost)."""
        try:
            values = await self.runner.fetch([lazy.handle for _, lazy in lazies])
        except Exception:
            for name, lazy in lazies:
                try:
                    lazy.set((await self.runner.fetch([lazy.handle]))[0])
                except Exception as exc:
                    lazy.lost(
                        f"the result of task {name!r} could not be brought back from the "
                        f"cluster at the end of the run ({exc}); run the task again",
                        exc,
                    )
            return
        for (_, lazy), value in zip(lazies, values, strict=True):
            lazy.set(value)

    async def close(self, ok: bool, tasks: list[Task]) -> None:
        """Cancel what still runs remotely, bring completed results home, disconnect.

        Shielded. Unless the runner keeps results on the cluster, every completed task's
        value not fetched yet comes to the driver in one round trip, so ``task.result``
        works whatever happens to the cluster afterwards; after an interrupt (``ok`` is
        false) that wait is bounded and what did not arrive is marked lost, saying why.
        """
        runner = self.runner
        with anyio.CancelScope(shield=True):
            for handle in self._live.values():
                runner.cancel(handle)
            self._live.clear()
            try:
                if not runner.keeps_results:
                    lazies = []
                    for t in tasks:
                        value = t._state[1]
                        if type(value) is RemoteResult and not value.fetched:
                            lazies.append((t.name, value))
                    if lazies and ok:
                        await self._bring_home(lazies)
                    elif lazies:
                        with anyio.move_on_after(INTERRUPTED_FETCH_WAIT):
                            await self._bring_home(lazies)
                        for name, lazy in lazies:
                            if not lazy.fetched:
                                lazy.lost(
                                    f"the run was interrupted before the result of task "
                                    f"{name!r} could be brought back from the cluster (it "
                                    f"waits {INTERRUPTED_FETCH_WAIT:g} s for them after an "
                                    "interrupt); run the workflow again (with a state store, "
                                    "completed tasks are restored instead of run again)"
                                )
            finally:
                await runner.aclose()
