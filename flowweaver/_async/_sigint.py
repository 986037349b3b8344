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

import signal
import threading

try:
    # signal.getsignal turns the handler into an enum, and when asyncio's Runner has
    # installed a functools.partial the failed conversion formats the main task's repr:
    # about 25 us a call. The C function returns the handler as it is.
    from _signal import getsignal as _getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - other Python implementations
    _getsignal = signal.getsignal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


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
