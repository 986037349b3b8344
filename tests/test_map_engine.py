"""Maps: what is not written once for both forms in ``tests/_async/test_map_engine.py``.

Bad settings (refused with the task's name and what to do), ``Task.execute`` of a mapped
task, a cancel scope or Ctrl-C in the middle of a map (cancel scopes are an awaitable-only
idea; Ctrl-C is raised by an item, under every executor, awaited and blocking, on asyncio
and trio), Dask, and a map of 100,000 items.
"""

from __future__ import annotations

import re
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import flowweaver
import flowweaver.aio
from flowweaver import (
    RunFinished,
    Task,
    TaskCancelled,
    TaskStatus,
    Workflow,
    WorkflowStatus,
    WorkflowValidationError,
    task,
)
from tests.helpers import Concurrency, EventLog
from tests.map_helpers import async_forever

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


def _item(src: Any) -> Any:
    return src


# -- bad settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"max_concurrent": 0}, "max_concurrent must be 1 or more, got 0; use None for no bound"),
        ({"max_concurrent": -2}, "max_concurrent must be 1 or more, got -2"),
        ({"max_concurrent": True}, "max_concurrent must be a whole number or None, got True"),
        ({"max_concurrent": 2.0}, "max_concurrent must be a whole number or None, got 2.0"),
        ({"on_item_failure": "x"}, "on_item_failure must be 'fail' or 'skip', got 'x'"),
        ({"map_key": "id"}, "map_key must be a function of one element returning a str, got 'id'"),
        ({"map_over": ""}, "map_over must be the name of an upstream task, got ''"),
        ({"map_over": 3}, "map_over must be the name of an upstream task, got 3"),
        ({"map_over": "p"}, "a task cannot map over itself"),
    ],
    ids=[
        "max_concurrent_0",
        "max_concurrent_negative",
        "max_concurrent_bool",
        "max_concurrent_float",
        "on_item_failure",
        "map_key_not_callable",
        "map_over_empty",
        "map_over_not_str",
        "map_over_itself",
    ],
)
def test_a_bad_map_setting_is_refused_naming_the_task(options: dict[str, Any], says: str) -> None:
    settings = {"map_over": "src", **options}
    with pytest.raises(WorkflowValidationError, match="^task 'p': " + re.escape(says)):
        Task("p", _item, **settings)
    with pytest.raises(WorkflowValidationError, match="^task 'p': " + re.escape(says)):
        task(name="p", **settings)(_item)
    wf = Workflow("w")
    wf.add_task(Task("src", lambda: [1]))
    with pytest.raises(WorkflowValidationError, match="^task 'p': " + re.escape(says)):
        wf.add_task(Task("p", _item), **settings)
    assert wf.get_task("p") is None  # nothing was added


@pytest.mark.parametrize("option", ["map_key", "max_concurrent", "on_item_failure"])
def test_a_map_option_without_map_over_says_to_give_map_over(option: str) -> None:
    value = {"map_key": str, "max_concurrent": 2, "on_item_failure": "skip"}[option]
    says = (
        f"task 'p': {option} applies to the items of a map; give the task "
        "map_over='<upstream task>' too"
    )
    with pytest.raises(WorkflowValidationError, match=re.escape(says)):
        Task("p", _item, **{option: value})
    with pytest.raises(WorkflowValidationError, match=re.escape(says)):
        Workflow("w").add_task(Task("p", _item), **{option: value})


@pytest.mark.parametrize("how", ["task", "add_task"])
def test_a_function_without_the_sources_parameter_is_refused(how: str) -> None:
    wf = Workflow("w")
    wf.add_task(Task("src", lambda: [1]))
    if how == "task":
        add = lambda: wf.add_task(Task("p", lambda element: element, map_over="src"))  # noqa: E731
    else:
        add = lambda: wf.add_task(Task("p", lambda element: element), map_over="src")  # noqa: E731
    with pytest.raises(WorkflowValidationError) as info:
        add()
    assert str(info.value) == (
        "task 'p' maps over 'src' but its function takes no parameter named 'src'; each item "
        "receives its element under that name: add the parameter (or **kwargs)"
    )
    assert wf.get_task("p") is None
    # **kwargs takes it
    took = wf.add_task(Task("p", lambda **upstream: upstream["src"], map_over="src"))
    assert took.map_over == "src"


def test_map_over_an_unknown_task_is_reported_when_the_run_starts() -> None:
    wf = Workflow("w")
    p = wf.add_task(Task("p", lambda nope: nope, map_over="nope"))  # the task may be added later
    assert wf.dependencies("p") == ("nope",)
    with pytest.raises(
        WorkflowValidationError, match="task 'p' depends on 'nope', which is not"
    ) as e:
        flowweaver.SequentialExecutor().execute(wf)
    assert "it is what task 'p' maps over: map_over='nope'" in str(e.value)
    assert p.status is TaskStatus.PENDING
    assert wf.status is WorkflowStatus.IDLE


@pytest.mark.parametrize("name", ["p[0]", "p[x]", "p[a][b]", "p[]"])
def test_a_task_named_as_an_item_of_a_map_is_reported_when_the_run_starts(name: str) -> None:
    # Its record and an item's would be one (a resumed run restored it with the item's
    # result), and wf.get_task could not tell them apart.
    wf = Workflow("w")
    src = wf.add_task(Task("src", lambda: ["x"]))
    wf.add_task(Task("p", _item, map_over="src"))
    wf.add_task(Task(name, lambda: None))
    with pytest.raises(WorkflowValidationError) as info:
        flowweaver.SequentialExecutor().execute(wf)
    assert str(info.value) == (
        f"task {name!r} is named as an item of mapped task 'p' would be (p[<key>]); "
        "rename it, so that the two do not share a record or a name"
    )
    assert src.status is TaskStatus.PENDING  # nothing ran


@pytest.mark.parametrize("name", ["p[0]x", "pp[0]", "[0]", "q[0]"])
def test_other_names_with_brackets_stay_allowed_beside_a_map(name: str) -> None:
    wf = Workflow("w")
    wf.add_task(Task("src", lambda: ["x"]))
    p = wf.add_task(Task("p", _item, map_over="src"))
    wf.add_task(Task(name, lambda: "static"))
    flowweaver.SequentialExecutor().execute(wf)
    assert p.result == ["x"]
    assert wf.get_task(name).result == "static"  # type: ignore[union-attr]


def test_add_task_takes_map_over_as_a_task_or_a_function() -> None:
    @task
    def listing() -> list[int]:
        return [1, 2]

    wf = Workflow("w")
    src = wf.add_task(listing)
    by_task = wf.add_task(Task("a", lambda listing: listing), map_over=src)
    by_function = wf.add_task(Task("b", lambda listing: -listing), map_over=listing)
    assert by_task.map_over == by_function.map_over == "listing"
    flowweaver.SequentialExecutor().execute(wf)
    assert by_task.result == [1, 2]
    assert by_function.result == [-1, -2]


def test_maps_under_dask_are_refused_before_anything_runs() -> None:
    pytest.importorskip("distributed")
    wf = Workflow("w")
    src = wf.add_task(Task("src", lambda: [1]))
    wf.add_task(Task("p", _item, map_over="src"))
    with pytest.raises(WorkflowValidationError, match="maps do not run on a remote executor"):
        flowweaver.DaskExecutor().execute(wf)
    assert src.status is TaskStatus.PENDING


# -- Task.execute -------------------------------------------------------------------------------


def test_task_execute_of_a_mapped_task_runs_the_function_once_on_the_context() -> None:
    calls: list[Any] = []

    def item(src: Any, other: int = 0) -> Any:
        calls.append((src, other))
        return src

    p = Task("p", item, map_over="src", max_concurrent=1)
    assert p.execute({"src": [1, 2, 3], "other": 4}) == [1, 2, 3]
    assert calls == [([1, 2, 3], 4)]  # once, with the context as given: no items
    assert p.status is TaskStatus.COMPLETED
    assert p.items == []


# -- cancellation -------------------------------------------------------------------------------
# Quick (no subprocess, no signal: not `slow`), but a hang must fail: each has a timeout.


async def _quick_or_forever(src: int) -> int:
    if src < 2:
        return src
    await anyio.sleep(30)
    return src


@pytest.mark.timeout(60)
@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
async def test_a_cancel_scope_mid_map_puts_the_items_in_flight_back_to_pending(
    executor_cls: type,
) -> None:
    wf = Workflow("cancelled_map")
    wf.add_task(Task("src", lambda: list(range(6))))
    p = wf.add_task(Task("p", _quick_or_forever, map_over="src", max_concurrent=2))
    wf.add_task(Task("down", lambda p: p), depends_on=["p"])
    log = EventLog(wf)
    started = time.monotonic()
    with anyio.move_on_after(1.0) as scope:  # items 0 and 1 end well before
        await executor_cls(observer=log).execute(wf)
    assert scope.cancelled_caught  # no ExceptionGroup came out instead
    assert time.monotonic() - started < 10
    assert wf.status is WorkflowStatus.CANCELLED
    assert p.status is TaskStatus.PENDING
    assert wf.get_task("down").status is TaskStatus.PENDING  # type: ignore[union-attr]
    statuses = [t.status for t in p.items]
    assert statuses[:2] == [TaskStatus.COMPLETED] * 2
    assert statuses[2:] == [TaskStatus.PENDING] * 4  # in flight, or waiting behind the limit
    # the mapped task and the items in flight were cancelled, and say which item each was
    cancelled = {e.task: e.item for e in log.of(TaskCancelled)}
    in_flight = 1 if executor_cls is flowweaver.aio.SequentialExecutor else 2
    assert cancelled == {"p": None, **{f"p[{k}]": k for k in range(2, 2 + in_flight)}}
    assert log.of(RunFinished)[0].status == "CANCELLED"


def _interrupting_item(src: str) -> Any:
    if src == "ctrl-c":
        time.sleep(0.2)  # while the items after it are in flight (unless one at a time)
        raise KeyboardInterrupt
    return async_forever(src)


def _interrupted_map() -> tuple[Workflow, Task]:
    wf = Workflow("interrupted_map")
    wf.add_task(Task("src", lambda: ["ctrl-c", "a", "b", "c", "d"]))
    p = wf.add_task(Task("p", _interrupting_item, map_over="src", max_concurrent=3))
    wf.add_task(Task("clean_up", lambda: None, trigger="all_done"), depends_on=["p"])
    return wf, p


def _check_interrupted(wf: Workflow, p: Task) -> None:
    assert wf.status is WorkflowStatus.CANCELLED
    assert not wf._running
    assert p.status is TaskStatus.PENDING
    assert [t.status for t in p.items] == [TaskStatus.PENDING] * 5
    assert wf.get_task("clean_up").status is TaskStatus.PENDING  # type: ignore[union-attr]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor_cls", AIO, ids=lambda c: c.__name__)
def test_ctrl_c_raised_by_an_item_of_an_awaited_run_comes_out_bare(
    executor_cls: type, backend: str
) -> None:
    wf, p = _interrupted_map()

    async def main() -> None:
        await executor_cls().execute(wf)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):  # not a group holding one
        anyio.run(main, backend=backend)
    assert time.monotonic() - started < 10
    _check_interrupted(wf, p)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor_cls", BLOCKING, ids=lambda c: c.__name__)
def test_ctrl_c_raised_by_an_item_of_a_blocking_run_comes_out_bare(
    executor_cls: type, backend: str
) -> None:
    wf, p = _interrupted_map()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        executor_cls(backend=backend).execute(wf)
    assert time.monotonic() - started < 10
    _check_interrupted(wf, p)


# -- a large map -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.anyio
async def test_a_map_of_100_000_items_stays_within_the_executors_bound() -> None:
    counter = Concurrency()

    async def tiny(src: int) -> int:
        counter.enter()
        await anyio.lowlevel.checkpoint()
        counter.leave()
        return src

    wf = Workflow("large_map")
    wf.add_task(Task("src", lambda: range(100_000)))
    p = wf.add_task(Task("p", tiny, map_over="src"))
    wf.add_task(Task("total", lambda p: sum(p)), depends_on=["p"])
    started = time.monotonic()
    await flowweaver.aio.AsyncExecutor(max_concurrent=50).execute(wf)
    assert time.monotonic() - started < 90
    assert wf.get_task("total").result == sum(range(100_000))  # type: ignore[union-attr]
    assert len(p.items) == 100_000
    assert p.items[-1].name == "p[99999]"
    assert 1 <= counter.peak <= 50  # items start as slots free up, not all up front
