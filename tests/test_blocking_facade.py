"""Blocking ``execute`` with and without an event loop running in the calling thread.

A script has no loop: the run starts one of its own (asyncio or trio, ``backend=``). A
notebook cell or a sync helper inside an async handler has one running: the blocking call
must neither raise nor deadlock (it runs on a helper thread through anyio's portal).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import trio

import flowweaver.aio
from flowweaver import (
    AsyncExecutor,
    BaseExecutor,
    ConcurrentExecutor,
    SequentialExecutor,
    Task,
    TaskStatus,
    TaskTimeoutError,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
    WorkflowValidationError,
)
from tests.helpers import Flaky, async_returning, async_sleeping, async_upper

BLOCKING: list[Callable[[], BaseExecutor]] = [
    SequentialExecutor,
    ThreadedExecutor,
    ConcurrentExecutor,
]
# Workflow.execute blocks for every executor, the awaitable ones included.
ANY_EXECUTOR: list[Callable[[], BaseExecutor]] = [
    *BLOCKING,
    AsyncExecutor,
    flowweaver.aio.SequentialExecutor,
    flowweaver.aio.ThreadedExecutor,
]


def _ids(factory: Callable[[], BaseExecutor]) -> str:
    return f"{factory.__module__.split('.')[-1]}.{getattr(factory, '__name__', factory)}"


async def which_loop() -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio" if trio.lowlevel.in_trio_run() else "unknown"
    return "asyncio"


def _sample() -> Workflow:
    """Sync and async tasks, a data hand-off, a retry and a timeout that is not hit."""
    wf = Workflow("sample")
    wf.add_task(Task("fetch_data", async_returning({"name": "ann"})))
    wf.add_task(Task("process", async_upper), depends_on=["fetch_data"])
    wf.add_task(Task("flaky", Flaky(failures=1, value="retried"), retries=1))
    wf.add_task(Task("timed", lambda: "in time", timeout=30))
    wf.add_task(Task("loop", which_loop))
    return wf


def _check_sample(wf: Workflow) -> None:
    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.get_task("process").result == {"processed": "ANN"}  # type: ignore[union-attr]
    assert wf.get_task("flaky").result == "retried"  # type: ignore[union-attr]
    assert wf.get_task("timed").result == "in time"  # type: ignore[union-attr]


# -- no loop in this thread --------------------------------------------------------------------


@pytest.mark.parametrize("factory", BLOCKING, ids=_ids)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_execute_from_a_script_on_each_backend(
    factory: Callable[..., BaseExecutor], backend: str
) -> None:
    wf = _sample()
    assert factory(backend=backend).execute(wf) is None  # type: ignore[func-returns-value]
    _check_sample(wf)
    assert wf.get_task("loop").result == backend  # type: ignore[union-attr]


@pytest.mark.parametrize("factory", ANY_EXECUTOR, ids=_ids)
def test_workflow_execute_blocks_for_every_executor(factory: Callable[[], BaseExecutor]) -> None:
    wf = _sample()
    assert wf.execute(factory()) is None  # type: ignore[func-returns-value]
    _check_sample(wf)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_failure_and_timeout_on_each_backend(backend: str) -> None:
    for factory in BLOCKING:
        wf = Workflow("fails")
        wf.add_task(Task("slow", async_sleeping(30), timeout=0.05))
        wf.add_task(Task("after", lambda: None), depends_on=["slow"])
        wf.add_task(Task("other", lambda: "other"))
        with pytest.raises(WorkflowExecutionError) as info:
            factory(backend=backend).execute(wf)  # type: ignore[call-arg]
        assert info.value.failed_task == "slow"
        assert isinstance(info.value.errors["slow"], TaskTimeoutError)
        assert wf.get_task("after").status is TaskStatus.SKIPPED  # type: ignore[union-attr]
        assert wf.get_task("other").result == "other"  # type: ignore[union-attr]


def test_blocking_sequential_runs_sync_tasks_on_the_calling_thread() -> None:
    here = threading.get_ident()
    seen: dict[str, int] = {}
    wf = Workflow("inline")
    wf.add_task(Task("plain", lambda: seen.setdefault("plain", threading.get_ident())))
    wf.add_task(Task("timed", lambda: seen.setdefault("timed", threading.get_ident()), timeout=9))
    SequentialExecutor().execute(wf)
    assert seen["plain"] == here
    # a timeout needs a thread the run can walk away from
    assert seen["timed"] != here


@pytest.mark.parametrize("factory", ANY_EXECUTOR, ids=_ids)
def test_execute_from_a_plain_thread(factory: Callable[[], BaseExecutor]) -> None:
    outcome: list[Any] = []

    def worker() -> None:
        wf = _sample()
        try:
            wf.execute(factory())
            outcome.append(wf)
        except BaseException as exc:  # pragma: no cover - reported by the assert
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], Workflow), outcome
    _check_sample(outcome[0])


def test_invalid_graph_raises_through_the_blocking_facade() -> None:
    wf = Workflow("bad")
    wf.add_task(Task("a", lambda: None), depends_on=["b"])
    wf.add_task(Task("b", lambda: None), depends_on=["a"])
    for factory in ANY_EXECUTOR:
        with pytest.raises(WorkflowValidationError, match="a -> b -> a"):
            wf.execute(factory())


# -- a loop already running in this thread ---------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("factory", BLOCKING, ids=_ids)
async def test_blocking_execute_inside_a_running_loop(
    factory: Callable[[], BaseExecutor], anyio_backend: str
) -> None:
    # a sync helper called from async code, like a notebook cell or a web handler
    wf = _sample()
    factory().execute(wf)
    _check_sample(wf)
    # the blocking call starts its own loop (asyncio by default) on a helper thread
    assert wf.get_task("loop").result == "asyncio"  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize("factory", ANY_EXECUTOR, ids=_ids)
async def test_workflow_execute_inside_a_running_loop(
    factory: Callable[[], BaseExecutor], anyio_backend: str
) -> None:
    wf = _sample()
    wf.execute(factory())
    _check_sample(wf)


def test_blocking_execute_with_trio_backend_inside_asyncio() -> None:
    async def handler() -> Workflow:
        wf = _sample()
        SequentialExecutor(backend="trio").execute(wf)
        return wf

    wf = asyncio.run(handler())
    _check_sample(wf)
    assert wf.get_task("loop").result == "trio"  # type: ignore[union-attr]


TRIO_IN_TRIO = """
import trio
from flowweaver import SequentialExecutor, Task, Workflow

async def handler():
    wf = Workflow("w")
    wf.add_task(Task("a", lambda: 1))
    SequentialExecutor(backend="trio").execute(wf)
    print("result", wf.get_task("a").result)

trio.run(handler)
"""


@pytest.mark.slow
def test_blocking_execute_with_trio_backend_inside_trio() -> None:
    # in a subprocess, so a deadlock costs a timeout instead of a stuck test session
    try:
        proc = subprocess.run(
            [sys.executable, "-c", TRIO_IN_TRIO],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the blocking call deadlocked inside trio.run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "result 1"


@pytest.mark.anyio
async def test_failure_propagates_out_of_the_helper_thread(anyio_backend: str) -> None:
    wf = Workflow("fails_in_loop")
    wf.add_task(Task("bad", lambda: 1 / 0))
    wf.add_task(Task("after", lambda: None), depends_on=["bad"])
    with pytest.raises(WorkflowExecutionError) as info:
        ConcurrentExecutor().execute(wf)
    assert info.value.failed_task == "bad"
    assert isinstance(info.value.errors["bad"], ZeroDivisionError)
    assert wf.status is WorkflowStatus.FAILED


@pytest.mark.anyio
async def test_sync_task_in_helper_thread_is_not_on_the_callers_thread(
    anyio_backend: str,
) -> None:
    here = threading.get_ident()
    seen: list[int] = []
    wf = Workflow("where")
    wf.add_task(Task("a", lambda: seen.append(threading.get_ident())))
    SequentialExecutor().execute(wf)
    assert len(seen) == 1
    assert seen[0] != here


_ON_WORKERS = {"ThreadedExecutor", "ConcurrentExecutor", "AsyncConcurrentExecutor"}
_ON_WORKERS |= {"AsyncThreadedExecutor"}


@pytest.mark.parametrize("outer", ANY_EXECUTOR, ids=_ids)
def test_task_may_run_a_nested_workflow_blocking(outer: Callable[[], BaseExecutor]) -> None:
    # under the blocking SequentialExecutor the task runs on the outer run's loop thread,
    # so the inner blocking call takes the helper-thread path; elsewhere it runs on a
    # worker thread, which has no loop of its own
    def run_inner() -> Any:
        inner = _sample()
        SequentialExecutor().execute(inner)
        return inner.get_task("process").result  # type: ignore[union-attr]

    wf = Workflow("outer")
    wf.add_task(Task("inner", run_inner))
    wf.execute(outer())
    assert wf.get_task("inner").result == {"processed": "ANN"}  # type: ignore[union-attr]


# The blocking SequentialExecutor calls sync tasks on its own loop thread (by design), so
# only the executors that use worker threads are asked this.
@pytest.mark.parametrize("outer", [f for f in ANY_EXECUTOR if f.__name__ in _ON_WORKERS], ids=_ids)
def test_sync_task_on_a_worker_thread_may_start_an_event_loop(
    outer: Callable[[], BaseExecutor],
) -> None:
    # a sync task that uses a library with a blocking facade over anyio (anyio.run)
    wf = Workflow("own_loop")
    wf.add_task(Task("own", lambda: anyio.run(which_loop)))
    wf.execute(outer())
    assert wf.get_task("own").result == "asyncio"  # type: ignore[union-attr]


def test_blocking_execute_inside_asyncio_run() -> None:
    async def handler() -> Any:
        wf = _sample()
        wf.execute(AsyncExecutor())
        return wf

    _check_sample(asyncio.run(handler()))


def test_blocking_execute_inside_trio_run() -> None:
    async def handler() -> Any:
        wf = _sample()
        ThreadedExecutor().execute(wf)
        return wf

    _check_sample(trio.run(handler))


def test_blocking_execute_leaves_no_loop_behind() -> None:
    wf = _sample()
    SequentialExecutor().execute(wf)
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    # and a new loop can be started in this thread afterwards
    assert anyio.run(which_loop) == "asyncio"
