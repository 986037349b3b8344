"""Worker threads wake the loop through a pipe of the run's own (``_engine/_wake.py``).

Under asyncio the pipe's callback settles outcomes outside any task; under trio the run's
task waits for the pipe. Either way a run must behave as when its own task settled: an
error while settling ends the run with it, settling sees the run's context (not a
task's), an observer can still tell which library runs, the pipe is closed at the end,
and a loop that cannot watch a pipe still runs the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import sniffio

import flowweaver
import flowweaver.aio
from flowweaver import Task, TaskCompleted, Workflow
from flowweaver._engine import _driver
from flowweaver._engine._wake import Waker
from flowweaver._engine._workers import threadsafe_caller

pytestmark = pytest.mark.timeout(60)


def _chain(n: int = 5, timeout_first: bool = False) -> Workflow:
    wf = Workflow("wake")
    for k in range(n):
        timeout = 30.0 if timeout_first and k == 0 else None
        wf.add_task(
            Task(f"t{k}", lambda **kw: 1, timeout=timeout),
            depends_on=[f"t{k - 1}"] if k else [],
        )
    return wf


def _run(wf: Workflow, form: str, **options: Any) -> None:
    """Run ``wf`` on ThreadedExecutor(2): blocking, or awaited under ``form``."""
    if form == "blocking":
        flowweaver.ThreadedExecutor(2, **options).execute(wf)
        return

    async def main() -> None:
        await flowweaver.aio.ThreadedExecutor(2, **options).execute(wf)

    anyio.run(main, backend=form)


FORMS = ["blocking", "asyncio", "trio"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("form", FORMS)
def test_an_error_while_settling_a_worker_outcome_ends_the_run_with_it(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    succeeded = _driver._Run._succeeded

    def failing(run: Any, i: int, value: Any, ended: float) -> None:
        if run.tasks[i].name == "t2":
            raise RuntimeError("settling broke")
        succeeded(run, i, value, ended)

    monkeypatch.setattr(_driver._Run, "_succeeded", failing)
    wf = _chain()
    with pytest.raises(RuntimeError, match="settling broke"):
        _run(wf, form)
    assert wf.get_task("t3").status is flowweaver.TaskStatus.PENDING


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
@pytest.mark.parametrize("form", FORMS)
def test_the_wake_pipe_is_closed_when_the_run_ends(form: str) -> None:
    _run(_chain(), form)  # imports, lazily made objects: before the count
    before = _open_fds()
    for _ in range(3):
        _run(_chain(), form)
    assert _open_fds() == before


@pytest.mark.parametrize("form", FORMS)
def test_settling_sees_the_runs_context_not_that_of_the_task_that_opened_the_pipe(
    form: str,
) -> None:
    # t0 has a timeout: it runs on a lane, inside its own flowweaver.current() mark, and
    # its call is what first needs the worker threads (and opens the pipe).
    seen: dict[str, object] = {}

    def observer(event: object) -> None:
        if isinstance(event, TaskCompleted):
            seen[event.task] = flowweaver.current(default=None)

    _run(_chain(3, timeout_first=True), form, observer=observer)
    assert seen == {"t0": None, "t1": None, "t2": None}


def test_an_observer_on_a_plain_asyncio_loop_can_tell_which_library_runs() -> None:
    # Not anyio.run, which names the library in a context variable: here only the running
    # task tells sniffio, and the pipe's callback runs outside any task.
    libraries: list[str] = []

    def observer(event: object) -> None:
        if isinstance(event, TaskCompleted):
            try:
                libraries.append(sniffio.current_async_library())
            except sniffio.AsyncLibraryNotFoundError:
                libraries.append("not found")

    asyncio.run(flowweaver.aio.ThreadedExecutor(2, observer=observer).execute(_chain(3)))
    assert libraries == ["asyncio"] * 3


class _NoReaders(asyncio.SelectorEventLoop):
    """A loop that cannot watch a file descriptor, as asyncio's Proactor on Windows."""

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        raise NotImplementedError


def test_a_loop_that_cannot_watch_the_pipe_still_settles_every_outcome() -> None:
    wf = _chain(20)
    loop = _NoReaders()
    try:
        loop.run_until_complete(flowweaver.aio.ThreadedExecutor(2).execute(wf))
    finally:
        loop.close()
    assert all(t.status is flowweaver.TaskStatus.COMPLETED for t in wf.tasks)


@pytest.mark.anyio
async def test_a_batch_flagged_before_the_pipe_opened_still_ends_the_next_wait() -> None:
    # A worker (a remote runner's thread, say) flagged a batch before the run's pool
    # existed, so it woke the loop's own way; then the pool opened the pipe. The next wait
    # must return for that batch: no worker writes to the pipe while the batch is flagged.
    waker = Waker(lambda: None, threadsafe_caller())
    await anyio.to_thread.run_sync(waker.wake)
    await anyio.sleep(0.01)  # the wake has landed: nobody waited for it yet
    waker.open()
    try:
        with anyio.fail_after(5):
            await waker.wait()
    finally:
        waker.close()
