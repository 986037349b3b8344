"""The graph: validation with clear messages, cycle finding, ready sets. Pure, no I/O."""

from __future__ import annotations

import pytest

from flowweaver import (
    CycleError,
    FlowWeaverError,
    Task,
    Workflow,
    WorkflowValidationError,
)
from flowweaver._engine._graph import Graph, ReadySet


def _workflow(layout: dict[str, list[str]]) -> Workflow:
    wf = Workflow("graph")
    for name, deps in layout.items():
        wf.add_task(Task(name, lambda: None), depends_on=deps)
    return wf


def test_unknown_dependency_suggests_the_closest_name() -> None:
    wf = _workflow({"fetch_data": [], "process": ["fetch_dat"]})
    with pytest.raises(WorkflowValidationError) as info:
        wf.graph()
    message = str(info.value)
    assert "'process'" in message
    assert "'fetch_dat'" in message
    assert "did you mean 'fetch_data'?" in message


def test_unknown_dependency_without_close_match_lists_the_tasks() -> None:
    wf = _workflow({"alpha": [], "beta": ["zzzzzz"]})
    with pytest.raises(WorkflowValidationError, match="its tasks are 'alpha', 'beta'"):
        wf.graph()


def test_unknown_dependency_error_is_a_value_error() -> None:
    wf = _workflow({"a": ["nope"]})
    with pytest.raises(ValueError, match="nope"):
        wf.graph()
    with pytest.raises(FlowWeaverError):
        wf.graph()


def test_two_task_cycle_is_shown_as_a_path() -> None:
    wf = _workflow({"a": ["b"], "b": ["a"]})
    with pytest.raises(CycleError) as info:
        wf.graph()
    assert info.value.cycle == ["a", "b", "a"]
    assert "a -> b -> a" in str(info.value)
    assert isinstance(info.value, WorkflowValidationError)


def test_longer_cycle_is_shown_in_dependency_direction() -> None:
    # c depends on b, b on a, a on c: results flow a -> b -> c -> a
    wf = _workflow({"root": [], "a": ["c", "root"], "b": ["a"], "c": ["b"], "tail": ["c"]})
    with pytest.raises(CycleError) as info:
        wf.graph()
    assert info.value.cycle == ["a", "b", "c", "a"]
    assert "a -> b -> c -> a" in str(info.value)


def test_cycle_found_beyond_a_long_acyclic_prefix() -> None:
    layout = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(3000)}
    layout["x"] = ["t2999", "y"]
    layout["y"] = ["x"]
    with pytest.raises(CycleError) as info:
        _workflow(layout).graph()
    assert info.value.cycle == ["x", "y", "x"]


def test_long_chain_validates_without_recursion() -> None:
    layout = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(20_000)}
    graph = _workflow(layout).graph()
    assert len(graph) == 20_000
    assert graph.topological_order()[:3] == [0, 1, 2]


def test_self_dependency_is_refused_by_add_task() -> None:
    wf = Workflow("self")
    with pytest.raises(WorkflowValidationError, match="'a' depends on itself"):
        wf.add_task(Task("a", lambda: None), depends_on=["a"])
    assert wf.tasks == []


def test_self_dependency_is_refused_by_the_graph() -> None:
    with pytest.raises(WorkflowValidationError, match="depends on itself"):
        Graph(["a"], {"a": ["a"]})


def test_duplicate_name_is_refused_by_the_graph() -> None:
    with pytest.raises(WorkflowValidationError, match="two tasks are named 'a'"):
        Graph(["a", "a"], {})


def test_repeated_dependency_counts_once() -> None:
    graph = Graph(["a", "b"], {"b": ["a", "a"]})
    assert graph.upstream == [(), (0,)]
    assert graph.downstream == [[1], []]


def test_graph_is_cached_until_a_task_is_added() -> None:
    wf = _workflow({"a": []})
    first = wf.graph()
    assert wf.graph() is first
    wf.add_task(Task("b", lambda: None), depends_on=["a"])
    second = wf.graph()
    assert second is not first
    assert second.names == ["a", "b"]


def test_topological_order_puts_every_task_after_its_upstream() -> None:
    layout = {"d": ["b", "c"], "c": ["a"], "b": ["a"], "a": [], "e": ["d", "a"]}
    graph = _workflow(layout).graph()
    order = [graph.names[i] for i in graph.topological_order()]
    for name, deps in layout.items():
        for dep in deps:
            assert order.index(dep) < order.index(name)


def test_a_failure_skips_the_whole_downstream_and_nothing_else() -> None:
    graph = _workflow({"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["d", "c"]}).graph()
    index = graph.index
    found = {graph.names[i] for i in ReadySet(graph).fail(index["b"])}
    assert found == {"c", "e"}


def test_ready_set_releases_a_task_when_its_last_upstream_is_done() -> None:
    graph = _workflow({"a": [], "b": [], "c": ["a", "b"], "d": ["c"]}).graph()
    ready = ReadySet(graph)
    i = graph.index
    assert ready.initial() == [i["a"], i["b"]]
    assert ready.done(i["a"]) == []
    assert ready.done(i["b"]) == [i["c"]]
    assert ready.done(i["c"]) == [i["d"]]


def test_ready_set_failure_skips_downstream_once() -> None:
    graph = _workflow({"a": [], "b": [], "c": ["a"], "d": ["a", "b"], "e": ["c", "d"]}).graph()
    ready = ReadySet(graph)
    i = graph.index
    skipped = ready.fail(i["a"])
    assert sorted(graph.names[j] for j in skipped) == ["c", "d", "e"]
    # b finishing later releases nothing: its dependent was skipped
    assert ready.done(i["b"]) == []
