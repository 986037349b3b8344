"""The ``Workflow`` container: building, reading, bad input, and runs that may not overlap."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

import flowweaver.aio
from flowweaver import (
    SequentialExecutor,
    Task,
    TaskStatus,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
    WorkflowValidationError,
    task,
)


def test_workflow_has_name_description_and_idle_status() -> None:
    wf = Workflow(name="data_pipeline", description="ETL pipeline for customer data")
    assert wf.name == "data_pipeline"
    assert wf.description == "ETL pipeline for customer data"
    assert wf.status is WorkflowStatus.IDLE
    assert wf.tasks == []
    assert Workflow("x").description is None
    assert repr(wf) == "<Workflow 'data_pipeline' tasks=0 IDLE>"


@pytest.mark.parametrize("name", ["", None, 3])
def test_workflow_name_must_be_a_non_empty_string(name: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="workflow name"):
        Workflow(name)


def test_add_task_returns_the_task_and_keeps_order() -> None:
    wf = Workflow("w")
    a = Task("a", lambda: 1)
    assert wf.add_task(a, depends_on=[]) is a

    @task()
    def b() -> int:
        return 2

    added = wf.add_task(b, depends_on=["a"])
    assert isinstance(added, Task)
    assert [t.name for t in wf.tasks] == ["a", "b"]
    assert wf.get_task("a") is a
    assert wf.get_task("b") is added
    assert wf.get_task("missing") is None
    assert wf.dependencies("b") == ("a",)
    assert wf.dependencies("a") == ()
    with pytest.raises(KeyError):
        wf.dependencies("missing")


def test_tasks_is_a_copy() -> None:
    wf = Workflow("w")
    wf.add_task(Task("a", lambda: 1))
    wf.tasks.clear()
    assert len(wf.tasks) == 1


def test_duplicate_task_name_is_refused() -> None:
    wf = Workflow("w")
    wf.add_task(Task("a", lambda: 1))
    with pytest.raises(WorkflowValidationError, match="already has a task named 'a'"):
        wf.add_task(Task("a", lambda: 2))
    assert len(wf.tasks) == 1


def test_duplicate_decorated_function_is_refused() -> None:
    @task
    def twice() -> None:
        pass

    wf = Workflow("w")
    wf.add_task(twice)
    with pytest.raises(WorkflowValidationError, match="unique"):
        wf.add_task(twice)


def test_depends_on_as_a_bare_string_is_refused_with_the_fix() -> None:
    wf = Workflow("w")
    wf.add_task(Task("fetch", lambda: 1))
    with pytest.raises(WorkflowValidationError) as info:
        wf.add_task(Task("process", lambda: 2), depends_on="fetch")  # type: ignore[arg-type]
    assert "depends_on=['fetch']" in str(info.value)
    assert wf.get_task("process") is None


@pytest.mark.parametrize("deps", [42, [42], [None]])
def test_depends_on_of_the_wrong_kind_is_refused(deps: Any) -> None:
    with pytest.raises(WorkflowValidationError, match=r"depends_on|dependency"):
        Workflow("w").add_task(Task("t", lambda: 1), depends_on=deps)


@pytest.mark.parametrize("thing", [42, "fetch", None, [lambda: 1]])
def test_add_task_refuses_what_is_neither_task_nor_callable(thing: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="add_task takes a Task or a function"):
        Workflow("w").add_task(thing)


def test_dependency_on_a_task_added_later_is_fine() -> None:
    wf = Workflow("w")
    wf.add_task(Task("b", lambda a: a + 1), depends_on=["a"])
    wf.add_task(Task("a", lambda: 1))
    SequentialExecutor().execute(wf)
    assert wf.get_task("b").result == 2  # type: ignore[union-attr]


def test_clear_results_drops_results_and_keeps_statuses() -> None:
    wf = Workflow("w")
    wf.add_task(Task("a", lambda: {"big": list(range(100))}))
    wf.add_task(Task("bad", lambda: 1 / 0))
    with pytest.raises(WorkflowExecutionError, match="bad"):
        SequentialExecutor().execute(wf)
    wf.clear_results()
    a = wf.get_task("a")
    bad = wf.get_task("bad")
    assert a is not None
    assert bad is not None
    assert a.snapshot() == (TaskStatus.COMPLETED, None, None)
    assert bad.status is TaskStatus.FAILED
    assert isinstance(bad.error, ZeroDivisionError)
    assert wf.status is WorkflowStatus.FAILED


def test_execute_refuses_something_that_is_not_an_executor() -> None:
    wf = Workflow("w")
    with pytest.raises(WorkflowValidationError, match="needs an executor"):
        wf.execute("sequential")  # type: ignore[arg-type]


def _blocked_workflow() -> tuple[Workflow, threading.Event, threading.Event]:
    entered = threading.Event()
    release = threading.Event()

    def hold() -> str:
        entered.set()
        release.wait(10)
        return "held"

    wf = Workflow("busy")
    wf.add_task(Task("hold", hold))
    return wf, entered, release


def test_running_the_same_workflow_twice_at_once_raises() -> None:
    wf, entered, release = _blocked_workflow()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            ThreadedExecutor().execute(wf)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    runner = threading.Thread(target=first)
    runner.start()
    try:
        assert entered.wait(5)
        with pytest.raises(WorkflowValidationError, match="already running"):
            SequentialExecutor().execute(wf)
        with pytest.raises(WorkflowValidationError, match="while workflow 'busy' is running"):
            wf.add_task(Task("late", lambda: None))
        with pytest.raises(WorkflowValidationError, match="is running"):
            wf.clear_results()
        assert wf.status is WorkflowStatus.RUNNING
    finally:
        release.set()
        runner.join(10)
    assert errors == []
    # the refused second run did not disturb the first
    assert wf.get_task("hold").result == "held"  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_awaiting_the_same_workflow_twice_at_once_raises() -> None:
    wf, entered, release = _blocked_workflow()
    refused: list[BaseException] = []

    async def second() -> None:
        await anyio.to_thread.run_sync(entered.wait, 5)
        try:
            await flowweaver.aio.SequentialExecutor().execute(wf)
        except WorkflowValidationError as exc:
            refused.append(exc)
        finally:
            release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(flowweaver.aio.ThreadedExecutor().execute, wf)
        tg.start_soon(second)
    assert len(refused) == 1
    assert "already running" in str(refused[0])
    assert wf.status is WorkflowStatus.COMPLETED
