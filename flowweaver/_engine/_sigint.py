"""Ctrl-C while a sync task runs on the event loop's own thread.

The blocking ``SequentialExecutor`` calls sync task functions directly on its loop thread
(no thread hop per task). On asyncio, ``asyncio.Runner`` turns the first Ctrl-C into a
cancellation of the main task, which only lands when the loop regains control: a task
sleeping for an hour would keep the user waiting an hour. While such a call is in
progress this handler raises ``KeyboardInterrupt`` right inside it, as a plain Python
script would; at any other moment it defers to the loop's handler. (trio already does
this by itself: user code is not protected from ``KeyboardInterrupt``.)
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import threading

try:
    # signal.getsignal turns the handler into an enum, and when asyncio's Runner has
    # installed a functools.partial the failed conversion formats the main task's repr:
    # about 25 us a call. The C function returns the handler as it is.
    from _signal import getsignal as _getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - other Python implementations
    _getsignal = signal.getsignal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import anyio


class InlineGuard:
    """Tells the handler whether user code is running inline right now.

    :ivar interrupted: set when Ctrl-C came while no inline call ran; the engine checks it
        before starting the next inline call, which would otherwise hold the pending
        cancellation up until it returns.
    """

    __slots__ = ("active", "interrupted")

    def __init__(self) -> None:
        self.active = False
        self.interrupted = False


@contextmanager
def interrupt_inline_calls(guard: InlineGuard) -> Iterator[None]:
    """Install the handler for the duration of a run, when it can and must be."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Any = _getsignal(signal.SIGINT)
    if not callable(previous) or previous is signal.default_int_handler:
        # No loop handler to defer to (trio, or SIGINT ignored): leave things alone.
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if guard.active:
            raise KeyboardInterrupt
        guard.interrupted = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if _getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def wake_loop_on_signals() -> Iterator[None]:
    """Make any signal wake this thread's asyncio loop, whichever thread the OS gave it to.

    Why Ctrl-C was sometimes lost under the blocking ThreadedExecutor (issue 9, item 2):
    asyncio.Runner handles SIGINT with a plain ``signal.signal`` handler, which Python
    runs on the main thread the next time it executes bytecode, and it sets no wakeup fd.
    The kernel delivers a process-directed signal to any thread that does not block it;
    when it picks a worker thread (a task's, the store's), the main thread is not
    interrupted and stays asleep in ``select()``, with no timeout while every task is
    busy. The handler, and the cancellation it starts, wait for the next thing that wakes
    the loop: with a long task, a second Ctrl-C. The more threads (a store adds one), the
    likelier. A wakeup fd that the loop watches makes any signal wake the loop; back in
    Python, the main thread runs the handler at once. trio watches one of its own.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers only ever run on the main thread; not ours to wake
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    try:
        loop.add_reader(reader.fileno(), _drain, reader)
    except NotImplementedError:  # pragma: no cover - a loop without add_reader (Windows)
        reader.close()
        writer.close()
        yield
        return
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        loop.remove_reader(reader.fileno())
        reader.close()
        writer.close()


def _drain(reader: socket.socket) -> None:
    try:
        while reader.recv(4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


async def wait_event(event: anyio.Event) -> None:
    """``await event.wait()``, except that under trio Ctrl-C cannot land halfway into it.

    trio's ``Event.wait`` registers the task, then blocks, with KeyboardInterrupt
    protection off in between (trio 0.35). Ctrl-C in that gap ends the task while it is
    still registered, and the ``set()`` that comes later reschedules a finished task:
    ``TrioInternalError`` instead of a KeyboardInterrupt (seen by test_signals, about one
    Ctrl-C in fifty). Marked protected (see :func:`protect_waits_under_trio`), the
    KeyboardInterrupt goes to the main task at its next checkpoint instead, as a
    cancellation would. Every wait of the engine's own tasks goes through here.
    """
    await event.wait()


_protected = False


def protect_waits_under_trio() -> None:
    """Mark :func:`wait_event` KeyboardInterrupt-protected, once trio has been imported.

    Called as a run starts: a run on trio has imported it, and a program that never uses
    trio does not pay for importing it.
    """
    global _protected
    if _protected:
        return
    trio = sys.modules.get("trio")
    if trio is not None:
        trio.lowlevel.enable_ki_protection(wait_event)
        _protected = True


class Terminated(KeyboardInterrupt):
    """A run stopped by SIGTERM: handled everywhere as Ctrl-C, then SIGTERM is re-delivered.

    A KeyboardInterrupt, so that every path that cleans up after Ctrl-C cleans up after it
    too; :func:`flowweaver._blocking.run_blocking` never lets it out.
    """


@contextmanager
def sigterm_cancels(
    cancel: Callable[[], None],
    call_soon: Callable[[Callable[[], None]], object],
    guard: InlineGuard,
) -> Iterator[None]:
    """While the block runs on the main thread, SIGTERM calls ``cancel`` on the loop.

    SIGTERM's default action kills the process on the spot: a run would end with no flush
    of its store. Instead the run is cancelled and cleaned up as for Ctrl-C, and the
    previous handler is put back at once, so that a second SIGTERM does what it always
    did. A sync task running inline on the loop thread (``guard.active``) is interrupted
    right there, as Ctrl-C interrupts it. The block then raises :class:`Terminated`
    (unless ``cancel`` already made it raise one), for the blocking caller to re-deliver
    the signal outside the loop.

    Nothing changes off the main thread, when SIGTERM is ignored, or when its handler was
    not set from Python.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN or previous is None:
        yield
        return
    received = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received = True
        signal.signal(signal.SIGTERM, previous)
        call_soon(cancel)  # signal-safe on both backends; the loop does the cancelling
        if guard.active:
            raise Terminated  # user code inline on the loop thread: the loop is not running

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if _getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)
    if received:
        raise Terminated  # it came too late to cancel anything: the run ended first


def redeliver_sigterm() -> None:
    """Send SIGTERM again, to the handler that was there before the run (see Terminated).

    The default handler ends the process here, as SIGTERM would have (exit status -15,
    143 in a shell). A program's own handler is called; what it raises propagates.

    :raises SystemExit: 143, when that handler returns: the work did not finish.
    """
    signal.raise_signal(signal.SIGTERM)
    raise SystemExit(128 + signal.SIGTERM)
