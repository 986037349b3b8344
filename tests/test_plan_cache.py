"""A workflow keeps its plan between runs (issue 15), and never runs on a stale one.

A plan (each task's kind, the upstream results it receives) is made by the first run of a
workflow for each kind of executor and taken by the next ones; adding a task, or giving a
task another function, timeout or isolation, makes the next run plan again. Each test
changes the workflow in one way after a run and checks that the next run sees it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import flowweaver.aio
from flowweaver import (
    SequentialExecutor,
    Task,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
)
from flowweaver._engine import _plan
from flowweaver._engine._plan import ASYNC, INLINE, POOL, PROCESS, TIMED, cached_plan
from flowweaver._errors import TaskTimeoutError


@pytest.fixture
def plans_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a run planned (the length of the list)."""
    made: list[int] = []
    real = _plan.plan

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_plan, "plan", counting)
    return made


def _pair() -> Workflow:
    wf = Workflow("pair")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda a: a + 1), depends_on=["a"])
    return wf


def _result(wf: Workflow, name: str) -> Any:
    found = wf.get_task(name)
    assert found is not None
    return found.result


def test_a_second_run_of_an_unchanged_workflow_does_not_plan_again(plans_made: list[int]) -> None:
    wf = _pair()
    SequentialExecutor().execute(wf)
    SequentialExecutor().execute(wf)
    SequentialExecutor().execute(wf)
    assert len(plans_made) == 1
    assert _result(wf, "b") == 2


def test_each_kind_of_executor_has_a_plan_of_its_own(plans_made: list[int]) -> None:
    wf = _pair()
    for _ in range(2):
        SequentialExecutor().execute(wf)  # inline calls
        ThreadedExecutor(2).execute(wf)  # the worker pool
        assert _result(wf, "b") == 2
    assert len(plans_made) == 2
    inline = wf._plans[(True, False, "thread")].kinds
    pooled = wf._plans[(False, False, "thread")].kinds
    assert (inline, pooled) == ([INLINE, INLINE], [POOL, POOL])


def test_adding_a_task_after_a_run_plans_again(plans_made: list[int]) -> None:
    wf = _pair()
    SequentialExecutor().execute(wf)
    wf.add_task(Task("c", lambda a, b: a * 10 + b), depends_on=["a", "b"])
    SequentialExecutor().execute(wf)
    assert len(plans_made) == 2
    assert _result(wf, "c") == 12


def test_adding_a_task_by_function_or_with_options_plans_again() -> None:
    wf = _pair()
    SequentialExecutor().execute(wf)

    def d(b: int) -> int:
        return b * 100

    wf.add_task(d, depends_on=["b"])
    SequentialExecutor().execute(wf)
    assert _result(wf, "d") == 200
    wf.add_task(Task("e", lambda b: b + 5), depends_on=["b"], trigger="all_done")
    SequentialExecutor().execute(wf)
    assert _result(wf, "e") == 7


def test_a_task_given_a_timeout_after_a_run_is_timed_on_the_next() -> None:
    wf = Workflow("slow")
    slow = wf.add_task(Task("slow", lambda: time.sleep(0.5)))
    SequentialExecutor().execute(wf)  # planned: called inline, no deadline
    slow.timeout = 0.05
    with pytest.raises(WorkflowExecutionError):
        SequentialExecutor().execute(wf)
    assert isinstance(slow.error, TaskTimeoutError)
    assert wf._plans[(True, False, "thread")].kinds == [TIMED]


def test_a_task_given_a_function_after_a_run_receives_what_the_new_one_takes() -> None:
    wf = _pair()
    b = wf.get_task("b")
    assert b is not None
    SequentialExecutor().execute(wf)
    b.func = lambda: "no upstream"  # takes nothing now: a stale plan would pass a=1
    SequentialExecutor().execute(wf)
    assert b.result == "no upstream"
    b.func = lambda **kw: sorted(kw.items())  # and now everything
    SequentialExecutor().execute(wf)
    assert b.result == [("a", 1)]


def test_a_task_given_an_async_function_after_a_run_is_awaited() -> None:
    wf = _pair()
    b = wf.get_task("b")
    assert b is not None
    SequentialExecutor().execute(wf)

    async def later(a: int) -> int:
        return a + 40

    b.func = later
    SequentialExecutor().execute(wf)
    assert b.result == 41
    assert wf._plans[(True, False, "thread")].kinds == [INLINE, ASYNC]


def test_a_task_given_an_isolation_after_a_run_is_planned_for_it() -> None:
    wf = _pair()
    SequentialExecutor().execute(wf)
    a = wf.get_task("a")
    assert a is not None
    a.isolation = "process"
    found = cached_plan(wf._plans, wf.graph(), wf._tasks, True, False, "thread")
    assert found.kinds == [PROCESS, INLINE]


def test_an_invalid_graph_is_refused_at_every_run_until_it_is_mended() -> None:
    wf = Workflow("mended")
    wf.add_task(Task("b", lambda a: a), depends_on=["a"])
    for _ in range(2):
        with pytest.raises(WorkflowValidationError, match="'a', which is not a task"):
            SequentialExecutor().execute(wf)
    wf.add_task(Task("a", lambda: 3))
    SequentialExecutor().execute(wf)
    assert _result(wf, "b") == 3


def test_a_run_of_part_of_a_workflow_leaves_its_plan_alone(plans_made: list[int]) -> None:
    wf = _pair()
    wf.add_task(Task("c", lambda b: b * 3), depends_on=["b"])
    SequentialExecutor().execute(wf)
    SequentialExecutor().execute(wf, targets=["b"])  # a graph of its own: planned anew
    SequentialExecutor().execute(wf)
    assert len(plans_made) == 2
    assert _result(wf, "c") == 6


def test_a_subset_plans_for_itself_and_sees_changes_to_the_tasks_it_shares() -> None:
    wf = _pair()
    part = wf.subset(targets=["b"])
    SequentialExecutor().execute(part)
    b = wf.get_task("b")
    assert b is not None
    b.func = lambda: "changed in the whole"
    SequentialExecutor().execute(part)
    assert b.result == "changed in the whole"


@pytest.mark.anyio
async def test_awaited_runs_share_the_plan_and_see_changes(plans_made: list[int]) -> None:
    wf = _pair()
    await flowweaver.aio.SequentialExecutor().execute(wf)
    await flowweaver.aio.SequentialExecutor().execute(wf)
    assert len(plans_made) == 1
    b = wf.get_task("b")
    assert b is not None

    async def awaited(a: int) -> int:
        return a - 1

    b.func = awaited
    await flowweaver.aio.SequentialExecutor().execute(wf)
    assert b.result == 0
    assert len(plans_made) == 2


def test_runs_on_several_threads_at_once_each_plan_or_share_a_whole_plan() -> None:
    # Runs of one workflow never overlap (the second is refused), but they plan before
    # that check: planning on many threads at once must give each a complete plan.
    wf = Workflow("many")
    for i in range(200):
        wf.add_task(Task(f"t{i}", lambda **kw: len(kw)), depends_on=[f"t{i - 1}"] if i else [])
    graph = wf.graph()
    barrier = threading.Barrier(8)
    found: list[Any] = []

    def plan_one() -> None:
        barrier.wait(5)
        found.append(cached_plan(wf._plans, graph, wf._tasks, True, False, "thread"))

    threads = [threading.Thread(target=plan_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(found) == 8
    for p in found:
        assert p.kinds == [INLINE] * 200
        assert p.inject == graph.upstream
    SequentialExecutor().execute(wf)
    assert _result(wf, "t199") == 1


def test_tasks_sharing_a_function_are_planned_from_one_reading_of_it() -> None:
    # A plan reads each function once (async? which keywords?) and shares it between the
    # tasks that hold it; tasks with other functions keep their own reading, and a
    # callable object that cannot be hashed is a function like any other.
    class Unhashable:
        def __eq__(self, other: object) -> bool:
            return self is other

        __hash__ = None  # type: ignore[assignment]

        def __call__(self, src: int, other: int = 0) -> int:
            return src + other

    def takes_src(src: int) -> int:
        return src * 10

    def takes_any(**upstream: int) -> int:
        return sum(upstream.values())

    async def awaited(src: int) -> int:
        return src + 1

    wf = Workflow("shared")
    wf.add_task(Task("src", lambda: 1))
    wf.add_task(Task("side", lambda: 100))
    for i in range(3):
        wf.add_task(Task(f"a{i}", takes_src), depends_on=["src", "side"])
        wf.add_task(Task(f"k{i}", takes_any), depends_on=["src", "side"])
        wf.add_task(Task(f"w{i}", awaited), depends_on=["src", "side"])
    odd = Unhashable()
    wf.add_task(Task("odd", odd), depends_on=["src", "side"])
    SequentialExecutor().execute(wf)
    for i in range(3):
        assert wf.get_task(f"a{i}").result == 10  # type: ignore[union-attr]
        assert wf.get_task(f"k{i}").result == 101  # type: ignore[union-attr]
        assert wf.get_task(f"w{i}").result == 2  # type: ignore[union-attr]
    assert wf.get_task("odd").result == 1  # type: ignore[union-attr]
    planned = cached_plan(wf._plans, wf.graph(), wf._tasks, True, False, "thread")
    kinds = dict(zip(wf.graph().names, planned.kinds, strict=True))
    assert {kinds[f"a{i}"] for i in range(3)} == {INLINE}
    assert {kinds[f"w{i}"] for i in range(3)} == {ASYNC}
