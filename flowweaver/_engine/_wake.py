"""How worker threads wake the run's loop when they hand an outcome back.

Theory of operation: on a chain of sync tasks every step is a round trip, worker thread
to loop and back, so the cost of one wake is paid once per task. The loop's own
cross-thread entry points are the slow way to do it: asyncio's ``call_soon_threadsafe``
wakes the loop through its self-pipe (two ``recv`` calls to drain it), runs a callback
that sets an event, and only on the next loop iteration resumes the task that settles;
trio's ``run_sync_soon`` goes through a system task, then an event. Measured on a 2,000
task chain against graphlib + ThreadPoolExecutor(4): 1.3x to 1.6x for that wake alone,
with nothing settled.

So a run whose worker threads are busy opens a pipe of its own, and a worker writes one
byte to it per batch of outcomes (the driver's inbox flag keeps it to one):

- asyncio: the loop watches the pipe (``add_reader``) and the callback settles the batch
  right there, on the loop thread, in the same iteration it woke for (0.6x the floor in
  the same measurement). The callback runs in a copy of the context the run started in
  (taken when the :class:`Waker` is made), as the run's own task would settle: what
  settling starts (lanes, callbacks) inherits it, never the mark of a task whose lane
  happened to open the pipe.
- trio: the driving task waits for the pipe itself (``wait_readable``): one wake, no
  system task, no event (1.0x).
- anything else (a loop without ``add_reader``, Windows), and before the pipe is open:
  the loop's own entry point and an event, as before.

Everything but :meth:`Waker.wake` runs on the loop thread. ``wake`` and ``close`` are
called under the run's inbox lock, so a worker never writes to a closed descriptor (whose
number the process may have given to another file by then).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
from collections.abc import Callable

import anyio
import anyio.lowlevel

from ._sigint import wait_event
from ._workers import CallSoon

_READ = 4096  # more than the bytes ever pending: one per batch


class Waker:
    """One run's wake-ups, from worker threads to the loop.

    :param settle: takes the inbox and settles it; the asyncio pipe callback calls it
        (see :meth:`open`).
    :param call_soon: the loop's own thread-safe entry point, used until the pipe is open
        and where there is none.

    Make it in the run's own task: the asyncio callback runs in a copy of its context.
    """

    def __init__(self, settle: Callable[[], None], call_soon: CallSoon) -> None:
        self._settle = settle
        self._call_soon = call_soon
        self._event = anyio.Event()
        self._read = -1
        self._write = -1
        self._loop: asyncio.AbstractEventLoop | None = None  # asyncio: it watches the pipe
        self._context = contextvars.copy_context()

    def open(self) -> None:
        """Open the pipe, if this loop can watch one (loop thread)."""
        if self._read >= 0 or os.name != "posix":
            return
        token = anyio.lowlevel.current_token().native_token
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)  # a full pipe already wakes the loop: never wait
        if isinstance(token, asyncio.AbstractEventLoop):
            context = self._context
            # Outside any task, sniffio cannot tell which library runs: say it.
            sniffio = sys.modules.get("sniffio")
            if sniffio is not None:
                context.run(sniffio.current_async_library_cvar.set, "asyncio")
            try:
                context.run(token.add_reader, read, self._readable)
            except (NotImplementedError, RuntimeError):  # a loop that cannot watch a pipe
                os.close(read)
                os.close(write)
                return
            self._loop = token
        self._read, self._write = read, write
        if self._loop is None:
            # The driving task waits on the pipe from now on: end a wait on the event, and
            # leave a byte for a batch flagged before the pipe was open, whose worker
            # woke only the event (a remote run whose callback opened the pool, say).
            self._event.set()
            os.write(write, b"\0")

    def wake(self) -> None:
        """Worker thread, under the run's inbox lock: the loop has a batch to settle."""
        if self._write >= 0:
            try:
                os.write(self._write, b"\0")
            except BlockingIOError:
                pass  # bytes already wait to be read: the loop will wake
            return
        try:
            self._call_soon(self._event.set)
        except Exception:
            pass  # the loop is gone: the run was cancelled and abandoned this worker

    def nudge(self) -> None:
        """Loop thread: end the driving task's current wait (the run finished)."""
        self._event.set()
        if self._write >= 0 and self._loop is None:
            try:
                os.write(self._write, b"\0")
            except BlockingIOError:
                pass

    async def wait(self) -> None:
        """Return when the driving task has a batch to settle or the run finished.

        Under asyncio with the pipe open, batches are settled by the pipe's callback, and
        only :meth:`nudge` ends this wait.
        """
        if self._read >= 0 and self._loop is None:
            # trio's wait_readable is KeyboardInterrupt-protected as a whole, registration
            # and block: no gap for Ctrl-C as in Event.wait (see wait_event).
            await anyio.wait_readable(self._read)
            self._drain()
        else:
            await wait_event(self._event)
            self._event = anyio.Event()

    def close(self) -> None:
        """Loop thread, under the run's inbox lock: stop watching and close the pipe."""
        if self._read < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._read)
        else:
            anyio.notify_closing(self._read)
        os.close(self._read)
        os.close(self._write)
        self._read = self._write = -1

    def _readable(self) -> None:
        self._drain()
        self._settle()

    def _drain(self) -> None:
        try:
            os.read(self._read, _READ)
        except BlockingIOError:
            pass  # a spurious wake: a byte written for a batch already taken
