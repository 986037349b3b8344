"""Worker processes of one run, for task functions that must run apart from this process.

Theory of operation. A task that runs in a process (``isolation="process"``, or a sync
task under a :class:`~flowweaver.ProcessExecutor`) is still a job on the run's worker
*threads* (``_workers``): the thread calls :meth:`ProcessPool.run`, which blocks while a
worker process runs the function, so the engine's inbox, epochs and batching need nothing
new. A thread cannot be stopped, but a process can: the deadline is kept here, never by
a lane, and at the deadline the process is terminated (SIGTERM, ``kill_grace`` seconds,
SIGKILL) and reaped *before* the attempt fails, so a retry never overlaps the dying
attempt. The next job gets a fresh process.

Workers are started lazily, at most ``capacity`` at once, and reused between jobs of the
run. Each is ``python _proc_child.py FD PARENT_PID`` over a socket pair, framed by
:class:`multiprocessing.connection.Connection`; not multiprocessing's spawn (it imports
the user's ``__main__`` again in every worker) and not fork (forking a process that runs
threads can leave a lock held forever in the child). Functions, inputs, results and
exceptions travel by cloudpickle (see ``_proc_child`` for the protocol).

Every worker is owned by one side at a time: an idle one by the pool, a busy one by the
thread that runs its job; only the owner closes its socket. :meth:`close` and
:meth:`kill_busy` may stop a busy worker from another thread: they shut its socket down
(the owner wakes at once with EOF), terminate and reap the process, and the owner raises
:class:`WorkerStopped`, an outcome the engine drops.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

import anyio.lowlevel
import cloudpickle

from .._capture import Tail
from .._context import TaskContext
from .._errors import (
    FlowWeaverError,
    TaskCrashedError,
    TaskTimeoutError,
    UnsendableError,
    describe_exception,
)

CHILD = str(Path(__file__).with_name("_proc_child.py"))

_UNSENDABLE = (
    "a lock, an open file, a socket, a database connection or a generator cannot be "
    "pickled; create such things inside the task, or give the task isolation='thread'"
)


class WorkerStopped(FlowWeaverError):
    """The run stopped this job's worker process (it ended, or a fail_fast stop
    cancelled the job): the engine drops this outcome."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, as text.

    Set as the ``__cause__`` of the exception re-raised here, as
    :mod:`concurrent.futures` does, so a printed traceback shows where in the task it
    was raised.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class _Worker:
    __slots__ = ("conn", "doomed", "proc", "sock")

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.proc = proc
        self.sock = sock
        # A second descriptor for the messages, so the socket can be shut down from any
        # thread without closing a descriptor another thread is waiting on.
        self.conn = Connection(os.dup(sock.fileno()))
        self.doomed = False  # stopped by close() or kill_busy(): they reap it


class ProcessPool:
    """Up to ``capacity`` worker processes, used from the run's worker threads.

    :param capacity: the most live worker processes (the run's concurrency).
    :param kill_grace: seconds between SIGTERM and SIGKILL when a worker is stopped.
    :param backend: the event loop (``"asyncio"``, ``"trio"``) that ``async def``
        functions run on in a worker.
    :param name: the run's workflow, for messages.
    """

    def __init__(self, capacity: int, kill_grace: float, backend: str, name: str) -> None:
        self._capacity = capacity
        self._grace = kill_grace
        self._backend = backend
        self._name = name
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0
        self._closed = False
        self.started = 0  # how many processes this pool started (tests, benchmarks)

    def run(
        self,
        task_name: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any],
        timeout: float | None,
        is_async: bool,
        wanted: Callable[[], bool] | None = None,
        context: TaskContext | None = None,
        carrier: dict[str, str] | None = None,
        tail: Tail | None = None,
    ) -> Any:
        """Run ``func(**kwargs)`` in a worker process and return its result; blocks.

        :param timeout: seconds from the moment the job is sent; None: no limit.
        :param wanted: checked when a worker is taken: False means the job was cancelled
            meanwhile (see :meth:`kill_busy`), and it does not start.
        :raises TaskTimeoutError: at the deadline, once the process is gone.
        :raises TaskCrashedError: when the process died during the job.
        :raises FlowWeaverError: for a function, inputs, result or exception that cannot
            travel between the processes, naming the task and what to do.
        :raises WorkerStopped: when :meth:`close` or :meth:`kill_busy` stopped the job.
        :param tail: ``capture_logs``: the worker captures the job's lines and they are
            added here, whatever the outcome (none when the process dies or is killed).
        The function's own exception is re-raised, its traceback text as ``__cause__``.
        """
        capture = 0 if tail is None else tail.lines.maxlen or 0
        job = _job(task_name, func, kwargs, is_async, context, carrier, capture)
        worker = self._take(wanted)
        conn = worker.conn
        try:
            conn.send_bytes(job)
            reply = conn.recv_bytes() if conn.poll(timeout) else None
        except (EOFError, OSError):
            self._lost(worker, task_name)
        if reply is None:
            assert timeout is not None
            # Still counted as busy while it dies: never more than capacity processes.
            self._stop([worker])
            self._forget(worker)
            self._discard(worker)
            raise TaskTimeoutError(task_name, timeout)
        self._release(worker)
        return _outcome(task_name, reply, tail)

    def kill_busy(self) -> None:
        """Stop every worker busy with a job, and wait until they are gone.

        For a ``fail_fast`` stop: the jobs in flight were cancelled; the engine makes its
        ``wanted`` checks fail first, so no cancelled job starts after this.
        """
        with self._lock:
            busy = list(self._busy)
            self._busy.clear()
            for w in busy:
                w.doomed = True
            self._freed.notify_all()
        self._stop(busy)

    def close(self) -> None:
        """Stop every worker process and reap it; blocks up to ``kill_grace`` seconds.

        Thread-safe and idempotent. Jobs blocked in :meth:`run` raise
        :class:`WorkerStopped` at once; later calls raise it too.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._freed.notify_all()
            while self._starting:  # a process being started is stopped with the rest
                self._freed.wait()
            idle, busy = self._idle, list(self._busy)
            self._idle = []
            self._busy.clear()
            for w in busy:
                w.doomed = True
        self._stop(idle + busy)
        for w in idle:
            self._discard(w)

    def pids(self) -> list[int]:
        """The pids of the live worker processes."""
        with self._lock:
            return [w.proc.pid for w in [*self._idle, *self._busy]]

    # -- workers --------------------------------------------------------------------------------

    def _take(self, wanted: Callable[[], bool] | None) -> _Worker:
        dead: list[_Worker] = []
        try:
            with self._lock:
                while True:
                    if self._closed or (wanted is not None and not wanted()):
                        raise WorkerStopped(f"the run of {self._name!r} stopped this job")
                    while self._idle:
                        w = self._idle.pop()
                        if w.proc.poll() is None:
                            self._busy.add(w)
                            return w
                        dead.append(w)  # killed while idle (the OOM killer, a user)
                    if len(self._busy) + self._starting < self._capacity:
                        self._starting += 1
                        break
                    self._freed.wait()
        finally:
            for w in dead:
                self._discard(w)
        try:
            w = self._start()
        except BaseException:
            with self._lock:
                self._starting -= 1
                self._freed.notify_all()
            raise
        with self._lock:
            self._starting -= 1
            self._freed.notify_all()
            if self._closed:
                # close() is waiting for this start to end: it stops the worker with the
                # busy ones, this thread closes its socket as their owners do.
                w.doomed = True
                self._busy.add(w)
            elif wanted is None or wanted():
                self._busy.add(w)
                return w
            else:
                self._idle.append(w)  # cancelled meanwhile: a fresh worker for the next
                raise WorkerStopped(f"the run of {self._name!r} stopped this job")
        self._discard(w)
        raise WorkerStopped(f"the run of {self._name!r} stopped this job")

    def _start(self) -> _Worker:
        mine, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, CHILD, str(theirs.fileno()), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        worker = _Worker(proc, mine)
        self.started += 1
        # sys.path and the folder as they are now: a function pickled by reference (from
        # a test module, an installed package) imports in the worker as it does here.
        hello = pickle.dumps((list(sys.path), os.getcwd(), self._backend))
        try:
            worker.conn.send_bytes(hello)
        except OSError:
            pass  # it died already: its first job reports how
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if not worker.doomed and not self._closed:
                self._busy.discard(worker)
                self._idle.append(worker)
                self._freed.notify_all()
                return
        self._discard(worker)  # close() or kill_busy() reaps it

    def _forget(self, worker: _Worker) -> bool:
        """Stop counting a busy worker; True when close() or kill_busy() stopped it."""
        with self._lock:
            self._busy.discard(worker)
            self._freed.notify_all()
            return worker.doomed

    def _lost(self, worker: _Worker, task_name: str) -> NoReturn:
        """The worker's socket closed during a job: stopped on purpose, or it died."""
        if not worker.doomed:
            self._stop([worker])  # it closed its socket; make sure it is gone, and reap it
        doomed = self._forget(worker)
        self._discard(worker)
        if doomed:
            raise WorkerStopped(f"the run of {self._name!r} stopped task {task_name!r}")
        code = worker.proc.returncode
        if code is not None and code < 0:
            try:
                name: str | None = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise TaskCrashedError(task_name, None, name)
        raise TaskCrashedError(task_name, code, None)

    def _stop(self, workers: list[_Worker]) -> None:
        """SIGTERM, up to ``kill_grace`` s for all of them at once, SIGKILL, reap."""
        if not workers:
            return
        for w in workers:
            try:
                w.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread waiting for a reply
            except OSError:
                pass
            w.proc.send_signal(signal.SIGTERM)  # a no-op once it has been reaped
        deadline = time.monotonic() + self._grace
        for w in workers:
            try:
                w.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
        for w in workers:
            w.proc.wait()

    def _discard(self, worker: _Worker) -> None:
        """Close this side's socket: only the worker's owner does (see the module doc)."""
        worker.conn.close()
        worker.sock.close()


def current_backend() -> str:
    """The event loop running this run (``"asyncio"`` or ``"trio"``): the one an
    ``async def`` task runs on in its worker process too."""
    native = anyio.lowlevel.current_token().native_token
    return "asyncio" if isinstance(native, asyncio.AbstractEventLoop) else "trio"


def _job(
    task_name: str,
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    is_async: bool,
    context: TaskContext | None,
    carrier: dict[str, str] | None = None,
    capture: int = 0,
) -> bytes:
    # the context as plain fields: the worker imports flowweaver only if the task does
    fields = None
    if context is not None:
        c = context
        fields = (c.workflow, c.task, c.item, c.attempt, c.run_id, c.params, c.parent_run_id)
    try:
        data: bytes = cloudpickle.dumps((func, kwargs, is_async, fields, carrier, capture))
    except Exception as exc:
        culprit = _culprit(func, kwargs)
        if culprit == "its function" and context is not None:
            try:
                cloudpickle.dumps(func)
            except Exception:
                pass
            else:
                culprit = "a parameter of the run (flowweaver.current().params)"
        raise UnsendableError(
            f"task {task_name!r}: {culprit} cannot be sent to a worker "
            f"process ({describe_exception(exc)}); {_UNSENDABLE}"
        ) from exc
    return data


def _culprit(func: Callable[..., Any], kwargs: dict[str, Any]) -> str:
    """What part of a job cannot be pickled, for the message."""
    for key, value in kwargs.items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return f"its input {key!r} (a {type(value).__name__})"
    return "its function"


def _outcome(task_name: str, reply: bytes, tail: Tail | None = None) -> Any:
    try:
        message = pickle.loads(reply)
    except Exception as exc:
        raise FlowWeaverError(
            f"task {task_name!r}: what its worker process sent back cannot be loaded in "
            f"this process ({describe_exception(exc)}); return plain data, or give the task "
            "isolation='thread'"
        ) from exc
    *message, lines = message  # every reply ends with the job's lines (or None)
    if lines and tail is not None:
        tail.add(lines)
    kind = message[0]
    if kind == "ok":
        return message[1]
    if kind == "error":
        _, raised, type_name, description, text = message
        cause = RemoteTraceback(text)
        if raised is None:
            error = FlowWeaverError(
                f"task {task_name!r} raised {description} in its worker process, and that "
                f"{type_name} cannot be sent back to this process (it cannot be pickled); "
                "raise an exception that pickles, or give the task isolation='thread'"
            )
            raise error from cause
        raise raised from cause
    _, what, description = message
    if what == "result":
        raise UnsendableError(
            f"task {task_name!r}: its result cannot be sent back from its worker process "
            f"({description}); return plain data, or give the task isolation='thread'"
        )
    raise UnsendableError(
        f"task {task_name!r}: its function or inputs cannot be loaded in its worker "
        f"process ({description}); the module that defines them must be importable there "
        "(it gets this process's sys.path and folder), or give the task isolation='thread'"
    )
