"""A KeyboardInterrupt raised in any of a run's own tasks comes out of ``execute`` bare.

trio delivers Ctrl-C into whichever task happens to run, and a task group wraps what its
children raise in a ``BaseExceptionGroup``; asyncio lets a KeyboardInterrupt raised in a
child task tear the loop down under the run. Either way the user would not get the
``KeyboardInterrupt`` a Ctrl-C means, and the cleanup could be skipped. Here the
interrupt is raised on purpose in each kind of child task of a run (a lane, the worker
pool's driver, a retry timer, the async observer's delivery, callbacks, the store
writer), under every executor, awaited and blocking, on asyncio and trio. Real Ctrl-C at
random moments is in test_signals.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
import pytest

import flowweaver
import flowweaver.aio
from flowweaver import (
    RunEvent,
    Task,
    TaskCompleted,
    TaskStarted,
    TaskStatus,
    Workflow,
    WorkflowStatus,
)

AIO = [
    flowweaver.aio.SequentialExecutor,
    flowweaver.aio.ThreadedExecutor,
    flowweaver.aio.AsyncExecutor,
]
BLOCKING = [
    flowweaver.SequentialExecutor,
    flowweaver.ThreadedExecutor,
    flowweaver.ConcurrentExecutor,
]


def _interrupt(*args: Any) -> Any:
    raise KeyboardInterrupt


async def _async_interrupt(*args: Any) -> Any:
    await anyio.lowlevel.checkpoint()
    raise KeyboardInterrupt


def _on(kind: type[RunEvent], attempt: int | None = None, is_async: bool = False) -> Any:
    """An observer that raises KeyboardInterrupt on the first event of ``kind``."""

    def matches(event: RunEvent) -> bool:
        return isinstance(event, kind) and (attempt is None or event.attempt == attempt)  # type: ignore[attr-defined]

    if is_async:

        async def async_observer(event: RunEvent) -> None:
            await anyio.lowlevel.checkpoint()
            if matches(event):
                raise KeyboardInterrupt

        return async_observer

    def observer(event: RunEvent) -> None:
        if matches(event):
            raise KeyboardInterrupt

    return observer


class _InterruptingStore(flowweaver.aio.BaseStateStore):
    async def save_task_state(
        self, task_name: str, status: TaskStatus, result: Any, error: Any, timestamp: datetime
    ) -> None:
        raise KeyboardInterrupt

    async def load_task_state(self, task_name: str) -> dict[str, Any] | None:
        return None

    async def delete_task_state(self, task_name: str) -> None:
        pass

    async def list_all_tasks(self) -> list[str]:
        return []

    async def clear_all_states(self) -> None:
        pass


class _BlockingInterruptingStore(flowweaver.BaseStateStore):
    def save_task_state(
        self, task_name: str, status: TaskStatus, result: Any, error: Any, timestamp: datetime
    ) -> None:
        raise KeyboardInterrupt

    def load_task_state(self, task_name: str) -> dict[str, Any] | None:
        return None

    def delete_task_state(self, task_name: str) -> None:
        pass

    def list_all_tasks(self) -> list[str]:
        return []

    def clear_all_states(self) -> None:
        pass


async def _slow(first: Any) -> None:
    await anyio.sleep(30)


class _Failing:
    """Fails its first call, then returns."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("first attempt fails")
        return "second"


def _setup(where: str, blocking: bool) -> tuple[Workflow, dict[str, Any]]:
    """A workflow and executor keywords that raise KeyboardInterrupt at ``where``."""
    wf = Workflow("interrupted")
    kwargs: dict[str, Any] = {}
    first = Task("first", lambda: 1)
    if where == "async_task":
        first = Task("first", _async_interrupt)
    elif where == "sync_task":
        first = Task("first", _interrupt)
    elif where == "retry_timer":
        # TaskStarted of the second attempt is emitted by the retry timer's task
        first = Task("first", _Failing(), retries=1, retry_delay=0.05)
        kwargs["observer"] = _on(TaskStarted, attempt=2)
    elif where == "sync_observer":
        kwargs["observer"] = _on(TaskCompleted)
    elif where == "async_observer":
        kwargs["observer"] = _on(TaskCompleted, is_async=True)
    elif where == "sync_callback":
        first = Task("first", lambda: 1, callbacks=[_interrupt])
    elif where == "async_callback":
        first = Task("first", lambda: 1, callbacks=[_async_interrupt])
    elif where == "store_writer":
        kwargs["state_store"] = _BlockingInterruptingStore() if blocking else _InterruptingStore()
    wf.add_task(first)
    wf.add_task(Task("slow", _slow), depends_on=["first"])
    wf.add_task(Task("other", lambda: 2))
    return wf, kwargs


WHERE = [
    "async_task",
    "sync_task",
    "retry_timer",
    "sync_observer",
    "async_observer",
    "sync_callback",
    "async_callback",
    "store_writer",
]


def _check_cleaned_up(wf: Workflow) -> None:
    statuses = {t.name: t.status for t in wf.tasks}
    assert TaskStatus.RUNNING not in statuses.values(), statuses
    assert TaskStatus.RETRYING not in statuses.values(), statuses
    assert wf.status is WorkflowStatus.CANCELLED
    assert not wf._running


def _expect_bare_interrupt(call: Callable[[], Any]) -> None:
    try:
        call()
    except KeyboardInterrupt:
        return
    except BaseException as exc:  # a group, say: what this test is about
        raise AssertionError(f"expected a bare KeyboardInterrupt, got {exc!r}") from exc
    raise AssertionError("the run was not interrupted")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
def test_an_awaited_run_raises_a_bare_keyboard_interrupt(
    executor_cls: type, backend: str, where: str
) -> None:
    wf, kwargs = _setup(where, blocking=False)

    async def main() -> None:
        await executor_cls(**kwargs).execute(wf)

    _expect_bare_interrupt(lambda: anyio.run(main, backend=backend))
    _check_cleaned_up(wf)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor_cls", BLOCKING, ids=lambda c: c.__name__)
def test_a_blocking_run_raises_a_bare_keyboard_interrupt(
    executor_cls: type, backend: str, where: str
) -> None:
    wf, kwargs = _setup(where, blocking=True)
    _expect_bare_interrupt(lambda: executor_cls(backend=backend, **kwargs).execute(wf))
    _check_cleaned_up(wf)


class _Probe:
    """Stands in for an anyio Event: records whether Ctrl-C could land inside its wait."""

    def __init__(self) -> None:
        self.protected: list[bool] = []

    async def wait(self) -> None:
        import trio

        self.protected.append(trio.lowlevel.currently_ki_protected())


def test_ctrl_c_cannot_land_halfway_into_an_engine_wait_under_trio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """trio's Event.wait registers the task before it blocks, unprotected in between: a
    KeyboardInterrupt there left a finished task registered, and the set() that came
    later crashed trio (TrioInternalError, once in about fifty real Ctrl-Cs). A run marks
    the engine's waits protected, so that trio hands the interrupt to the main task at a
    checkpoint instead."""
    import trio

    from flowweaver._engine import _sigint

    marked: list[object] = []
    real = trio.lowlevel.enable_ki_protection

    def record(f: Any) -> Any:
        marked.append(f)
        return real(f)

    monkeypatch.setattr(_sigint, "_protected", False)
    monkeypatch.setattr(trio.lowlevel, "enable_ki_protection", record)
    wf = Workflow("one")
    wf.add_task(Task("a", lambda: 1))
    probe = _Probe()

    async def main() -> None:
        await flowweaver.aio.AsyncExecutor().execute(wf)
        await _sigint.wait_event(probe)  # type: ignore[arg-type]

    trio.run(main)
    assert marked == [_sigint.wait_event]
    assert probe.protected == [True]
    # while user code called from a run's tasks stays interruptible, as trio promises
    seen: list[bool] = []

    async def user_task() -> None:
        seen.append(trio.lowlevel.currently_ki_protected())

    wf2 = Workflow("two")
    wf2.add_task(Task("b", user_task))
    trio.run(flowweaver.aio.AsyncExecutor().execute, wf2)
    assert seen == [False]
