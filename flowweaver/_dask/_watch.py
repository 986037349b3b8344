"""What a Dask run watches on its cluster besides its futures (see ``_dask``).

* :class:`WorkerWatch`: a Dask future waits for as long as its cluster has no worker at
  all, so a run whose workers all died would hang forever. While attempts are in flight, a
  thread asks the scheduler how many workers it has (one small request a second at most,
  none while nothing is in flight); after ``worker_timeout`` seconds without any, the
  attempts in flight fail with :class:`NoWorkersError`.
* :class:`ExecutionLog`: Dask recomputes a finished task when the worker holding its
  result dies and something still needs it, so a task function may run more than once
  (at least once, never exactly once). Each successful execution on a worker is logged
  (``distributed``'s worker ``log_event``) as ``(run token, key)`` on one topic,
  :data:`EXECUTIONS`; the driver subscribes to it and counts executions per key: a second
  one is a recomputation, reported to the engine (an event and a warning).

  One topic for every run, not one per run: the scheduler keeps each topic's latest
  events (up to ``distributed.admin.low-level-log-length``) for as long as it lives, so a
  topic per run would grow a long-lived scheduler's memory with every run. A client
  has one handler per topic, so the runs sharing a client share one :class:`_Dispatch`,
  which hands each event to its run's log by token.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .._errors import FlowWeaverError

#: The topic the workers log each successful execution on.
EXECUTIONS = "flowweaver-executions"


class NoWorkersError(FlowWeaverError):
    """The Dask cluster had no worker at all for ``worker_timeout`` seconds while this
    task's attempt waited to run; the attempt failed (retried like any failure, if the task
    has retries).

    :ivar task_name: the task whose attempt failed.
    :ivar scheduler: the scheduler's address.
    :ivar seconds: how long there was no worker.
    """

    def __init__(self, task_name: str, scheduler: str, seconds: float) -> None:
        self.task_name = task_name
        self.scheduler = scheduler
        self.seconds = seconds
        super().__init__(
            f"task {task_name!r} could not run: the Dask scheduler at {scheduler} had no "
            f"worker for {seconds:.0f} s (DaskExecutor's worker_timeout); start workers "
            "for it, or raise worker_timeout for a cluster that takes longer to scale up"
        )


class WorkerWatch:
    """Fails the attempts in flight once the cluster has had no worker for ``timeout`` s.

    :param busy: whether any attempt is in flight (called from the watch thread).
    :param give_up: called from the watch thread with the seconds without a worker; fails
        what is in flight (again at each poll while there is still no worker).
    """

    def __init__(
        self,
        client: Any,
        timeout: float,
        busy: Callable[[], bool],
        give_up: Callable[[float], None],
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._busy = busy
        self._give_up = give_up
        self._stop = threading.Event()
        # Often enough to fail within a second or so of the timeout, rarely enough that
        # the scheduler does not notice (one small request per interval, only while busy).
        self._interval = min(1.0, timeout / 4)
        self._thread = threading.Thread(
            target=self._watch, name="flowweaver-dask-workers", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; never blocks (a request under way ends on its own)."""
        self._stop.set()

    def _workers(self) -> int:
        try:
            return len(self._client.nthreads())
        except Exception:
            from .._log import logger  # here: `import flowweaver` needs no logging

            logger.debug("could not ask the Dask scheduler for its workers", exc_info=True)
            return 0  # the scheduler cannot answer: nothing runs there either

    def _watch(self) -> None:
        none_since: float | None = None
        while not self._stop.wait(self._interval):
            if not self._busy() or self._workers():
                none_since = None
                continue
            now = time.monotonic()
            if none_since is None:
                none_since = now
            elif now - none_since >= self._timeout and not self._stop.is_set():
                self._give_up(now - none_since)


class ExecutionLog:
    """Counts, per Dask key, the executions the workers report for one run.

    :param recomputed: called on the client's event-loop thread with the task name, the
        attempt and how many times that attempt's function has now run to its end.
    """

    def __init__(self, client: Any, recomputed: Callable[[str, int, int], None]) -> None:
        import uuid  # only Dask runs need it (it imports platform): off `import flowweaver`

        #: what the run's workers log with each key (``run_on_worker``'s ``token``)
        self.token = uuid.uuid4().hex
        self._client = client
        self._recomputed = recomputed
        self._runs: dict[tuple[str, ...], int] = {}

    def subscribe(self) -> None:
        """Start listening (blocking: call it from a thread)."""
        with _lock:
            dispatch = _dispatchers.get(self._client)
            if dispatch is None:
                dispatch = _dispatchers[self._client] = _Dispatch()
                self._client.subscribe_topic(EXECUTIONS, dispatch)
            dispatch.logs[self.token] = self

    def unsubscribe(self) -> None:
        """Stop listening; never raises (the client may be closed already)."""
        with _lock:
            dispatch = _dispatchers.get(self._client)
            if dispatch is None:
                return
            dispatch.logs.pop(self.token, None)
            if dispatch.logs:
                return
            del _dispatchers[self._client]
            try:
                self._client.unsubscribe_topic(EXECUTIONS)
            except Exception:
                from .._log import logger

                logger.debug("could not unsubscribe from %s", EXECUTIONS, exc_info=True)
            # unsubscribe_topic tells the scheduler but keeps the client's handler
            # (distributed 2026.8): drop it, or a long-lived client keeps every run's.
            handlers = getattr(self._client, "_event_handlers", None)
            if isinstance(handlers, dict) and handlers.get(EXECUTIONS) is dispatch:
                del handlers[EXECUTIONS]
        self._runs.clear()
        self._recomputed = _ignore  # it holds the run: nothing keeps that alive from here

    def heard(self, key: tuple[str, ...]) -> None:
        """One execution of ``key`` (function name, task name, run id, attempt) ended."""
        runs = self._runs[key] = self._runs.get(key, 0) + 1
        if runs > 1:
            self._recomputed(str(key[1]), int(key[3]), runs)


class _Dispatch:
    """The handler of :data:`EXECUTIONS` on one client: each event to its run's log."""

    def __init__(self) -> None:
        self.logs: dict[str, ExecutionLog] = {}

    def __call__(self, event: tuple[float, Any]) -> None:
        token, key = event[1]  # lists on the wire (msgpack)
        log = self.logs.get(token)
        if log is not None:
            log.heard(tuple(key))


def _ignore(task: str, attempt: int, runs: int) -> None:
    pass


_lock = threading.Lock()
_dispatchers: weakref.WeakKeyDictionary[Any, _Dispatch] = weakref.WeakKeyDictionary()
