"""Run events behave as the frozen dataclasses they were, built the cheap way (see _events).

Immutable, equal by class and fields, hashable, printed field by field; the engine's
positional constructor ``_make`` builds the same events as the public one.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import flowweaver
from flowweaver._events import (
    RunEvent,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskQueued,
    TaskRecomputed,
    TaskRestored,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)

ERROR = ValueError("boom")

# one event of each class, with its fields in order (the order of repr and of _make)
EXAMPLES: list[tuple[RunEvent, tuple[Any, ...]]] = [
    (RunStarted("wf", 1.0, 3, run_id="r"), ("wf", 1.0, "r", 3)),
    (RunFinished("wf", 2.0, "COMPLETED", 1.5), ("wf", 2.0, "", "COMPLETED", 1.5)),
    (TaskStarted("wf", 1.0, "t", 2, item=4), ("wf", 1.0, "", "t", 4, 2)),
    (TaskQueued("wf", 1.0, "t", 1, "db", "limit"), ("wf", 1.0, "", "t", None, 1, "db", "limit")),
    (TaskRetrying("wf", 1.0, "t", 1, 0.5, ERROR), ("wf", 1.0, "", "t", None, 1, 0.5, ERROR)),
    (TaskCompleted("wf", 1.0, "t", 1, 0.25), ("wf", 1.0, "", "t", None, 1, 0.25)),
    (TaskFailed("wf", 1.0, "t", 3, 0.25, ERROR), ("wf", 1.0, "", "t", None, 3, 0.25, ERROR)),
    (TaskSkipped("wf", 1.0, "t", "up"), ("wf", 1.0, "", "t", None, "up", "")),
    (TaskSkipped("wf", 1.0, "t", "", "why", item="k"), ("wf", 1.0, "", "t", "k", "", "why")),
    (TaskRestored("wf", 1.0, "t"), ("wf", 1.0, "", "t", None)),
    (TaskCancelled("wf", 1.0, "t"), ("wf", 1.0, "", "t", None)),
    (TaskRecomputed("wf", 1.0, "t", 1, 2), ("wf", 1.0, "", "t", None, 1, 2)),
]
IDS = [f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(EXAMPLES)]


def _values(event: RunEvent) -> tuple[Any, ...]:
    return tuple(getattr(event, name) for name in event._fields)


@pytest.mark.parametrize(("event", "values"), EXAMPLES, ids=IDS)
def test_fields_in_dataclass_order(event: RunEvent, values: tuple[Any, ...]) -> None:
    assert _values(event) == values
    assert event._fields[:3] == ("workflow", "timestamp", "run_id")
    if isinstance(event, TaskEvent):
        assert event._fields[3:5] == ("task", "item")


@pytest.mark.parametrize(("event", "values"), EXAMPLES, ids=IDS)
def test_every_field_is_read_only(event: RunEvent, values: tuple[Any, ...]) -> None:
    for name in event._fields:
        with pytest.raises(AttributeError):
            setattr(event, name, "other")
        with pytest.raises(AttributeError):
            delattr(event, name)
    with pytest.raises(AttributeError):
        event.extra = 1  # type: ignore[attr-defined]  # slots: no new attributes either
    assert _values(event) == values


@pytest.mark.parametrize(("event", "values"), EXAMPLES, ids=IDS)
def test_equal_by_class_and_fields_and_hashable(event: RunEvent, values: tuple[Any, ...]) -> None:
    twin = type(event)._make(*_positional_then_keyword(event))
    assert twin == event
    assert not twin != event  # noqa: SIM202 - __ne__ too
    assert hash(twin) == hash(event)
    assert len({event, twin}) == 1
    assert event != values  # not a tuple
    assert copy.copy(event) == event
    if not isinstance(event, (TaskRetrying, TaskFailed)):  # exceptions compare by identity
        assert copy.deepcopy(event) == event
        assert pickle.loads(pickle.dumps(event)) == event


def test_events_of_different_classes_are_never_equal() -> None:
    restored, cancelled = TaskRestored("wf", 1.0, "t"), TaskCancelled("wf", 1.0, "t")
    assert _values(restored) == _values(cancelled)
    assert restored != cancelled
    assert TaskStarted("wf", 1.0, "t", 1) != TaskStarted("wf", 1.0, "t", 2)
    assert TaskStarted("wf", 1.0, "t", 1) != TaskStarted("wf", 1.0, "t", 1, item=0)


def test_repr_names_every_field_as_a_dataclass_did() -> None:
    assert repr(TaskStarted("wf", 1.0, "t", 2, item=4)) == (
        "TaskStarted(workflow='wf', timestamp=1.0, run_id='', task='t', item=4, attempt=2)"
    )
    assert repr(RunFinished("wf", 2.0, "FAILED", 1.5, run_id="ab")) == (
        "RunFinished(workflow='wf', timestamp=2.0, run_id='ab', status='FAILED', duration=1.5)"
    )


def test_constructor_defaults_and_keyword_only_fields() -> None:
    event = TaskSkipped("wf", 1.0, "t", "up")
    assert (event.reason, event.item, event.run_id) == ("", None, "")
    with pytest.raises(TypeError):
        TaskStarted("wf", 1.0, "t", 1, "run id given by position")  # type: ignore[misc]
    with pytest.raises(TypeError):
        TaskStarted("wf", 1.0, "t")  # type: ignore[call-arg]
    keywords = TaskStarted(workflow="wf", timestamp=1.0, task="t", attempt=1, run_id="r")
    assert keywords.run_id == "r"


def test_match_args_are_the_positional_fields() -> None:
    assert TaskStarted.__match_args__ == ("workflow", "timestamp", "task", "attempt")
    match TaskCompleted("wf", 1.0, "t", 2, 0.5):
        case TaskCompleted(_, _, name, attempts, duration=duration):
            assert (name, attempts, duration) == ("t", 2, 0.5)
        case _:
            pytest.fail("no match")


def test_the_public_names_are_the_event_classes() -> None:
    assert flowweaver.TaskStarted is TaskStarted
    assert issubclass(TaskStarted, TaskEvent)
    assert issubclass(TaskEvent, RunEvent)
    assert issubclass(RunStarted, RunEvent)
    assert not issubclass(RunStarted, TaskEvent)


def test_an_observer_gets_events_stamped_with_the_run_id() -> None:
    seen: list[RunEvent] = []
    wf = flowweaver.Workflow("stamped")
    wf.add_task(flowweaver.Task("a", lambda: 1))
    wf.add_task(flowweaver.Task("b", lambda a: a + 1), depends_on=["a"])
    flowweaver.SequentialExecutor(observer=seen.append).execute(wf)
    kinds = [type(e).__name__ for e in seen]
    assert kinds == [
        "RunStarted",
        "TaskStarted",
        "TaskCompleted",
        "TaskStarted",
        "TaskCompleted",
        "RunFinished",
    ]
    run_ids = {e.run_id for e in seen}
    assert len(run_ids) == 1
    assert len(run_ids.pop()) == 16
    started, completed = seen[1], seen[2]
    assert isinstance(started, TaskStarted)
    assert isinstance(completed, TaskCompleted)
    assert (started.task, started.attempt, started.item) == ("a", 1, None)
    assert (completed.task, completed.attempts) == ("a", 1)
    assert completed.duration >= 0.0
    assert completed.timestamp >= started.timestamp
    assert started.timestamp == wf.get_task("a")._started


def _positional_then_keyword(event: RunEvent) -> list[Any]:
    specs = type(event)._specs
    first = [getattr(event, name) for name, kw_only, _ in specs if not kw_only]
    return first + [getattr(event, name) for name, kw_only, _ in specs if kw_only]
