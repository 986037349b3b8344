"""Worker threads for sync task functions, owned by one run.

Theory of operation: ``anyio.to_thread.run_sync`` costs a full loop-to-thread round trip
per call (about 100 us), which is more than a small task costs. Instead a run owns a
few long-lived worker threads. The loop puts jobs on a queue; a worker takes the next job
itself, runs it, and hands the outcome to the job's ``finish`` hook *on the worker
thread*. The engine's hook appends to an inbox and wakes the loop once per batch, not once
per job (see ``_engine``).

The pool never has more than ``capacity`` live workers: that is the executor's
``max_workers`` (or ``max_concurrent``), a limit that belongs to this run alone, not the
process-wide one. A worker stuck in a job whose caller gave up (a timeout, a cancelled
run) is retired: it finishes that job (Python cannot stop a thread), drops the outcome and
exits, and a new worker may take its place. Workers are daemon threads, so a stuck one
never holds up the interpreter's exit.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

import anyio
import anyio.lowlevel

from ._sigint import wait_event

Finish = Callable[[bool, Any], None]
CallSoon = Callable[[Callable[[], object]], object]


def threadsafe_caller() -> CallSoon:
    """A function that schedules a callback on the current event loop from any thread.

    anyio's ``from_thread.run_sync`` waits for the loop to run the callback; a worker
    must not wait, so this takes the loop's own non-blocking entry point.
    """
    token = anyio.lowlevel.current_token().native_token
    if isinstance(token, asyncio.AbstractEventLoop):
        return token.call_soon_threadsafe
    return cast(CallSoon, token.run_sync_soon)  # type: ignore[attr-defined]  # a TrioToken


def thread_context() -> contextvars.Context:
    """A copy of the caller's context fit for a worker thread.

    The copy must not claim that an event loop runs in it: sniffio keeps the name of the
    running async library in a context variable, and anyio refuses to start a loop (a task
    that runs a workflow of its own, say) in a thread whose context names one.
    """
    context = contextvars.copy_context()
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        context.run(sniffio.current_async_library_cvar.set, None)
    return context


class Job:
    """One call of a sync function on a worker thread.

    :param context: the context to run it in (a fresh copy per job, so a context variable
        one task sets never leaks into the next task of the same worker).
    """

    __slots__ = ("cancelled", "context", "finish", "func", "kwargs", "worker")

    def __init__(
        self,
        func: Callable[..., Any],
        kwargs: dict[str, Any],
        finish: Finish,
        context: contextvars.Context,
    ) -> None:
        self.func = func
        self.kwargs = kwargs
        self.finish = finish
        self.context = context
        self.cancelled = False
        self.worker: _Worker | None = None


class _Worker:
    __slots__ = ("retired",)

    def __init__(self) -> None:
        self.retired = False


class WorkerPool:
    """Up to ``capacity`` daemon threads running :class:`Job` objects.

    :param capacity: the most live workers at once.
    :param call_soon: schedules a callback on the run's event loop (see
        :func:`threadsafe_caller`); used by :meth:`call`.
    :param name: a prefix for thread names, shown in debuggers and thread dumps.
    """

    def __init__(self, capacity: int, call_soon: CallSoon, name: str = "flowweaver") -> None:
        self._capacity = capacity
        self._call_soon = call_soon
        self._name = name
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live = 0
        self._idle = 0
        self._queued = 0
        self._closed = False
        self._started = 0

    def submit(self, job: Job) -> None:
        """Queue ``job``; its ``finish`` hook runs on a worker thread when it is done."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool of this run is closed")
            self._queued += 1
            spawn = self._queued > self._idle and self._live < self._capacity
            if spawn:
                self._live += 1
                self._started += 1
                number = self._started
        self._queue.put(job)
        if spawn:
            threading.Thread(
                target=self._work, name=f"{self._name}-worker-{number}", daemon=True
            ).start()

    async def call(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """Run ``func(**kwargs)`` on a worker and wait for it, without blocking the loop.

        On cancellation (including a deadline of an enclosing ``fail_after``) the job is
        dropped if it has not started; if it has, its worker is retired and the call
        returns at once; the function runs on to its end in the background.
        """
        done = anyio.Event()
        outcome: list[Any] = []

        def finish(ok: bool, value: Any) -> None:
            outcome.append((ok, value))
            try:
                self._call_soon(done.set)
            except Exception:
                pass  # the loop is gone: the run ended and abandoned this job

        job = Job(func, kwargs, finish, thread_context())
        self.submit(job)
        try:
            await wait_event(done)
        except BaseException:
            self.abandon(job)
            raise
        ok, value = outcome[0]
        if ok:
            return value
        raise value

    def abandon(self, job: Job) -> None:
        """Give up on ``job``: its outcome is dropped and a stuck worker retires."""
        with self._lock:
            job.cancelled = True
            worker = job.worker
            if worker is not None and not worker.retired:
                worker.retired = True
                self._live -= 1

    def close(self) -> None:
        """Stop taking jobs; idle workers exit, busy ones after their current job.

        Does not wait for any thread: a run must end even while a job is stuck.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            live = self._live
        for _ in range(live):
            self._queue.put(None)

    def _work(self) -> None:
        me = _Worker()
        get = self._queue.get
        lock = self._lock
        while True:
            with lock:
                self._idle += 1
            job = get()
            with lock:
                self._idle -= 1
                # After close, jobs still queued never start: the run has ended.
                if job is None or self._closed:
                    if not me.retired:
                        self._live -= 1
                    return
                self._queued -= 1
                if job.cancelled:
                    continue
                job.worker = me
            try:
                value = job.context.run(job.func, **job.kwargs)
                ok = True
            except BaseException as exc:  # handed to the loop, which decides what it means
                value = exc
                ok = False
            if me.retired or job.cancelled:
                return
            job.finish(ok, value)
            if me.retired:
                return
