"""A worker process of a run: runs the task functions its parent sends, one at a time.

    python .../_proc_child.py FD PARENT_PID

Started by :class:`~flowweaver._engine._processes.ProcessPool` as a plain script, never
imported by the engine: it must start fast, so it needs the standard library and
cloudpickle only (anyio only once an ``async def`` function arrives), and it never
imports the user's ``__main__`` (multiprocessing's spawn would). FD is its end of a
socket pair, spoken through :class:`multiprocessing.connection.Connection` (one message
per ``send_bytes``: the framing comes for free).

Protocol. The parent first sends a hello, ``pickle((sys_path, cwd, backend))``, so that
functions pickled by reference (a test module, an installed package) import as they do
in the parent. Then each job is ``cloudpickle((func, kwargs, is_async, context, carrier,
capture))`` (``context``: the fields of the task's ``TaskContext``, or None; then a trace
context's W3C headers, or None; ``capture``: how many lines of the job's log records and
``print`` output to send back, 0 for none: see ``flowweaver._capture``) and each reply
one of these, with the captured lines (a list, or None) as its last element:

* ``("ok", value, lines)``;
* ``("error", exception or None, type name, description, traceback text, lines)``: None
  when the exception cannot be pickled (the parent reports that, with the description);
* ``("unsendable", what, description, lines)``: the job could not be loaded here
  (``what`` is ``"job"``) or its result could not be pickled back (``"result"``).

Signals. SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and the
parent decides what the run does about it (it terminates its workers). SIGTERM raises
``SystemExit`` in the task, so its ``finally`` blocks run, then the process exits. A
worker whose parent died exits too: between jobs it reads EOF; during a job a daemon
thread (it runs all along: cheaper than starting one per job) notices that it was
reparented and ends the process.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection
from typing import Any, NoReturn

import cloudpickle

# How often, during a job, the watchdog checks that the parent is still there.
_WATCH_EVERY = 0.5


def _terminated(signum: int, frame: object) -> NoReturn:
    # Raised in whatever the main thread runs (the task): its finally blocks run first.
    raise SystemExit(128 + signum)


def _watch(parent: int) -> None:
    # A task that blocks for an hour would otherwise outlive a parent killed by SIGKILL
    # (no EOF reaches a worker busy in a job). Reparented means the parent is gone.
    while True:
        time.sleep(_WATCH_EVERY)
        if os.getppid() != parent:
            os._exit(1)


# The fields of the TaskContext of the job running now (see flowweaver._context).
FLOWWEAVER_JOB_CONTEXT: tuple[Any, ...] | None = None


def _attach(carrier: dict[str, str] | None) -> Any:
    """The parent's trace context (an observer's, see flowweaver.otel) made current for
    the job, when OpenTelemetry is installed: spans the task makes are its children."""
    if not carrier:
        return None
    try:
        from opentelemetry import context, propagate

        return context.attach(propagate.extract(carrier))
    except Exception:
        return None


def _detach(token: Any) -> None:
    if token is not None:
        from opentelemetry import context

        context.detach(token)


# -- capture_logs: flowweaver._capture's work, done here without importing flowweaver -----

_MAX_LINE = 10_000  # as flowweaver._capture.MAX_LINE
_MAIN = threading.get_ident()  # jobs run on this thread; other threads are not captured


class _Tail:
    """The job's lines: ``flowweaver._capture.Tail`` in short (tests keep them alike)."""

    def __init__(self, n: int) -> None:
        self.lines: deque[str] = deque(maxlen=n)
        self.partial: dict[str, str] = {}

    def add(self, lines: list[str]) -> None:
        for line in lines:
            if len(line) > _MAX_LINE:
                line = f"{line[:_MAX_LINE]}... ({len(line) - _MAX_LINE} more characters)"
            self.lines.append(line)

    def write(self, stream: str, text: str) -> None:
        *complete, rest = (self.partial.pop(stream, "") + text).split("\n")
        self.add([line[:-1] if line.endswith("\r") else line for line in complete])
        if len(rest) > _MAX_LINE:
            self.add([rest])
        elif rest:
            self.partial[stream] = rest

    def take(self) -> list[str]:
        self.add([text for text in self.partial.values() if text])
        return list(self.lines)


_TAIL: _Tail | None = None  # the running job's, while it captures


class _Tee:
    def __init__(self, stream: Any, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        n: int = self._stream.write(text)
        tail = _TAIL
        if (
            tail is not None
            and isinstance(text, str)
            and threading.get_ident() == _MAIN
            and sys._getframe(1).f_code.co_filename != _LOGGING  # its record is in
        ):
            tail.write(self._name, text)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _format_record(record: Any) -> list[str]:
    """As ``flowweaver._capture.format_record``."""
    try:
        message = record.getMessage()
    except Exception:
        message = f"{record.msg!r} % {record.args!r} (the arguments do not fit the format)"
    text = f"{record.levelname} {record.name}: {message}"
    if record.exc_info and record.exc_info[0] is not None:
        text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.stack_info:
        text += "\n" + record.stack_info
    return text.split("\n")


_capturing = False
_LOGGING = ""  # logging's file, once a job captures: its handlers' writes are not taken


def _start_capturing() -> None:
    """The first job that captures: the streams and the log-record factory, for good
    (this process is the run's own)."""
    global _capturing, _LOGGING
    if _capturing:
        return
    _capturing = True
    import logging  # only now: a worker whose jobs do not capture starts without it

    _LOGGING = logging.__file__

    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> Any:
        record = previous(*args, **kwargs)
        tail = _TAIL
        if tail is not None and threading.get_ident() == _MAIN:
            tail.add(_format_record(record))
        return record

    logging.setLogRecordFactory(factory)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None:
            setattr(sys, name, _Tee(stream, name))


def _describe(exc: BaseException) -> str:
    kind = type(exc).__name__
    try:
        return f"{kind}: {exc}"
    except Exception:  # a hostile __str__: the description must never fail the reply
        return f"{kind} (its message could not be read)"


def _call(func: Any, kwargs: dict[str, Any], is_async: bool, backend: str) -> Any:
    if not is_async:
        return func(**kwargs)
    import functools

    import anyio  # only for async functions: a sync worker starts without it

    return anyio.run(functools.partial(func, **kwargs), backend=backend)


def _reply_error(conn: Connection, exc: Exception, lines: list[str] | None) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    description = _describe(exc)
    try:
        data = cloudpickle.dumps(("error", exc, type(exc).__name__, description, text, lines))
        # What pickles may still not load (an __init__ that wants other arguments than
        # its args): checked here, where the description can still be sent instead.
        pickle.loads(data)
    except Exception:
        data = cloudpickle.dumps(("error", None, type(exc).__name__, description, text, lines))
    conn.send_bytes(data)


def _serve(conn: Connection, backend: str) -> None:
    while True:
        try:
            job = conn.recv_bytes()
        except EOFError:
            # The parent closed its end, or died: nothing more to do. The SIGTERM that
            # follows a close must not raise into the interpreter's own shutdown.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            return
        try:
            func, kwargs, is_async, fields, carrier, capture = cloudpickle.loads(job)
        except Exception as exc:
            conn.send_bytes(pickle.dumps(("unsendable", "job", _describe(exc), None)))
            continue
        # flowweaver.current() in the task reads it here (flowweaver._context looks in
        # __main__), so a worker whose tasks never ask imports no flowweaver.
        global FLOWWEAVER_JOB_CONTEXT, _TAIL
        FLOWWEAVER_JOB_CONTEXT = fields
        if capture:
            _start_capturing()
            _TAIL = _Tail(capture)
        attached = _attach(carrier)
        try:
            value = _call(func, kwargs, is_async, backend)
        except Exception as exc:
            _reply_error(conn, exc, _taken())
            continue
        finally:
            FLOWWEAVER_JOB_CONTEXT = None
            _detach(attached)
        # Anything else (SystemExit from SIGTERM or sys.exit, KeyboardInterrupt) ends
        # this process: the parent reports the exit status.
        lines = _taken()
        try:
            data = cloudpickle.dumps(("ok", value, lines))
        except Exception as exc:
            data = pickle.dumps(("unsendable", "result", _describe(exc), lines))
        del func, kwargs, value  # not kept alive while the worker waits for the next job
        conn.send_bytes(data)


def _taken() -> list[str] | None:
    """The job's lines, once it has ended; capturing stops."""
    global _TAIL
    tail, _TAIL = _TAIL, None
    return None if tail is None else tail.take()


def main(fd: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    conn = Connection(fd)
    try:
        path, cwd, backend = pickle.loads(conn.recv_bytes())
    except EOFError:
        return
    sys.path[:] = path
    try:
        os.chdir(cwd)
    except OSError:
        pass  # the parent's folder is gone: relative paths fail in the task, as there
    threading.Thread(target=_watch, args=(parent,), name="flowweaver-watchdog", daemon=True).start()
    _serve(conn, backend)


if __name__ == "__main__":
    # Run as a script, this file's folder is sys.path[0]; it holds the engine's modules,
    # which are not meant to be imported as top-level names. The hello replaces sys.path.
    del sys.path[0]
    main(int(sys.argv[1]), int(sys.argv[2]))
