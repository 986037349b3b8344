"""Executors as objects: the reference's constructors, defaults and refusals of bad input."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import flowweaver.aio
from flowweaver import (
    AsyncExecutor,
    BaseExecutor,
    ConcurrentExecutor,
    SequentialExecutor,
    Task,
    ThreadedExecutor,
    Workflow,
    WorkflowValidationError,
)

ALL = [
    SequentialExecutor,
    ThreadedExecutor,
    ConcurrentExecutor,
    AsyncExecutor,
    flowweaver.aio.SequentialExecutor,
    flowweaver.aio.ThreadedExecutor,
]


def test_reference_defaults() -> None:
    assert SequentialExecutor().state_store is None
    assert ThreadedExecutor().max_workers == 4
    assert AsyncExecutor().max_concurrent == 50
    assert ConcurrentExecutor().max_concurrent == 50
    assert ThreadedExecutor(8).max_workers == 8
    assert AsyncExecutor(10).max_concurrent == 10
    store = object()
    assert SequentialExecutor(store).state_store is store
    assert ThreadedExecutor(2, store).state_store is store
    assert AsyncExecutor(2, store).state_store is store


@pytest.mark.parametrize("cls", ALL)
def test_every_executor_is_a_base_executor_with_options(cls: type[Any]) -> None:
    ex = cls()
    assert isinstance(ex, BaseExecutor)
    assert ex.fail_fast is False
    assert ex.backend == "asyncio"
    assert ex.observer is None
    observer = print
    ex = cls(fail_fast=True, backend="trio", observer=observer)
    assert (ex.fail_fast, ex.backend, ex.observer) == (True, "trio", observer)


@pytest.mark.parametrize("cls", ALL)
def test_options_beyond_the_reference_are_keyword_only(cls: type[Any]) -> None:
    positional = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert [p.name for p in positional][-1] == "state_store"
    with pytest.raises(TypeError):
        cls(*[p.default for p in positional], True)


def test_concurrency_of_each_executor() -> None:
    assert SequentialExecutor().concurrency == 1
    assert flowweaver.aio.SequentialExecutor().concurrency == 1
    assert ThreadedExecutor(max_workers=3).concurrency == 3
    assert AsyncExecutor(max_concurrent=7).concurrency == 7
    assert repr(ThreadedExecutor(max_workers=3)) == "ThreadedExecutor(concurrency=3)"


@pytest.mark.parametrize("value", [0, -1])
def test_max_workers_below_one_is_refused(value: int) -> None:
    with pytest.raises(
        WorkflowValidationError, match=f"max_workers must be at least 1, got {value}"
    ):
        ThreadedExecutor(max_workers=value)
    with pytest.raises(WorkflowValidationError, match="max_workers"):
        flowweaver.aio.ThreadedExecutor(max_workers=value)


@pytest.mark.parametrize("value", [0, -5])
def test_max_concurrent_below_one_is_refused(value: int) -> None:
    with pytest.raises(WorkflowValidationError, match="max_concurrent must be at least 1"):
        AsyncExecutor(max_concurrent=value)
    with pytest.raises(WorkflowValidationError, match="max_concurrent"):
        ConcurrentExecutor(max_concurrent=value)


@pytest.mark.parametrize("value", [2.5, "4", True, None])
def test_bounds_must_be_whole_numbers(value: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="whole number"):
        ThreadedExecutor(max_workers=value)
    with pytest.raises(WorkflowValidationError, match="whole number"):
        AsyncExecutor(max_concurrent=value)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match="backend must be 'asyncio' or 'trio'"):
        SequentialExecutor(backend="curio")  # type: ignore[arg-type]


def test_base_executor_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseExecutor()  # type: ignore[abstract]


def test_awaitable_and_blocking_forms_of_execute() -> None:
    for cls in (AsyncExecutor, flowweaver.aio.SequentialExecutor, flowweaver.aio.ThreadedExecutor):
        assert inspect.iscoroutinefunction(cls.execute), cls
    for cls in (SequentialExecutor, ThreadedExecutor, ConcurrentExecutor):
        assert not inspect.iscoroutinefunction(cls.execute), cls
    assert flowweaver.aio.AsyncExecutor is AsyncExecutor


def test_bad_bounds_raise_before_any_task_runs() -> None:
    ran: list[str] = []
    wf = Workflow("w")
    wf.add_task(Task("a", lambda: ran.append("a")))
    with pytest.raises(WorkflowValidationError):
        wf.execute(ThreadedExecutor(max_workers=0))
    assert ran == []


def test_one_awaitable_executor_serves_runs_on_different_loops() -> None:
    # loop-bound objects (limiters, events) belong to a run, never to the executor
    import anyio

    for cls in (flowweaver.aio.ThreadedExecutor, AsyncExecutor, flowweaver.aio.SequentialExecutor):
        ex = cls()
        for backend in ("asyncio", "trio", "asyncio"):
            wf = Workflow("reused")
            wf.add_task(Task("a", lambda: 1))
            wf.add_task(Task("b", lambda a: a + 1), depends_on=["a"])
            anyio.run(ex.execute, wf, backend=backend)
            assert wf.get_task("b").result == 2  # type: ignore[union-attr]


def test_one_blocking_executor_serves_many_runs_and_threads() -> None:
    import threading

    ex = ThreadedExecutor(max_workers=2)
    results: list[int] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        wf = Workflow(f"wf{n}")
        wf.add_task(Task("v", lambda: n))
        ex.execute(wf)
        with lock:
            results.append(wf.get_task("v").result)  # type: ignore[union-attr]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [0, 1, 2, 3]
