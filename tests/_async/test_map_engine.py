"""Maps under every executor, asyncio and trio: a task run once per element of a list.

Items are tasks of their own (``p[0]``, ``p[<key>]``) with their own attempts, retries,
timeouts, callbacks and events; the mapped task's result is their results in element
order. What is not about awaiting (settings, ``Task.execute``, cancellation, a map of
100,000 items) is in ``tests/test_map_engine.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flowweaver import (
    SKIPPED,
    Failed,
    ItemsFailedError,
    MapError,
    Skip,
    Task,
    TaskCompleted,
    TaskFailed,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskStatus,
    TaskTimeoutError,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
    task,
)
from tests.helpers import CallbackLog, Concurrency, EventLog, final_statuses
from tests.map_helpers import (
    Failing,
    async_forever,
    counted_item,
    in_form,
    sleeping_item,
)


def _map_workflow(
    values: Any, item: Any, name: str = "maps", **options: Any
) -> tuple[Workflow, Task]:
    """``src`` returns ``values``; ``p`` maps ``item`` over it; ``down`` takes p's list."""
    wf = Workflow(name)
    wf.add_task(Task("src", lambda: values))
    p = wf.add_task(Task("p", item, map_over="src", **options))
    wf.add_task(Task("down", lambda p: list(p)), depends_on=["p"])
    return wf, p


# -- results, naming, events -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_items_get_their_element_and_the_results_come_in_element_order(
    executor_cls: type, form: str
) -> None:
    seen: list[tuple[Any, Any]] = []
    lock = threading.Lock()

    def record(src: int, config: dict[str, int]) -> int:
        with lock:
            seen.append((src, config))
        return src * config["factor"]

    n = 6
    # the later the element, the sooner its item ends (under the parallel executors)
    item = sleeping_item(form, record, lambda src: (n - src) * 0.02)

    wf = Workflow("ordered")
    wf.add_task(Task("src", lambda: iter(range(n))))  # any iterable
    wf.add_task(Task("config", lambda: {"factor": 10}))
    p = wf.add_task(Task("p", item, map_over="src"), depends_on=["config"])
    wf.add_task(Task("total", lambda p, config: (list(p), config)), depends_on=["p", "config"])
    await executor_cls().execute(wf)
    assert p.result == [0, 10, 20, 30, 40, 50]
    assert wf.get_task("total").result == ([0, 10, 20, 30, 40, 50], {"factor": 10})  # type: ignore[union-attr]
    # each item got its element under the source's name, and the other upstream result whole
    assert sorted(seen, key=lambda pair: pair[0]) == [(k, {"factor": 10}) for k in range(n)]
    assert p.status is TaskStatus.COMPLETED
    assert wf.status is WorkflowStatus.COMPLETED
    assert [t.name for t in p.items] == [f"p[{k}]" for k in range(n)]
    assert [t.item for t in p.items] == list(range(n))
    assert [t.result for t in p.items] == p.result
    assert all(t.status is TaskStatus.COMPLETED and t.attempts == 1 for t in p.items)
    third = wf.get_task("p[3]")
    assert third is p.items[3]
    assert third.result == 30
    assert wf.get_task("p[6]") is None
    assert wf.get_task("p[x]") is None
    # items are not tasks of the workflow
    assert [t.name for t in wf.tasks] == ["src", "config", "p", "total"]


@pytest.mark.anyio
async def test_map_key_names_the_items_and_events_carry_the_key(executor_cls: type) -> None:
    log = EventLog()
    rows = [{"id": "b", "v": 1}, {"id": "a", "v": 2}, {"id": "c", "v": 3}]
    wf, p = _map_workflow(rows, lambda src: src["v"] * 2, map_key=lambda row: row["id"])
    await executor_cls(observer=log).execute(wf)
    assert p.result == [2, 4, 6]
    assert [t.name for t in p.items] == ["p[b]", "p[a]", "p[c]"]
    assert [t.item for t in p.items] == ["b", "a", "c"]
    assert wf.get_task("p[a]").result == 4  # type: ignore[union-attr]
    assert wf.get_task("p[1]") is None
    started = {e.task: e.item for e in log.of(TaskStarted)}
    completed = {e.task: e.item for e in log.of(TaskCompleted)}
    expected = {"src": None, "p": None, "p[b]": "b", "p[a]": "a", "p[c]": "c", "down": None}
    assert started == completed == expected
    assert wf.get_task("down").result == [2, 4, 6]  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_every_kind_of_item_event_carries_the_item(executor_cls: type, form: str) -> None:
    failing = Failing(bad={1}, flaky={2})

    def item(src: int) -> Any:
        if src == 3:
            raise Skip("nothing for 3")
        return failing(src)

    log = EventLog()
    wf, p = _map_workflow(range(5), in_form(form, item), retries=1, on_item_failure="skip")
    await executor_cls(observer=log).execute(wf)  # the failed item is dropped: no error
    for kind, expected in [
        (TaskStarted, {"p[0]": 0, "p[1]": 1, "p[2]": 2, "p[3]": 3, "p[4]": 4}),
        (TaskCompleted, {"p[0]": 0, "p[2]": 2, "p[4]": 4}),
        (TaskFailed, {"p[1]": 1}),
        (TaskRetrying, {"p[1]": 1, "p[2]": 2}),
        (TaskSkipped, {"p[3]": 3}),
    ]:
        events = [e for e in log.of(kind) if e.task.startswith("p[")]
        assert {e.task: e.item for e in events} == expected, kind
    (skipped,) = log.of(TaskSkipped)
    assert skipped.reason == "nothing for 3"
    # the mapped task's own events carry no item
    assert [e.item for e in log.of(TaskStarted) if e.task == "p"] == [None]
    assert [e.item for e in log.of(TaskCompleted) if e.task == "p"] == [None]
    assert p.result == [0, 20, 40]


# -- retries, timeouts, callbacks --------------------------------------------------------------


@pytest.mark.anyio
async def test_each_item_has_its_own_retries_and_attempts(executor_cls: type) -> None:
    failing = Failing(bad={3}, flaky={0, 1, 2})
    wf, p = _map_workflow(range(5), failing, retries=2, on_item_failure="skip")
    await executor_cls().execute(wf)
    assert p.result == [0, 10, 20, 40]
    # every item retried on its own: a flaky one twice in all, the bad one 1 + 2 retries
    assert failing.calls == {0: 2, 1: 2, 2: 2, 3: 3, 4: 1}
    assert [t.attempts for t in p.items] == [2, 2, 2, 3, 1]
    assert p.items[3].status is TaskStatus.FAILED
    assert str(p.items[3].error) == "element 3 broke (attempt 3)"
    assert p.failed_items == ["p[3]"]
    assert p.attempts == 1  # the mapped task itself ran (expanded) once


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_each_item_has_its_own_timeout(executor_cls: type, form: str) -> None:
    # element 1 outlasts the timeout; the rest finish well within it
    item = sleeping_item(form, lambda src: src, lambda src: 1.5 if src == 1 else 0.0)
    wf, p = _map_workflow(range(3), item, timeout=0.5, on_item_failure="skip")
    await executor_cls().execute(wf)
    assert p.result == [0, 2]
    assert p.failed_items == ["p[1]"]
    error = p.items[1].error
    assert isinstance(error, TaskTimeoutError)
    assert error.task_name == "p[1]"
    assert [t.status for t in p.items] == [
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
    ]
    assert wf.get_task("down").result == [0, 2]  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "coroutine"])
async def test_callbacks_are_called_once_per_item_with_the_item(
    executor_cls: type, kind: str
) -> None:
    callbacks = CallbackLog()
    callback = callbacks.sync if kind == "sync" else callbacks.coroutine
    wf, _ = _map_workflow(["x", "y", "z"], lambda src: src.upper(), callbacks=[callback])
    await executor_cls().execute(wf)
    assert sorted(callbacks.calls) == [
        ("p", TaskStatus.COMPLETED, ["X", "Y", "Z"]),
        ("p[0]", TaskStatus.COMPLETED, "X"),
        ("p[1]", TaskStatus.COMPLETED, "Y"),
        ("p[2]", TaskStatus.COMPLETED, "Z"),
    ]


# -- max_concurrent ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_max_concurrent_bounds_the_items_in_flight(make_parallel: Any, form: str) -> None:
    counter = Concurrency()
    wf, p = _map_workflow(range(12), counted_item(counter, form, 0.05), max_concurrent=3)
    await make_parallel(bound=8).execute(wf)
    assert p.result == list(range(12))
    assert 1 <= counter.peak <= 3
    assert counter.now == 0


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_the_executors_bound_holds_for_items_and_other_tasks_too(
    make_parallel: Any, form: str
) -> None:
    counter = Concurrency()
    sleeping = counter.sync_sleeper if form == "sync" else counter.async_sleeper
    wf = Workflow("bounded")
    wf.add_task(Task("src", lambda: list(range(8))))
    wf.add_task(Task("p", counted_item(counter, form, 0.05), map_over="src", max_concurrent=10))
    wf.add_task(Task("q", counted_item(counter, form, 0.05), map_over="src", max_concurrent=2))
    for k in range(3):
        wf.add_task(Task(f"static{k}", sleeping(0.05)), depends_on=["src"])
    await make_parallel(bound=3).execute(wf)
    assert wf.get_task("p").result == wf.get_task("q").result == list(range(8))  # type: ignore[union-attr]
    assert 1 <= counter.peak <= 3


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_max_concurrent_one_runs_items_one_at_a_time_in_order(
    make_parallel: Any, form: str
) -> None:
    counter = Concurrency()
    wf, p = _map_workflow(range(6), counted_item(counter, form, 0.01), max_concurrent=1)
    await make_parallel(bound=4).execute(wf)
    assert counter.peak == 1
    assert counter.order == [f"p[{k}]" for k in range(6)]  # items are let in in order
    assert p.result == list(range(6))


# -- failures --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_failed_item_fails_the_map_after_the_other_items_finish(
    executor_cls: type,
) -> None:
    failing = Failing(bad={1, 3})
    log = EventLog()
    wf, p = _map_workflow(range(5), failing)
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls(observer=log).execute(wf)
    assert sorted(failing.calls) == [0, 1, 2, 3, 4]  # the others still ran
    assert [t.status for t in p.items] == [
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
    ]
    assert p.status is TaskStatus.FAILED
    error = p.error
    assert isinstance(error, ItemsFailedError)
    assert str(error) == (
        "2 of 5 items of task 'p' failed: p[1] (ValueError: element 1 broke (attempt 1)), "
        "p[3] (ValueError: element 3 broke (attempt 1))"
    )
    assert list(error.errors) == ["p[1]", "p[3]"]
    assert error.total == 5
    assert p.failed_items == ["p[1]", "p[3]"]
    assert p.result is None
    assert wf.get_task("down").status is TaskStatus.SKIPPED  # type: ignore[union-attr]
    # the run reports the mapped task, not its items
    assert info.value.failed_tasks == ["p"]
    assert info.value.skipped_tasks == ["down"]
    assert info.value.errors["p"] is error
    assert wf.status is WorkflowStatus.FAILED
    assert [e.task for e in log.of(TaskFailed)] == sorted(
        [e.task for e in log.of(TaskFailed)], key=lambda name: name == "p"
    )  # p fails after its items
    (skipped,) = log.of(TaskSkipped)
    assert (skipped.task, skipped.upstream, skipped.item) == ("down", "p", None)


@pytest.mark.anyio
async def test_the_error_of_many_failed_items_names_the_first_and_counts_the_rest(
    executor_cls: type,
) -> None:
    wf, p = _map_workflow(range(6), Failing(bad={0, 1, 2, 4, 5}))
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    assert str(p.error).startswith("5 of 6 items of task 'p' failed: p[0] (")
    assert str(p.error).endswith(" and 2 more")
    assert p.failed_items == ["p[0]", "p[1]", "p[2]", "p[4]", "p[5]"]


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["sync", "async"])
async def test_on_item_failure_skip_completes_the_map_without_the_failed_items(
    executor_cls: type, form: str
) -> None:
    wf, p = _map_workflow(range(4), in_form(form, Failing(bad={0, 2})), on_item_failure="skip")
    await executor_cls().execute(wf)  # does not raise
    assert p.status is TaskStatus.COMPLETED
    assert p.result == [10, 30]
    assert p.failed_items == ["p[0]", "p[2]"]
    assert p.error is None
    assert wf.get_task("down").result == [10, 30]  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_an_item_that_raises_skip_is_left_out_and_is_no_failure(
    executor_cls: type,
) -> None:
    callbacks = CallbackLog()

    def item(src: int) -> int:
        if src % 2:
            raise Skip(f"{src} is odd")
        return src

    wf, p = _map_workflow(range(5), item, retries=3, callbacks=[callbacks.sync])
    await executor_cls().execute(wf)  # does not raise
    assert p.result == [0, 2, 4]
    assert p.failed_items == []
    assert [t.status for t in p.items] == [
        TaskStatus.COMPLETED,
        TaskStatus.SKIPPED,
        TaskStatus.COMPLETED,
        TaskStatus.SKIPPED,
        TaskStatus.COMPLETED,
    ]
    assert [t.attempts for t in p.items] == [1] * 5  # a Skip is not retried
    assert ("p[1]", TaskStatus.SKIPPED, None) in callbacks.calls
    assert wf.get_task("down").result == [0, 2, 4]  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_items_are_not_listed_as_skipped_tasks_of_a_failed_run(executor_cls: type) -> None:
    def item(src: int) -> int:
        if src == 1:
            raise Skip("not this one")
        return src

    wf, p = _map_workflow(range(3), item)
    wf.add_task(Task("bad", lambda p: 1 / 0), depends_on=["p"])
    wf.add_task(Task("after", lambda: None), depends_on=["bad"])
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert p.items[1].status is TaskStatus.SKIPPED
    assert info.value.failed_tasks == ["bad"]
    assert info.value.skipped_tasks == ["after"]
    assert str(info.value).endswith("; skipped: 1 downstream task(s)")


@pytest.mark.anyio
async def test_every_item_skipped_gives_an_empty_list(executor_cls: type) -> None:
    def item(src: int) -> int:
        raise Skip("none wanted")

    wf, p = _map_workflow(range(3), item)
    await executor_cls().execute(wf)
    assert p.result == []
    assert wf.get_task("down").result == []  # type: ignore[union-attr]


# -- what is mapped over -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("empty", [[], (), {}, set()], ids=["list", "tuple", "dict", "set"])
async def test_a_map_over_an_empty_iterable_completes_with_an_empty_list(
    executor_cls: type, empty: Any
) -> None:
    calls: list[Any] = []
    wf, p = _map_workflow(empty, lambda src: calls.append(src))
    await executor_cls().execute(wf)
    assert calls == []
    assert p.status is TaskStatus.COMPLETED
    assert p.result == []
    assert p.items == []
    assert wf.get_task("down").result == []  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("abc", "returned a str, not a list; return a list from 'src' (wrap a single value"),
        (b"abc", "returned a bytes, not a list"),
        (None, "returned NoneType None, not a list or other iterable; return a list from 'src'"),
        (42, "returned int 42, not a list or other iterable; return a list from 'src'"),
    ],
    ids=["str", "bytes", "None", "int"],
)
async def test_a_source_result_that_is_not_a_list_fails_the_map(
    executor_cls: type, value: Any, says: str
) -> None:
    calls: list[Any] = []
    wf, p = _map_workflow(value, lambda src: calls.append(src))
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    assert calls == []
    assert p.status is TaskStatus.FAILED
    assert isinstance(p.error, MapError)
    assert p.error.task_name == "p"
    assert str(p.error).startswith("task 'p': maps over 'src', which ")
    assert says in str(p.error)
    assert p.items == []
    assert info.value.failed_tasks == ["p"]
    assert info.value.skipped_tasks == ["down"]


def _breaks_after_two(exc: Exception) -> Any:
    yield 1
    yield 2
    raise exc


@pytest.mark.anyio
@pytest.mark.parametrize("exc", [ValueError("disk gone"), TypeError("bad row")], ids=repr)
async def test_a_source_result_that_breaks_while_read_fails_the_map(
    executor_cls: type, exc: Exception
) -> None:
    calls: list[Any] = []
    wf, p = _map_workflow(_breaks_after_two(exc), lambda src: calls.append(src))
    wf.add_task(Task("other", lambda: "ran"))
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls().execute(wf)
    # the map failed, not the run: other tasks ran, and the error says what happened
    assert calls == []
    assert info.value.failed_tasks == ["p"]
    assert wf.get_task("other").result == "ran"  # type: ignore[union-attr]
    assert isinstance(p.error, MapError)
    assert p.error.__cause__ is exc
    assert str(p.error) == (
        f"task 'p': maps over 'src', whose result raised while it was read: "
        f"{type(exc).__name__}: {exc}; return a list from 'src'"
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("map_key", "says"),
    [
        (
            lambda row: row["id"],
            "map_key raised on element 1 ({'name': 'x'}): KeyError: 'id'",
        ),
        (
            lambda row: row.get("id", 7),
            "map_key must return a non-empty str, got 7 for element 1 ({'name': 'x'})",
        ),
        (
            lambda row: row.get("id", ""),
            "map_key must return a non-empty str, got '' for element 1 ({'name': 'x'})",
        ),
        (
            lambda row: row.get("id", "a"),
            "map_key gave elements 0 and 1 the same key 'a'; keys name the items and must be "
            "unique",
        ),
    ],
    ids=["raises", "not_str", "empty", "duplicate"],
)
async def test_a_bad_map_key_fails_the_map_naming_the_element(
    executor_cls: type, map_key: Any, says: str
) -> None:
    calls: list[Any] = []
    rows = [{"id": "a"}, {"name": "x"}]
    wf, p = _map_workflow(rows, lambda src: calls.append(src), map_key=map_key)
    with pytest.raises(WorkflowExecutionError):
        await executor_cls().execute(wf)
    assert calls == []
    assert isinstance(p.error, MapError)
    assert str(p.error) == f"task 'p': {says}"
    assert wf.get_task("down").status is TaskStatus.SKIPPED  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_map_over_a_map_pairs_items_by_key(executor_cls: type) -> None:
    def first(src: str) -> str:
        if src == "b":
            raise Skip("b is not wanted")
        return src.upper()

    def second(p: str) -> str:
        return p + "!"

    wf = Workflow("map_of_map")
    wf.add_task(Task("src", lambda: ["a", "b", "c"]))
    p = wf.add_task(Task("p", first, map_over="src", map_key=str))
    q = wf.add_task(Task("q", second, map_over="p"))
    await executor_cls().execute(wf)
    assert p.result == ["A", "C"]
    assert q.result == ["A!", "C!"]
    # q's items carry p's keys over: q[a] pairs with p[a], and b (skipped) has no pair
    assert [t.name for t in q.items] == ["q[a]", "q[c]"]
    assert wf.get_task("q[c]").result == "C!"  # type: ignore[union-attr]
    assert wf.get_task("q[b]") is None


@pytest.mark.anyio
async def test_a_map_over_a_map_keeps_the_index_keys_of_the_items_left(
    executor_cls: type,
) -> None:
    wf = Workflow("map_of_map_by_index")
    wf.add_task(Task("src", lambda: [0, 1, 2, 3]))
    p = wf.add_task(Task("p", Failing(bad={1}), map_over="src", on_item_failure="skip"))
    q = wf.add_task(Task("q", lambda p: p + 1, map_over="p"))
    r = wf.add_task(Task("r", lambda q: q * 2, map_over="q"))
    await executor_cls().execute(wf)
    assert p.result == [0, 20, 30]
    assert [t.name for t in q.items] == ["q[0]", "q[2]", "q[3]"]
    assert [t.name for t in r.items] == ["r[0]", "r[2]", "r[3]"]
    assert r.result == [2, 42, 62]
    assert wf.get_task("r[2]").result == 42  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_map_key_overrides_the_keys_of_a_mapped_source(executor_cls: type) -> None:
    wf = Workflow("rekeyed")
    wf.add_task(Task("src", lambda: [1, 2]))
    wf.add_task(Task("p", lambda src: src * 3, map_over="src"))
    q = wf.add_task(Task("q", lambda p: p, map_over="p", map_key=lambda v: f"k{v}"))
    await executor_cls().execute(wf)
    assert [t.name for t in q.items] == ["q[k3]", "q[k6]"]


# -- trigger rules ----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("source", "trigger", "how"),
    [
        (Skip("no data"), "none_failed", "was skipped"),
        (ValueError("down"), "all_done", "failed"),
    ],
    ids=["skipped", "failed"],
)
async def test_a_map_let_run_by_a_rule_after_its_source_did_not_complete_is_skipped(
    executor_cls: type, source: BaseException, trigger: str, how: str
) -> None:
    def src() -> Any:
        raise source

    calls: list[Any] = []
    log = EventLog()
    wf = Workflow("nothing_to_map")
    wf.add_task(Task("src", src))
    p = wf.add_task(Task("p", lambda src: calls.append(src), map_over="src", trigger=trigger))  # type: ignore[arg-type]
    wf.add_task(Task("after", lambda p: p, trigger="none_failed"), depends_on=["p"])
    if isinstance(source, Skip):
        await executor_cls(observer=log).execute(wf)
    else:
        with pytest.raises(WorkflowExecutionError):
            await executor_cls(observer=log).execute(wf)
    assert calls == []
    assert p.status is TaskStatus.SKIPPED
    assert p.items == []
    reasons = {e.task: e.reason for e in log.of(TaskSkipped)}
    assert reasons["p"] == f"nothing to map over: upstream task 'src' {how}"
    # p was skipped, not failed: none_failed below it runs
    assert wf.get_task("after").result is SKIPPED  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_rules_below_a_failed_map(executor_cls: type) -> None:
    seen: dict[str, Any] = {}

    def clean_up(p: Any) -> str:
        seen["p"] = p
        return "cleaned"

    log = EventLog()
    wf, p = _map_workflow(range(3), Failing(bad={2}))
    wf.add_task(Task("publish", lambda p: p, trigger="none_failed"), depends_on=["p"])
    wf.add_task(Task("clean_up", clean_up, trigger="all_done"), depends_on=["p"])
    wf.add_task(Task("alert", lambda: "alerted", trigger="one_failed"), depends_on=["p"])
    with pytest.raises(WorkflowExecutionError) as info:
        await executor_cls(observer=log).execute(wf)
    assert info.value.failed_tasks == ["p"]
    statuses = final_statuses(wf)
    assert statuses["publish"] is TaskStatus.SKIPPED
    assert statuses["clean_up"] is TaskStatus.COMPLETED
    assert wf.get_task("alert").result == "alerted"  # type: ignore[union-attr]
    assert isinstance(seen["p"], Failed)
    assert seen["p"].error is p.error
    reasons = {e.task: e.reason for e in log.of(TaskSkipped)}
    assert reasons["publish"] == "upstream task 'p' failed (trigger rule 'none_failed')"


@pytest.mark.anyio
async def test_an_all_done_clean_up_below_a_map_sees_its_list(executor_cls: type) -> None:
    wf, _ = _map_workflow(range(3), lambda src: src + 1)
    wf.add_task(Task("clean_up", lambda p: ("cleaned", p), trigger="all_done"), depends_on=["p"])
    await executor_cls().execute(wf)
    assert wf.get_task("clean_up").result == ("cleaned", [1, 2, 3])  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_the_decorator_and_add_task_set_the_map(executor_cls: type) -> None:
    @task(map_over="src", map_key=str, max_concurrent=2, on_item_failure="skip")
    def decorated(src: int) -> int:
        if src == 2:
            raise ValueError("two")
        return src

    def plain(src: int, **upstream: Any) -> int:
        return -src

    wf = Workflow("forms")
    wf.add_task(Task("src", lambda: [1, 2, 3]))
    d = wf.add_task(decorated)
    a = wf.add_task(plain, map_over="src", map_key=lambda v: f"n{v}", on_item_failure="skip")
    assert wf.dependencies("decorated") == ("src",)  # mapping over a task depends on it
    assert wf.dependencies("plain") == ("src",)
    await executor_cls().execute(wf)
    assert d.result == [1, 3]
    assert d.failed_items == ["decorated[2]"]
    assert [t.name for t in a.items] == ["plain[n1]", "plain[n2]", "plain[n3]"]
    assert a.result == [-1, -2, -3]


# -- fail_fast ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_under_fail_fast_a_failed_item_does_not_stop_the_run(
    parallel_cls: type,
) -> None:
    wf, p = _map_workflow(range(3), Failing(bad={0}), on_item_failure="skip")
    wf.add_task(Task("slow", lambda: time.sleep(0.3) or "slept"))
    await parallel_cls(fail_fast=True).execute(wf)  # does not raise
    assert p.result == [10, 20]
    assert wf.get_task("slow").result == "slept"  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.COMPLETED


@pytest.mark.anyio
async def test_under_fail_fast_a_failed_map_stops_the_run(parallel_cls: type) -> None:
    failing = Failing(bad={0})

    def slow_failing(src: int) -> int:
        time.sleep(0.2 if src else 0)  # the others are still running when 0 fails
        return failing(src)  # type: ignore[no-any-return]

    log = EventLog()
    wf = Workflow("fail_fast_map")
    wf.add_task(Task("src", lambda: [0, 1, 2]))
    p = wf.add_task(Task("p", slow_failing, map_over="src"))
    r = wf.add_task(Task("r", async_forever, map_over="src", max_concurrent=2))
    wf.add_task(Task("clean_up", lambda: "cleaned", trigger="all_done"), depends_on=["p", "r"])
    started = time.monotonic()
    with pytest.raises(WorkflowExecutionError) as info:
        await parallel_cls(fail_fast=True, observer=log).execute(wf)
    assert time.monotonic() - started < 10  # r's items were cancelled, not waited for
    # p's other items finished before p failed: only p's failure stopped the run
    assert sorted(failing.calls) == [0, 1, 2]
    assert [t.status for t in p.items] == [
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
        TaskStatus.COMPLETED,
    ]
    assert info.value.failed_tasks == ["p"]
    assert info.value.skipped_tasks == ["r"]  # not its items: they are r's to report
    assert r.status is TaskStatus.SKIPPED
    assert all(t.status is TaskStatus.SKIPPED for t in r.items)
    assert wf.get_task("clean_up").result == "cleaned"  # type: ignore[union-attr]
    stopped = {e.task: (e.upstream, e.item) for e in log.of(TaskSkipped) if e.upstream == "p"}
    assert stopped == {"r": ("p", None), "r[0]": ("p", 0), "r[1]": ("p", 1), "r[2]": ("p", 2)}


@pytest.mark.anyio
async def test_under_fail_fast_an_all_done_map_caught_in_flight_expands_again(
    parallel_cls: type,
) -> None:
    failed = threading.Event()

    def bad(src: Any) -> None:
        time.sleep(0.5)  # on a worker thread: p's first items are in flight by then
        failed.set()
        raise ValueError("bad")

    def item(src: int) -> Any:
        # the first items wait (until the stop cancels them); the rerun's end at once
        return src * 2 if failed.is_set() else async_forever(src)

    log = EventLog()
    wf = Workflow("clean_up_map")
    wf.add_task(Task("src", lambda: [1, 2, 3]))
    wf.add_task(Task("bad", bad), depends_on=["src"])
    p = wf.add_task(Task("p", item, map_over="src", trigger="all_done"))
    wf.add_task(Task("after", lambda p: p, trigger="all_done"), depends_on=["p"])
    with pytest.raises(WorkflowExecutionError) as info:
        await parallel_cls(fail_fast=True, observer=log).execute(wf)
    assert info.value.failed_tasks == ["bad"]
    assert p.status is TaskStatus.COMPLETED
    assert p.result == [2, 4, 6]
    assert [(t.name, t.status) for t in p.items] == [
        (f"p[{k}]", TaskStatus.COMPLETED) for k in range(3)
    ]
    assert wf.get_task("p[2]") is p.items[2]
    assert wf.get_task("after").result == [2, 4, 6]  # type: ignore[union-attr]
    # the first items were stopped with the run; p then ran again, with new items
    assert [e.task for e in log.of(TaskStarted)].count("p") == 2
    stopped = {e.task: (e.upstream, e.item) for e in log.of(TaskSkipped)}
    assert stopped == {f"p[{k}]": ("bad", k) for k in range(3)}


@pytest.mark.anyio
async def test_a_second_run_expands_the_map_afresh(executor_cls: type) -> None:
    lists = [[1, 2, 3], [4]]
    wf = Workflow("twice")
    wf.add_task(Task("src", lambda: lists.pop(0)))
    p = wf.add_task(Task("p", lambda src: src * 10, map_over="src", map_key=str))
    await executor_cls().execute(wf)
    first = p.items
    assert p.result == [10, 20, 30]
    await executor_cls().execute(wf)
    assert p.result == [40]
    assert [t.name for t in p.items] == ["p[4]"]
    assert wf.get_task("p[1]") is None  # the latest run's items only
    assert first[0].result == 10  # items of the first run are left as they were
