"""Run async code to the end from sync code, whether or not this thread runs a loop.

With no loop running in this thread (a script), ``anyio.run`` starts one here. When one is
already running (a notebook cell, a sync helper called from an async web handler),
starting another in this thread is impossible and waiting on the running one would
deadlock, so the work runs on a fresh loop in a helper thread while this thread waits.
Never ``nest_asyncio``, never a change of the global loop policy. Helper threads are
daemons kept between calls (a few wait idle), one per call in progress.

The helper thread runs ``anyio.run`` itself rather than an anyio blocking portal: a portal
is driven through ``anyio.from_thread``, which trio refuses to use from a thread that runs
trio itself, so a blocking trio run called inside a trio program would hang on exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def loop_running_in_this_thread() -> bool:
    """True when an asyncio or trio event loop is running in the calling thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return True
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    in_run = getattr(trio.lowlevel, "in_trio_run", None)
    return bool(in_run()) if in_run is not None else False


def run_blocking(func: Callable[..., Awaitable[T]], *args: Any, backend: str = "asyncio") -> T:
    """Call ``await func(*args)`` on a new event loop and return its result.

    Exceptions propagate unchanged. Ctrl-C cancels the work and raises
    ``KeyboardInterrupt`` (on the helper-thread path the helper's loop is cancelled and
    waited for first). When the work stopped because of SIGTERM (see
    ``_async._sigint.sigterm_cancels``), SIGTERM is sent again once the loop is closed:
    by default the process ends with it; a handler of the program's own is called.

    :raises SystemExit: 143, when the program's own SIGTERM handler returns.
    """
    if not loop_running_in_this_thread():
        from ._engine._sigint import Terminated, redeliver_sigterm

        try:
            return anyio.run(func, *args, backend=backend)
        except Terminated:
            # SIGTERM stopped the run, now cleaned up: it does what it would have done.
            redeliver_sigterm()
            raise
        except asyncio.CancelledError:
            # Nothing outside can cancel the main task of a loop we started but Ctrl-C.
            # Python 3.11+ turns it into KeyboardInterrupt itself; anyio's Runner backport
            # on 3.10 cannot, and lets the cancellation escape.
            raise KeyboardInterrupt from None
    return _run_in_helper_thread(func, args, backend)


class _Helper:
    """What the helper thread hands back, and how to cancel its run from outside."""

    def __init__(self) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.scope: anyio.CancelScope | None = None
        self.call_soon: Callable[[Callable[[], object]], object] | None = None
        self.ready = threading.Event()
        # Waited on instead of Thread.join: before Python 3.13 a KeyboardInterrupt that
        # lands in join() can leave the thread marked finished while it still runs
        # (bpo-45274's fix), and a second join() then returns at once.
        self.done = threading.Event()

    def cancel(self) -> None:
        self.ready.wait()
        if self.call_soon is not None and self.scope is not None:
            try:
                self.call_soon(self.scope.cancel)
            except Exception:
                pass  # the helper's loop has already finished


def _run_in_helper_thread(func: Callable[..., Awaitable[T]], args: Any, backend: str) -> T:
    from ._engine._workers import threadsafe_caller

    helper = _Helper()

    async def main() -> None:
        with anyio.CancelScope() as scope:
            helper.scope = scope
            helper.call_soon = threadsafe_caller()
            helper.ready.set()
            helper.result = await func(*args)

    def target() -> None:
        try:
            anyio.run(main, backend=backend)
        except BaseException as exc:  # handed to the waiting thread
            helper.error = exc
        finally:
            helper.ready.set()
            helper.done.set()

    host = _current_asyncio_task()
    # The caller's context goes along (flowweaver.current() of a task that runs a nested
    # workflow: its run names the task's as its parent), minus the running loop's name.
    from ._context import _CURRENT, marker
    from ._engine._workers import thread_context

    context = thread_context()
    context.run(_CURRENT.set, marker())  # an inline task's too, kept by its thread
    _hand_to_helper(lambda: context.run(target))
    try:
        # Waited for in slices: the host loop is blocked by this very call, so a
        # cancellation of the host task (asyncio.Runner's answer to Ctrl-C) can only be
        # seen by looking. trio raises KeyboardInterrupt into the wait by itself.
        while not helper.done.wait(0.05):
            if host is not None and _cancel_requested(host):
                raise asyncio.CancelledError
    except BaseException:
        helper.cancel()
        helper.done.wait()
        raise
    if helper.error is not None:
        raise helper.error
    return helper.result  # type: ignore[no-any-return]


# Helper threads wait here between runs: starting a thread for each call cost a thread
# start and its first scheduling, a third of a 10-task run's overhead on this path. Several
# at once serve concurrent calls from several threads, and a run whose task calls a
# blocking execute (a nested run, on the same path) takes another; a few stay idle.
_MAX_IDLE = 4
_idle: list[_HelperThread] = []
_idle_lock = threading.Lock()


class _HelperThread:
    """A daemon thread that runs one job at a time, handed over by :func:`_hand_to_helper`."""

    def __init__(self) -> None:
        self._job: Callable[[], object] | None = None
        self._go = threading.Semaphore(0)
        threading.Thread(target=self._serve, name="flowweaver-blocking-run", daemon=True).start()

    def run(self, job: Callable[[], object]) -> None:
        self._job = job
        self._go.release()

    def _serve(self) -> None:
        while True:
            self._go.acquire()
            job, self._job = self._job, None
            assert job is not None
            job()  # never raises: target() keeps what it raised for the caller
            with _idle_lock:
                if len(_idle) >= _MAX_IDLE:
                    return  # enough wait already: this one ends
                _idle.append(self)


def _hand_to_helper(job: Callable[[], object]) -> None:
    with _idle_lock:
        helper = _idle.pop() if _idle else None
    (helper or _HelperThread()).run(job)


def _forget_helpers() -> None:
    # A forked child has none of its parent's threads; the idle list must not promise them.
    _idle.clear()
    global _idle_lock
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def _current_asyncio_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _cancel_requested(task: asyncio.Task[Any]) -> bool:
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    if cancelling is not None:
        return bool(cancelling())
    return bool(getattr(task, "_must_cancel", False))
