"""Workflow.to_mermaid() and Workflow.to_dot(): structure, statuses, escaping."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowweaver import (
    CycleError,
    JSONStateStore,
    SequentialExecutor,
    Task,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
)


def diamond() -> Workflow:
    wf = Workflow("diamond")
    wf.add_task(Task("extract", lambda: 1))
    wf.add_task(Task("left", lambda extract: extract + 1), depends_on=["extract"])
    wf.add_task(Task("right", lambda extract: extract + 2), depends_on=["extract"])
    wf.add_task(Task("join", lambda left, right: left + right), depends_on=["left", "right"])
    return wf


def failing() -> Workflow:
    def boom() -> None:
        raise ValueError("boom")

    wf = Workflow("failing")
    wf.add_task(Task("ok", lambda: 1))
    wf.add_task(Task("bad", boom), depends_on=["ok"])
    wf.add_task(Task("after", lambda: 2), depends_on=["bad"])
    return wf


# -- Mermaid ---------------------------------------------------------------------------------


def test_mermaid_lists_every_task_and_edge_from_upstream_to_dependent() -> None:
    assert diamond().to_mermaid() == (
        "---\n"
        'title: "diamond"\n'
        "---\n"
        "flowchart LR\n"
        '    t0["extract"]\n'
        '    t1["left"]\n'
        '    t2["right"]\n'
        '    t3["join"]\n'
        "    t0 --> t1\n"
        "    t0 --> t2\n"
        "    t1 --> t3\n"
        "    t2 --> t3\n"
    )


def test_mermaid_has_no_status_classes_before_the_first_run() -> None:
    assert "classDef" not in diamond().to_mermaid()


def test_mermaid_colours_each_task_by_its_status_after_a_run() -> None:
    wf = failing()
    with pytest.raises(WorkflowExecutionError):
        SequentialExecutor().execute(wf)
    text = wf.to_mermaid()
    assert "    class t0 completed\n" in text
    assert "    class t1 failed\n" in text
    assert "    class t2 skipped\n" in text
    assert re.search(r"classDef completed fill:#\w+,stroke:#\w+,color:#\w+\n", text)
    assert re.search(r"classDef failed fill:#\w+", text)
    # statuses nobody has get no classDef
    assert "classDef pending" not in text


def test_mermaid_groups_tasks_of_one_status_in_one_class_line() -> None:
    wf = diamond()
    SequentialExecutor().execute(wf)
    assert "    class t0,t1,t2,t3 completed\n" in wf.to_mermaid()


def decode_mermaid(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label)


def mermaid_labels(text: str) -> list[str]:
    return [decode_mermaid(m) for m in re.findall(r'^    t\d+\["([^"]*)"\]$', text, re.M)]


def test_mermaid_escapes_quotes_hashes_brackets_and_line_breaks() -> None:
    names = ['say "hi"', "a#b;c", "<b>bold</b>", "two\nlines", "end", "x --> y", "`md`"]
    wf = Workflow('the "odd" one')
    for name in names:
        wf.add_task(Task(name, lambda: None))
    text = wf.to_mermaid()
    assert mermaid_labels(text) == names
    assert 'title: "the \\"odd\\" one"\n' in text
    # every task is one line: nothing in a name can start a statement of its own
    assert len(text.splitlines()) == 4 + len(names)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5, unique=True))
def test_mermaid_labels_round_trip_any_name(names: list[str]) -> None:
    wf = Workflow("w")
    for name in names:
        wf.add_task(Task(name, lambda: None))
    text = wf.to_mermaid()
    assert mermaid_labels(text) == names
    body = text.split("flowchart LR\n", 1)[1]
    # labels only hold letters, digits, space and _-.#; (entity codes) inside the quotes
    for raw in re.findall(r'\["([^"]*)"\]', body):
        assert all(c.isalnum() or c in " _-.#;" for c in raw)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_mermaid_title_is_a_yaml_string_of_the_workflow_name(name: str) -> None:
    line = Workflow(name).to_mermaid().splitlines()[1]
    assert line.startswith("title: ")
    assert json.loads(line[len("title: ") :]) == name


# -- DOT ---------------------------------------------------------------------------------------


def test_dot_lists_every_task_and_edge() -> None:
    text = diamond().to_dot()
    assert text.startswith('digraph "diamond" {\n    rankdir=LR;\n')
    assert text.endswith("}\n")
    assert '    t0 [label="extract"];\n' in text
    assert '    t3 [label="join"];\n' in text
    edges = re.findall(r"^    (t\d+) -> (t\d+);$", text, re.M)
    assert edges == [("t0", "t1"), ("t0", "t2"), ("t1", "t3"), ("t2", "t3")]


def test_dot_colours_each_task_by_its_status_after_a_run() -> None:
    wf = failing()
    with pytest.raises(WorkflowExecutionError):
        SequentialExecutor().execute(wf)
    text = wf.to_dot()
    assert re.search(r't0 \[label="ok", fillcolor="#\w+".*tooltip="COMPLETED"\];', text)
    assert re.search(r't1 \[label="bad", .*tooltip="FAILED"\];', text)
    assert re.search(r't2 \[label="after", .*tooltip="SKIPPED"\];', text)
    assert "tooltip" not in failing().to_dot()


def decode_dot(quoted: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), quoted)


def dot_labels(text: str) -> list[str]:
    return [decode_dot(m) for m in re.findall(r'label="((?:[^"\\]|\\.)*)"', text)]


def test_dot_escapes_quotes_backslashes_and_line_breaks() -> None:
    names = ['say "hi"', "back\\slash", "trailing\\", "two\nlines", "node", "\\N", "a;b}"]
    wf = Workflow("odd")
    for name in names:
        wf.add_task(Task(name, lambda: None))
    assert dot_labels(wf.to_dot()) == names


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        # no lone surrogates: a task name must be text that UTF-8 can hold
        st.text(
            st.characters(exclude_characters="\r", exclude_categories=("Cs",)),
            min_size=1,
            max_size=20,
        ),
        min_size=1,
        max_size=5,
        unique=True,
    )
)
def test_dot_labels_round_trip_any_name(names: list[str]) -> None:
    wf = Workflow("w")
    for name in names:
        wf.add_task(Task(name, lambda: None))
    assert dot_labels(wf.to_dot()) == names


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_dot_of_odd_names() -> None:
    wf = Workflow('quotes "and" \\ backslashes')
    names = ['say "hi"', "back\\slash", "trailing\\", "two\nlines", "node", "edge", "{x}"]
    for name in names:
        wf.add_task(Task(name, lambda: None))
    wf.add_task(Task("last", lambda: None), depends_on=names)
    result = subprocess.run(
        ["dot", "-Tplain"], input=wf.to_dot(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\nnode ") == len(names) + 1
    assert result.stdout.count("\nedge ") == len(names)


# -- invalid graphs ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["to_mermaid", "to_dot"])
def test_export_of_an_unknown_dependency_raises_before_anything(method: str) -> None:
    wf = Workflow("w")
    wf.add_task(Task("load", lambda: None), depends_on=["extrct"])
    with pytest.raises(WorkflowValidationError, match="extrct"):
        getattr(wf, method)()


@pytest.mark.parametrize("method", ["to_mermaid", "to_dot"])
def test_export_of_a_cycle_raises_cycle_error(method: str) -> None:
    wf = Workflow("w")
    wf.add_task(Task("a", lambda: None), depends_on=["b"])
    wf.add_task(Task("b", lambda: None), depends_on=["a"])
    with pytest.raises(CycleError):
        getattr(wf, method)()


def test_export_of_an_empty_workflow_is_a_graph_with_no_nodes() -> None:
    assert Workflow("empty").to_mermaid().endswith("flowchart LR\n")
    assert Workflow("empty").to_dot().count("label=") == 0


# -- maps ----------------------------------------------------------------------------------------


def mapped(
    files: list[int], *, on_item_failure: str = "fail", source: str = "list_files"
) -> Workflow:
    """``source`` lists ``files``; ``process_file`` maps over it (odd numbers fail) and
    ``report`` follows."""

    def process(**kwargs: int) -> int:
        if kwargs[source] % 2:
            raise ValueError("odd")
        return kwargs[source]

    wf = Workflow("maps")
    wf.add_task(Task(source, lambda: files))
    wf.add_task(
        Task("process_file", process),
        map_over=source,
        on_item_failure=on_item_failure,  # type: ignore[arg-type]
    )
    wf.add_task(Task("report", lambda process_file: process_file), depends_on=["process_file"])
    return wf


@pytest.mark.parametrize(
    ("method", "labels"), [("to_mermaid", mermaid_labels), ("to_dot", dot_labels)]
)
def test_export_draws_a_mapped_task_once_marked_with_its_source_before_a_run(
    method: str, labels: Callable[[str], list[str]]
) -> None:
    assert labels(getattr(mapped([0, 2]), method)()) == [
        "list_files",
        "process_file [map over list_files]",
        "report",
    ]


@pytest.mark.parametrize(
    ("method", "labels"), [("to_mermaid", mermaid_labels), ("to_dot", dot_labels)]
)
def test_export_draws_a_mapped_task_once_with_its_item_count_after_a_run(
    method: str, labels: Callable[[str], list[str]]
) -> None:
    wf = mapped(list(range(0, 240, 2)))
    SequentialExecutor().execute(wf)
    text = getattr(wf, method)()
    assert labels(text) == ["list_files", "process_file (120 items)", "report"]
    assert "process_file[" not in text  # never a node per item


def test_export_of_a_map_with_failed_items_counts_them_and_colours_the_task_failed() -> None:
    wf = mapped([0, 1, 2, 3, 4])
    with pytest.raises(WorkflowExecutionError):
        SequentialExecutor().execute(wf)
    mermaid = wf.to_mermaid()
    assert mermaid_labels(mermaid)[1] == "process_file (5 items, 2 failed)"
    assert "    class t1 failed\n" in mermaid
    assert "    class t2 skipped\n" in mermaid
    assert re.search(
        r't1 \[label="process_file \(5 items, 2 failed\)", .*tooltip="FAILED"\];', wf.to_dot()
    )


def test_export_of_a_map_that_skips_failed_items_counts_them_and_colours_it_completed() -> None:
    wf = mapped([0, 1, 2], on_item_failure="skip")
    SequentialExecutor().execute(wf)
    mermaid = wf.to_mermaid()
    assert mermaid_labels(mermaid)[1] == "process_file (3 items, 1 failed)"
    assert "    class t0,t1,t2 completed\n" in mermaid
    assert re.search(
        r'label="process_file \(3 items, 1 failed\)", .*tooltip="COMPLETED"', wf.to_dot()
    )


@pytest.mark.parametrize(("files", "label"), [([], "0 items"), ([2], "1 item")])
def test_export_counts_an_empty_map_and_a_single_item(files: list[int], label: str) -> None:
    wf = mapped(files)
    SequentialExecutor().execute(wf)
    assert dot_labels(wf.to_dot())[1] == f"process_file ({label})"


def test_export_of_a_map_that_never_expanded_still_names_its_source() -> None:
    wf = Workflow("w")
    wf.add_task(Task("list_files", lambda: 3))  # not a list: the map fails before any item
    wf.add_task(Task("process_file", lambda list_files: list_files), map_over="list_files")
    with pytest.raises(WorkflowExecutionError):
        SequentialExecutor().execute(wf)
    assert dot_labels(wf.to_dot())[1] == "process_file [map over list_files]"
    assert "    class t1 failed\n" in wf.to_mermaid()


def test_export_escapes_the_odd_names_of_a_mapped_task_and_its_source() -> None:
    source = 'say "hi" <b>#1</b>\n\\end'
    wf = mapped([0, 2], source=source)
    expected = f"process_file [map over {source}]"
    assert mermaid_labels(wf.to_mermaid())[1] == expected
    assert dot_labels(wf.to_dot())[1] == expected
    SequentialExecutor().execute(wf)
    text = wf.to_mermaid()
    assert mermaid_labels(text)[1] == "process_file (2 items)"
    assert len(text.splitlines()) == 4 + 3 + 2 + 2  # header, nodes, edges, one class


def test_export_of_a_map_restored_whole_counts_the_items_of_its_saved_result(
    tmp_path: Path,
) -> None:
    store = tmp_path / "state.json"
    for _ in range(2):
        wf = mapped([0, 2, 4])
        SequentialExecutor(state_store=JSONStateStore(store)).execute(wf)
    assert wf.get_task("process_file").items == []  # type: ignore[union-attr]
    assert dot_labels(wf.to_dot())[1] == "process_file (3 items)"
