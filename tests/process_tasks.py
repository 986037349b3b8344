"""Task functions for the worker-process tests, and what the tests check processes with.

They live in a module of their own that imports the standard library only: a worker
process imports it by name to load a function pickled by reference, and a test module
(pytest, hypothesis...) would cost every fresh worker a few hundred milliseconds.
Anything a test must see from a worker (a pid, how many times it ran) goes through a
file, since a worker shares no memory with the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any


def pid(**upstream: Any) -> int:
    return os.getpid()


def pid_and(**upstream: Any) -> list[Any]:
    """``[pid, upstream]``: a list, which a JSON store saves as it is."""
    return [os.getpid(), upstream]


async def async_pid_and_loop() -> list[Any]:
    """The worker's pid and the event loop the function runs on."""
    try:
        asyncio.get_running_loop()
        loop = "asyncio"
    except RuntimeError:
        loop = "trio"
    return [os.getpid(), loop]


def boom() -> None:
    raise ValueError("boom from the worker")


def sleep_then_write(path: str, seconds: float) -> None:
    """Sleeps; whatever ends the sleep (SIGTERM's SystemExit), writes ``path`` on its way out."""
    Path(path + ".pid").write_text(str(os.getpid()))
    try:
        time.sleep(seconds)
    finally:
        Path(path).write_text("finally ran")


def ignore_sigterm_and_sleep(path: str, seconds: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def exit_with(code: int) -> None:
    os._exit(code)


def kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


def a_lock() -> Any:
    return threading.Lock()


class HoldsALock(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_unpicklable() -> None:
    raise HoldsALock("the lock is mine")


def record_pid(folder: str, name: str, seconds: float = 0.0) -> int:
    """Write this worker's pid to ``folder/name.pid`` (one per call, appended), then sleep."""
    with open(os.path.join(folder, name + ".pid"), "a") as f:
        f.write(f"{os.getpid()}\n")
    if seconds:
        time.sleep(seconds)
    return os.getpid()


def stall_first_attempt(path: str) -> int:
    """The first call writes its pid to ``path`` and sleeps an hour; later calls return."""
    if not os.path.exists(path):
        Path(path).write_text(str(os.getpid()))
        time.sleep(3600)
    return os.getpid()


def crash_first_attempt(path: str) -> str:
    if not os.path.exists(path):
        Path(path).write_text(str(os.getpid()))
        os._exit(3)
    return "second attempt"


def count_runs(path: str) -> int:
    """Append a line to ``path`` each time it runs; return this worker's pid."""
    with open(path, "a") as f:
        f.write("ran\n")
    return os.getpid()


def fail_while_exists(path: str) -> str:
    if os.path.exists(path):
        raise RuntimeError(f"{path} exists")
    return "fixed"


def spin(seconds: float = 0.5, **upstream: Any) -> int:
    """Pure Python CPU work for about ``seconds`` (the GIL is held all along)."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for _ in range(1000):
            n += 1
    return n


def spin_count(loops: int, **upstream: Any) -> int:
    """A fixed amount of pure Python CPU work."""
    n = 0
    for i in range(loops):
        n += i % 7
    return n


def alive(pid: int) -> bool:
    """True while process ``pid`` exists, a zombie (not reaped) included."""
    return os.path.exists(f"/proc/{pid}")


def children(parent: int) -> list[int]:
    """The pids of the live processes whose parent is ``parent`` (zombies included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command may hold spaces and parentheses: the fields follow the last ")"
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == parent:
            found.append(int(entry))
    return found


def wait_gone(pids: list[int], within: float = 10.0) -> list[int]:
    """Wait until none of ``pids`` exists; return those still there after ``within`` s."""
    end = time.monotonic() + within
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < end:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def fail_after(seconds: float) -> None:
    time.sleep(seconds)
    raise RuntimeError("failed on purpose")


def running(pid: int) -> bool:
    """True while process ``pid`` runs: a zombie nobody reaped yet does not count (an
    orphan is reaped by whatever adopted it, which in a container may never happen)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def interval(folder: str, name: str, seconds: float, **upstream: Any) -> None:
    """Sleeps ``seconds``; writes ``<name>.span``: when it started and ended (monotonic)."""
    began = time.monotonic()
    time.sleep(seconds)
    Path(folder, f"{name}.span").write_text(f"{began} {time.monotonic()}")


def spans(folder: str) -> list[tuple[float, float]]:
    """The spans :func:`interval` wrote, in the order they started."""
    out = []
    for p in Path(folder).glob("*.span"):
        began, ended = p.read_text().split()
        out.append((float(began), float(ended)))
    return sorted(out)


def my_context(**upstream: Any) -> list[Any]:
    """What ``flowweaver.current()`` says in the worker, and the worker's pid."""
    import flowweaver

    c = flowweaver.current()
    assert c is not None
    return [os.getpid(), c.workflow, c.task, c.attempt, c.run_id, dict(c.params)]


async def my_context_async(**upstream: Any) -> list[Any]:
    import flowweaver

    c = flowweaver.current()
    assert c is not None
    return [os.getpid(), c.workflow, c.task, c.attempt, c.run_id, dict(c.params)]


def trace_ids(**upstream: Any) -> list[int]:
    """The trace and span ids current in the worker (OpenTelemetry's API)."""
    from opentelemetry import trace

    c = trace.get_current_span().get_span_context()
    return [c.trace_id, c.span_id]


async def trace_ids_async(**upstream: Any) -> list[int]:
    return trace_ids()


def chatty(n: int = 3) -> int:
    """Prints and logs in its worker process (capture_logs), and from a thread of its own."""
    import logging

    side = threading.Thread(target=print, args=("from a thread of the task",))
    side.start()
    side.join()
    for i in range(n):
        print(f"line {i}")
    logging.getLogger("proc").warning("careful %s", "now")
    return n


def chatty_then_fail() -> None:
    print("about to fail")
    raise ValueError("failed after printing")
