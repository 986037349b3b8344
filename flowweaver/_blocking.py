"""Run async code to the end from sync code, whether or not this thread runs a loop.

With no loop running in this thread (a script), ``anyio.run`` starts one here. When one is
already running (a notebook cell, a sync helper called from an async web handler),
starting another in this thread is impossible and waiting on the running one would
deadlock, so the work runs on a fresh loop in a helper thread (anyio's blocking portal)
while this thread waits. Never ``nest_asyncio``, never a change of the global loop policy.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from anyio.from_thread import start_blocking_portal

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

    Exceptions propagate unchanged; Ctrl-C cancels the work and raises
    ``KeyboardInterrupt`` (on the portal path the helper loop is cancelled first).
    """
    if not loop_running_in_this_thread():
        try:
            return anyio.run(func, *args, backend=backend)
        except asyncio.CancelledError:
            # Nothing outside can cancel the main task of a loop we started but Ctrl-C.
            # Python 3.11+ turns it into KeyboardInterrupt itself; anyio's Runner backport
            # on 3.10 cannot, and lets the cancellation escape.
            raise KeyboardInterrupt from None
    with start_blocking_portal(backend) as portal:
        future = portal.start_task_soon(func, *args)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
            raise
