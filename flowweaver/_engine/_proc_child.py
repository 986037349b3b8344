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
in the parent. Then each job is ``cloudpickle((func, kwargs, is_async, context, carrier))``
(``context``: the fields of the task's ``TaskContext``, or None; then a trace context's
W3C headers, or None) and each reply one of:

* ``("ok", value)``;
* ``("error", exception or None, type name, description, traceback text)``: None when
  the exception cannot be pickled (the parent reports that, with the description);
* ``("unsendable", what, description)``: the job could not be loaded here (``what`` is
  ``"job"``) or its result could not be pickled back (``"result"``).

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


def _reply_error(conn: Connection, exc: Exception) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    description = _describe(exc)
    try:
        data = cloudpickle.dumps(("error", exc, type(exc).__name__, description, text))
        # What pickles may still not load (an __init__ that wants other arguments than
        # its args): checked here, where the description can still be sent instead.
        pickle.loads(data)
    except Exception:
        data = cloudpickle.dumps(("error", None, type(exc).__name__, description, text))
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
            func, kwargs, is_async, fields, carrier = cloudpickle.loads(job)
        except Exception as exc:
            conn.send_bytes(pickle.dumps(("unsendable", "job", _describe(exc))))
            continue
        # flowweaver.current() in the task reads it here (flowweaver._context looks in
        # __main__), so a worker whose tasks never ask imports no flowweaver.
        global FLOWWEAVER_JOB_CONTEXT
        FLOWWEAVER_JOB_CONTEXT = fields
        attached = _attach(carrier)
        try:
            value = _call(func, kwargs, is_async, backend)
        except Exception as exc:
            _reply_error(conn, exc)
            continue
        finally:
            FLOWWEAVER_JOB_CONTEXT = None
            _detach(attached)
        # Anything else (SystemExit from SIGTERM or sys.exit, KeyboardInterrupt) ends
        # this process: the parent reports the exit status.
        try:
            data = cloudpickle.dumps(("ok", value))
        except Exception as exc:
            data = pickle.dumps(("unsendable", "result", _describe(exc)))
        del func, kwargs, value  # not kept alive while the worker waits for the next job
        conn.send_bytes(data)


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
