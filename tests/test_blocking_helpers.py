"""The helper threads of blocking calls made where a loop runs: reused, several at once.

A blocking ``execute`` inside a running loop (a notebook cell, a sync helper of async
code) runs on a helper thread (``_blocking``). The helpers wait between calls instead of
ending, serve concurrent calls from several threads (one each), stay few when idle, and a
forked child starts its own.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from flowweaver import SequentialExecutor, Task, Workflow, WorkflowExecutionError, _blocking

HELPER_NAME = "flowweaver-blocking-run"


async def _loop_thread() -> threading.Thread:
    return threading.current_thread()  # an async task runs on the run's loop thread


def _helpers_alive() -> int:
    return sum(1 for t in threading.enumerate() if t.name == HELPER_NAME)


@pytest.mark.anyio
async def test_calls_in_a_running_loop_reuse_one_helper_thread(anyio_backend: str) -> None:
    seen: list[threading.Thread] = []
    for _ in range(3):
        wf = Workflow("reused")
        wf.add_task(Task("where", _loop_thread))
        SequentialExecutor().execute(wf)
        seen.append(wf.get_task("where").result)  # type: ignore[union-attr]
    assert all(t.name == HELPER_NAME for t in seen)
    assert seen[0] is not threading.current_thread()
    assert seen[1] is seen[0]
    assert seen[2] is seen[0]


def test_concurrent_calls_from_several_threads_each_get_a_helper() -> None:
    callers = _blocking._MAX_IDLE + 2
    # Every run waits inside its loop until all of them are there: with fewer helpers
    # than callers (one shared helper, say), the barrier would break instead.
    barrier = threading.Barrier(callers, timeout=20)

    async def meet() -> threading.Thread:
        barrier.wait()
        return threading.current_thread()

    loops: list[threading.Thread | None] = [None] * callers
    errors: list[BaseException] = []

    def caller(i: int) -> None:
        async def host() -> None:
            wf = Workflow(f"caller{i}")
            wf.add_task(Task("meet", meet))
            SequentialExecutor().execute(wf)
            loops[i] = wf.get_task("meet").result  # type: ignore[union-attr]

        try:
            asyncio.run(host())
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len({id(t) for t in loops}) == callers
    # then at most _MAX_IDLE of them stay, waiting for the next calls
    deadline = time.monotonic() + 10
    while _helpers_alive() > _blocking._MAX_IDLE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _helpers_alive() <= _blocking._MAX_IDLE


@pytest.mark.anyio
async def test_a_failing_run_leaves_its_helper_fit_for_the_next(anyio_backend: str) -> None:
    wf = Workflow("fails")
    wf.add_task(Task("bad", lambda: 1 / 0))
    with pytest.raises(WorkflowExecutionError):
        SequentialExecutor().execute(wf)
    ok = Workflow("then")
    ok.add_task(Task("where", _loop_thread))
    SequentialExecutor().execute(ok)
    assert ok.get_task("where").result.name == HELPER_NAME  # type: ignore[union-attr]


CHILD = """
import asyncio, os, signal, sys
from flowweaver import SequentialExecutor, Task, Workflow

def in_loop():
    async def host():
        wf = Workflow("w")
        wf.add_task(Task("t", lambda: 1))
        SequentialExecutor().execute(wf)
        return wf.get_task("t").result
    return asyncio.run(host())

assert in_loop() == 1  # leaves an idle helper in this process
pid = os.fork()
if pid == 0:
    signal.alarm(20)  # a helper promised but gone would wait forever
    os._exit(0 if in_loop() == 1 else 1)
_, status = os.waitpid(pid, 0)
print("CHILD", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_starts_its_own_helper() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD)],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert "CHILD 0" in done.stdout, (done.stdout, done.stderr)
