"""A run's inputs, checked before anything runs (``_engine/_select.py``): which tasks a
``targets`` / ``from_tasks`` selection holds, which it takes from the store, and the
parameters. No store, no loop."""

from __future__ import annotations

from typing import Any

import pytest

from flowweaver import Task, Workflow, WorkflowValidationError
from flowweaver._engine._select import check_params, select


def diamond() -> Workflow:
    """a -> b -> d, a -> c -> d, d -> e; x stands alone."""
    wf = Workflow("diamond")
    wf.add_task(Task("a", lambda date: 1))
    wf.add_task(Task("b", lambda a: a), depends_on=["a"])
    wf.add_task(Task("c", lambda a, limit=3: a), depends_on=["a"])
    wf.add_task(Task("d", lambda b, c: b + c), depends_on=["b", "c"])
    wf.add_task(Task("e", lambda d: d), depends_on=["d"])
    wf.add_task(Task("x", lambda: 0))
    return wf


def test_no_selection_is_the_whole_workflow() -> None:
    assert select(diamond(), None, None) is None


def test_targets_hold_them_and_everything_upstream() -> None:
    sel = select(diamond(), ["d"], None)
    assert sel is not None
    assert sel.names == ["a", "b", "c", "d"]
    assert sel.given == frozenset()
    assert sel.depends_on["d"] == ("b", "c")


def test_from_tasks_hold_them_and_everything_downstream_and_take_the_rest_as_given() -> None:
    sel = select(diamond(), None, ["b"])
    assert sel is not None
    assert sel.names == ["a", "b", "c", "d", "e"]
    assert sel.given == {"a", "c"}  # what b and d need from outside
    assert sel.forced == {"b"}
    assert sel.depends_on["a"] == ()  # never run: no dependencies of its own
    assert sel.depends_on["c"] == ()
    sel.graph()  # a valid graph


def test_both_hold_the_tasks_between() -> None:
    sel = select(diamond(), ["d"], ["b"])
    assert sel is not None
    assert sel.names == ["a", "b", "c", "d"]
    assert sel.given == {"a", "c"}
    with pytest.raises(WorkflowValidationError, match="no task is both downstream"):
        select(diamond(), ["b"], ["c"])


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["dd"], r"targets names 'dd', which is not a task of this workflow; did you mean 'd'\?"),
        ("d", r"targets must be a list of task names, got the string 'd'; write targets=\['d'\]"),
        ([], "targets is empty"),
        (3, "targets must be a list of task names, got 3"),
        ([None], "targets names None"),
    ],
)
def test_bad_selections_are_refused_naming_them(targets: Any, message: str) -> None:
    with pytest.raises(WorkflowValidationError, match=message):
        select(diamond(), targets, None)


def test_a_subset_is_a_workflow_of_the_same_tasks() -> None:
    wf = diamond()
    sub = wf.subset(from_tasks=["b"])
    assert sub.name == wf.name
    assert [t.name for t in sub.tasks] == ["a", "b", "c", "d", "e"]
    assert sub.get_task("b") is wf.get_task("b")
    assert sub._given == {"a", "c"}
    assert sub._forced == {"b"}
    assert sub.dependencies("a") == ()
    # A subset of a subset keeps what the first one takes from the store.
    again = sub.subset(targets=["d"])
    assert again._given == {"a", "c"}
    assert again._forced == {"b"}
    assert [t.name for t in wf.subset().tasks] == [t.name for t in wf.tasks]


def test_parameters_are_checked_before_anything_runs() -> None:
    wf = diamond()
    assert check_params(None, wf) == {}
    assert check_params({"date": "2026-11-30", "limit": 2}, wf) == {
        "date": "2026-11-30",
        "limit": 2,
    }
    with pytest.raises(WorkflowValidationError, match="parameter 'b' has the name of a task"):
        check_params({"b": 1}, wf)
    with pytest.raises(WorkflowValidationError, match="parameter 'dat': no task"):
        check_params({"dat": 1}, wf)
    with pytest.raises(WorkflowValidationError, match="params must be a mapping"):
        check_params([("date", 1)], wf)  # type: ignore[arg-type]
    with pytest.raises(WorkflowValidationError, match="not a Python identifier"):
        check_params({"a date": 1}, wf)
    with pytest.raises(WorkflowValidationError, match="not a Python identifier"):
        check_params({1: 1}, wf)  # type: ignore[dict-item]
