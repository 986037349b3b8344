"""SIGTERM in this process: a blocking run on the main thread handles it as Ctrl-C.

The run is cancelled and cleaned up, the previous handler is put back and called; when it
returns, ``execute`` raises ``SystemExit(143)``. Awaited runs leave signals to the host.
The default handler (which ends the process) is tested in test_signals.py.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import flowweaver
import flowweaver.aio
from flowweaver import Task, TaskStatus, Workflow, WorkflowStatus

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

BLOCKING = [
    flowweaver.SequentialExecutor,
    flowweaver.ThreadedExecutor,
    flowweaver.ConcurrentExecutor,
]


@pytest.fixture
def own_handler() -> Iterator[list[int]]:
    """A SIGTERM handler of the test's own that records each call and returns."""
    calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        yield calls
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sync_terminating() -> None:
    signal.raise_signal(signal.SIGTERM)
    time.sleep(30)  # interrupted well before


async def _async_terminating() -> None:
    signal.raise_signal(signal.SIGTERM)
    await anyio.sleep(30)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("func", [_sync_terminating, _async_terminating], ids=["sync", "async"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor_cls", BLOCKING, ids=lambda c: c.__name__)
def test_sigterm_cancels_a_blocking_run_then_calls_the_previous_handler(
    own_handler: list[int], executor_cls: type, backend: str, func: Any
) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    wf = Workflow("terminated")
    wf.add_task(Task("done", lambda: 1))
    wf.add_task(Task("sleeper", func), depends_on=["done"])
    wf.add_task(Task("after", lambda sleeper: 2), depends_on=["sleeper"])
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        executor_cls(backend=backend).execute(wf)
    assert time.monotonic() - started < 20
    assert info.value.code == 143
    assert own_handler == [signal.SIGTERM]  # called once, after the cleanup
    assert signal.getsignal(signal.SIGTERM) is handler
    assert wf.status is WorkflowStatus.CANCELLED
    assert [t.status for t in wf.tasks] == [
        TaskStatus.COMPLETED,
        TaskStatus.PENDING,
        TaskStatus.PENDING,
    ]


@pytest.mark.parametrize("executor_cls", BLOCKING, ids=lambda c: c.__name__)
def test_a_blocking_run_puts_the_sigterm_handler_back(executor_cls: type) -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[Any] = []
    wf = Workflow("handlers")
    wf.add_task(Task("look", lambda: seen.append(signal.getsignal(signal.SIGTERM))))
    executor_cls().execute(wf)
    assert seen[0] is not before  # the run's own, while it ran
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_sigterm_stays_ignored() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        seen: list[Any] = []
        wf = Workflow("ignored")
        wf.add_task(Task("look", lambda: seen.append(signal.getsignal(signal.SIGTERM))))
        flowweaver.ThreadedExecutor().execute(wf)
        assert seen == [signal.SIG_IGN]
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.anyio
async def test_an_awaited_run_leaves_signal_handlers_to_the_host() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[Any] = []

    async def look() -> None:
        seen.append(signal.getsignal(signal.SIGTERM))

    wf = Workflow("awaited")
    wf.add_task(Task("look", look))
    await flowweaver.aio.ThreadedExecutor().execute(wf)
    assert seen == [before]
