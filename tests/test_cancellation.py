"""Cancelling the caller, or Ctrl-C: tasks in flight are cancelled, none is left RUNNING or
RETRYING, the exception propagates, and nothing hangs.

Cancel scopes are an awaitable-only idea, so these tests are written once here rather than
in ``tests/_async``; Ctrl-C is tested on real subprocesses for the blocking forms.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import flowweaver.aio
from flowweaver import (
    RunFinished,
    Task,
    TaskCancelled,
    TaskStatus,
    Workflow,
    WorkflowStatus,
)
from tests.helpers import EventLog, Flaky, async_sleeping, blocking_sleeper, final_statuses

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

AIO = [
    flowweaver.aio.SequentialExecutor,
    flowweaver.aio.ThreadedExecutor,
    flowweaver.aio.AsyncExecutor,
]


def _in_flight_async() -> Task:
    return Task("inflight", async_sleeping(30))


def _in_flight_sync() -> Task:
    # sleeps on a worker thread; the thread is abandoned and ends on its own later
    return Task("inflight", blocking_sleeper(1.0, threading.Event()))


def _in_flight_retrying() -> Task:
    # the first attempt fails at once; the retry would come 30 s later
    return Task("inflight", Flaky(failures=1), retries=1, retry_delay=30)


def _in_flight_timed_sync() -> Task:
    return Task("inflight", blocking_sleeper(1.0, threading.Event()), timeout=30)


KINDS: dict[str, Callable[[], Task]] = {
    "async_sleeping": _in_flight_async,
    "sync_sleeping": _in_flight_sync,
    "retry_waiting": _in_flight_retrying,
    "timed_sync_sleeping": _in_flight_timed_sync,
}


def _workflow(kind: str) -> Workflow:
    wf = Workflow("cancelled")
    wf.add_task(Task("done", lambda: "kept"))
    wf.add_task(KINDS[kind](), depends_on=["done"])
    wf.add_task(Task("downstream", lambda: None), depends_on=["inflight"])
    return wf


def _assert_nothing_in_flight(wf: Workflow) -> None:
    statuses = final_statuses(wf)
    assert TaskStatus.RUNNING not in statuses.values(), statuses
    assert TaskStatus.RETRYING not in statuses.values(), statuses


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_cancel_scope_cancels_tasks_in_flight(executor_cls: type, kind: str) -> None:
    wf = _workflow(kind)
    log = EventLog(wf)
    started = time.monotonic()
    with anyio.move_on_after(0.3) as scope:
        await executor_cls(observer=log).execute(wf)
    elapsed = time.monotonic() - started
    # the cancellation came out of execute (and was caught by its own scope)
    assert scope.cancelled_caught
    assert elapsed < 5
    _assert_nothing_in_flight(wf)
    assert final_statuses(wf) == {
        "done": TaskStatus.COMPLETED,
        "inflight": TaskStatus.PENDING,
        "downstream": TaskStatus.PENDING,
    }
    assert wf.get_task("done").result == "kept"  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.CANCELLED
    assert [e.task for e in log.of(TaskCancelled)] == ["inflight"]
    assert log.of(RunFinished)[0].status == "CANCELLED"


@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_a_run_cancelled_after_a_task_failed_is_cancelled(executor_cls: type) -> None:
    # It did not finish: the tasks still running could have failed or not.
    def fail() -> None:
        raise ValueError("bad")

    wf = Workflow("failed_then_cancelled")
    wf.add_task(Task("bad", fail))
    wf.add_task(Task("slow", async_sleeping(30)))
    log = EventLog(wf)
    with anyio.move_on_after(0.3) as scope:
        await executor_cls(observer=log).execute(wf)
    assert scope.cancelled_caught
    assert final_statuses(wf) == {"bad": TaskStatus.FAILED, "slow": TaskStatus.PENDING}
    assert wf.status is WorkflowStatus.CANCELLED
    assert log.of(RunFinished)[0].status == "CANCELLED"


@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_deadline_error_propagates_out_of_execute(executor_cls: type) -> None:
    wf = _workflow("async_sleeping")
    with pytest.raises(TimeoutError), anyio.fail_after(0.2):
        await executor_cls().execute(wf)
    _assert_nothing_in_flight(wf)


@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_cancelled_run_can_run_again(executor_cls: type) -> None:
    calls: list[int] = []

    async def slow_first_time() -> str:
        calls.append(1)
        if len(calls) == 1:
            await anyio.sleep(30)
        return "second run"

    wf = Workflow("again_after_cancel")
    wf.add_task(Task("t", slow_first_time))
    with anyio.move_on_after(0.1):
        await executor_cls().execute(wf)
    assert wf.get_task("t").status is TaskStatus.PENDING  # type: ignore[union-attr]
    await executor_cls().execute(wf)
    assert wf.get_task("t").result == "second run"  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_cancellation_reaches_many_tasks_in_flight() -> None:
    wf = Workflow("wide")
    for i in range(20):
        func = async_sleeping(30) if i % 2 else blocking_sleeper(0.5, threading.Event())
        wf.add_task(Task(f"t{i}", func))
    with anyio.move_on_after(0.2) as scope:
        await flowweaver.aio.AsyncExecutor(max_concurrent=20).execute(wf)
    assert scope.cancelled_caught
    assert set(final_statuses(wf).values()) == {TaskStatus.PENDING}


@pytest.mark.anyio
async def test_cancelled_async_task_sees_the_cancellation(anyio_backend: str) -> None:
    seen: list[str] = []

    async def cleanup_on_cancel() -> None:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")

    wf = Workflow("cleanup")
    wf.add_task(Task("t", cleanup_on_cancel))
    with anyio.move_on_after(0.1):
        await flowweaver.aio.AsyncExecutor().execute(wf)
    assert seen == ["cancelled", "finally"]


# -- Ctrl-C on the blocking forms --------------------------------------------------------------

SCRIPT_HEAD = """
import os
import time

import anyio

from flowweaver import (
    ConcurrentExecutor, SequentialExecutor, Task, ThreadedExecutor, Workflow,
)

def say(word):
    # one write per line: print() from several threads can interleave its pieces
    os.write(1, (word + "\\n").encode())

def long_sync_sleep():
    say("STARTED")
    time.sleep(60)

async def long_async_sleep():
    say("STARTED")
    await anyio.sleep(60)

def fails_once_then_waits():
    say("STARTED")
    raise RuntimeError("retry me in a minute")

wf = Workflow("ctrl_c")
"""

SCRIPT_TAIL = """
try:
    run_it()
except KeyboardInterrupt:
    statuses = " ".join(f"{t.name}={t.status.value}" for t in wf.tasks)
    say(f"STATUSES {statuses} workflow={wf.status.value}")
    raise
say("NOT INTERRUPTED")
"""

SCENARIOS = {
    # a sync task called inline on the run's own loop thread
    "sequential_inline_sleep": (
        """
wf.add_task(Task("first", lambda: 1))
wf.add_task(Task("sleeper", long_sync_sleep), depends_on=["first"])
wf.add_task(Task("after", lambda: 2), depends_on=["sleeper"])
executor = SequentialExecutor(backend=BACKEND)
""",
        1,
    ),
    "threaded_sleeps": (
        """
for i in range(3):
    wf.add_task(Task(f"sleeper{i}", long_sync_sleep))
wf.add_task(Task("retrying", fails_once_then_waits, retries=1, retry_delay=60))
executor = ThreadedExecutor(max_workers=4, backend=BACKEND)
""",
        4,
    ),
    "concurrent_async_sleeps": (
        """
for i in range(3):
    wf.add_task(Task(f"sleeper{i}", long_async_sleep))
wf.add_task(Task("sync_sleeper", long_sync_sleep))
wf.add_task(Task("retrying", fails_once_then_waits, retries=1, retry_delay=60))
executor = ConcurrentExecutor(backend=BACKEND)
""",
        5,
    ),
}


def _reader(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


# How the script calls the blocking execute: from plain code, or from inside a running
# event loop (a notebook, an async handler), where the run goes to a helper thread.
CALLERS = {
    "script": """
def run_it():
    executor.execute(wf)
""",
    "in_host_loop": """
def run_it():
    async def host():
        executor.execute(wf)
    if BACKEND == "trio":
        import trio
        trio.run(host)
    else:
        import asyncio
        asyncio.run(host())
""",
}

CTRL_C_CASES = [
    pytest.param(scenario, backend, caller, id=f"{scenario}-{backend}-{caller}")
    for scenario in SCENARIOS
    for backend in ("asyncio", "trio")
    for caller in CALLERS
]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX-only")
@pytest.mark.parametrize(("scenario", "backend", "caller"), CTRL_C_CASES)
def test_ctrl_c_interrupts_a_blocking_run_promptly(
    scenario: str, backend: str, caller: str, tmp_path: Any
) -> None:
    body, expected_starts = SCENARIOS[scenario]
    script = tmp_path / "run.py"
    code = SCRIPT_HEAD + textwrap.dedent(body) + CALLERS[caller] + SCRIPT_TAIL
    script.write_text(code.replace("BACKEND", repr(backend)))
    out: list[str] = []
    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        reader = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while out.count("STARTED") < expected_starts:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
                assert line is not None, "the script ended before its tasks started"
                out.append(line)
            time.sleep(0.3)  # let every task settle into its sleep (or retry wait)
            interrupted = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
            exit_time = time.monotonic() - interrupted
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(5)
            stderr = proc.stderr.read()  # type: ignore[union-attr]
    while (line := lines.get_nowait()) is not None:
        out.append(line)
    assert exit_time < 10, "Ctrl-C took too long to stop the run"
    assert "KeyboardInterrupt" in stderr, stderr
    assert proc.returncode != 0
    assert "NOT INTERRUPTED" not in out
    statuses = [line for line in out if line.startswith("STATUSES")]
    assert len(statuses) == 1, (out, stderr)
    assert "=RUNNING" not in statuses[0]
    assert "=RETRYING" not in statuses[0]
    assert "workflow=CANCELLED" in statuses[0]
