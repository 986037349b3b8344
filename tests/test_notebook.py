"""How a Workflow displays in Jupyter, read from the HTML, SVG and bundle it returns:
statuses after a run, escaping, bounds for big workflows, the diagram's forms."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

import flowweaver._notebook as notebook
from flowweaver import (
    SequentialExecutor,
    Skip,
    Task,
    Workflow,
    WorkflowExecutionError,
)


class _Table(HTMLParser):
    """The text of each ``<td>`` per ``<tr>`` of the tasks table, and the text outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.titles: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []
        for name, value in attrs:
            if name == "title" and value is not None:
                self.titles.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data + " ")


def table_of(html: str) -> dict[str, dict[str, str]]:
    """Row cells by column name, per task name (the first line of the task cell)."""
    parser = _Table()
    parser.feed(html)
    columns = ("task", "status", "attempts", "duration", "result", "error")
    out = {}
    for row in parser.rows:
        if row:
            cells = dict(zip(columns, row, strict=True))
            out[cells["task"].split(" ")[0]] = cells
    return out


def mixed() -> Workflow:
    """A retry, a failure with a skipped downstream task, a Skip, and a map with one
    failed item (left out: on_item_failure='skip')."""
    calls = {"flaky": 0}

    def flaky() -> list[int]:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ValueError("first attempt fails")
        return [1, 2, 3]

    def bad() -> None:
        raise RuntimeError("boom")

    def skipper() -> None:
        raise Skip("not today")

    def square(flaky: int) -> int:
        if flaky == 2:
            raise KeyError("two")
        return flaky * flaky

    wf = Workflow("mixed")
    wf.add_task(Task("flaky", flaky, retries=1))
    wf.add_task(Task("bad", bad))
    wf.add_task(Task("after", lambda bad: bad), depends_on=["bad"])
    wf.add_task(Task("skipper", skipper))
    wf.add_task(Task("square", square), map_over="flaky", on_item_failure="skip")
    return wf


def run(wf: Workflow) -> None:
    try:
        SequentialExecutor().execute(wf)
    except WorkflowExecutionError:
        pass


def test_table_after_a_run_shows_each_status_attempts_results_errors_and_item_counts() -> None:
    wf = mixed()
    run(wf)
    html = wf._repr_html_()
    rows = table_of(html)
    assert list(rows) == ["flaky", "bad", "after", "skipper", "square"]
    assert rows["flaky"]["status"] == "COMPLETED"
    assert rows["flaky"]["attempts"] == "2"
    assert rows["flaky"]["result"] == "[1, 2, 3]"
    assert rows["bad"]["status"] == "FAILED"
    assert rows["bad"]["error"] == "RuntimeError: boom"
    assert rows["after"]["status"] == "SKIPPED"
    assert rows["after"]["attempts"] == ""
    assert rows["skipper"]["status"] == "SKIPPED"
    # the mapped task: one row, its items counted, its result the items that completed
    assert rows["square"]["task"] == "square 3 items: 2 completed, 1 failed"
    assert rows["square"]["status"] == "COMPLETED"
    assert rows["square"]["result"] == "[1, 9]"
    assert re.search(r"\d", rows["flaky"]["duration"])
    assert "5 tasks: 2 completed, 1 failed, 2 skipped" in html
    assert ">FAILED</span>" in html.split("<table")[0]  # the workflow's own status


def test_table_before_a_run_says_so_and_names_what_a_map_maps_over() -> None:
    wf = mixed()
    html = wf._repr_html_()
    assert "5 tasks, not run yet" in html
    rows = table_of(html)
    assert {r["status"] for r in rows.values()} == {"PENDING"}
    assert rows["square"]["task"] == "square map over flaky"


def test_status_colours_are_the_exports_own() -> None:
    from flowweaver._export import _COLOURS
    from flowweaver._status import TaskStatus

    wf = mixed()
    run(wf)
    html = wf._repr_html_()
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED):
        fill, stroke, _ = _COLOURS[status]
        assert f"background:{fill}" in html  # the table's badge
        assert f'fill="{fill}" stroke="{stroke}"' in html  # the SVG's node
        assert f"fill:{fill},stroke:{stroke}" in wf._repr_mimebundle_()[notebook.MERMAID]


HOSTILE = '<script>alert("x")</script>'


class _Hostile:
    def __repr__(self) -> str:
        return HOSTILE


def test_names_errors_and_results_are_escaped_everywhere() -> None:
    def fails() -> None:
        raise ValueError(f'<img src=x onerror="alert(1)"> {HOSTILE}')

    wf = Workflow(HOSTILE)
    wf.add_task(Task(HOSTILE, lambda: _Hostile()))
    wf.add_task(Task("fails & <b>", fails), depends_on=[HOSTILE])
    run(wf)
    bundle = wf._repr_mimebundle_()
    for text in (bundle["text/html"], wf._repr_html_()):
        assert "<script" not in text
        assert "<img" not in text
        assert "fails & <b>" not in text
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
        assert "fails &amp; &lt;b&gt;" in text
    # the labels (the front matter's title is a JSON string, which Mermaid draws as text)
    assert "<script" not in bundle[notebook.MERMAID].split("flowchart LR")[1]
    rows = table_of(bundle["text/html"])
    assert rows['<script>alert("x")</script>']["result"] == HOSTILE  # shown as text


def test_svg_stays_well_formed_xml_whatever_the_text() -> None:
    def fails() -> None:
        raise ValueError("control \x00\x1b[31m and a lone surrogate \udc80 <&>")

    wf = Workflow("xml")
    wf.add_task(Task("a\x01b <c>", lambda: 1))
    wf.add_task(Task("fails", fails), depends_on=["a\x01b <c>"])
    run(wf)
    svg = notebook.Diagram(wf).svg
    assert svg is not None
    root = ET.fromstring(svg)  # raises on anything XML cannot hold
    texts = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["a\ufffdb <c>", "fails"]


def test_svg_draws_upstream_tasks_left_of_their_dependents() -> None:
    wf = Workflow("diamond")
    wf.add_task(Task("extract", lambda: 1))
    wf.add_task(Task("left", lambda extract: 1), depends_on=["extract"])
    wf.add_task(Task("right", lambda extract: 2), depends_on=["extract"])
    wf.add_task(Task("join", lambda left, right: 3), depends_on=["left", "right"])
    svg = notebook.Diagram(wf).svg
    assert svg is not None
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    x = {
        g.find(f"{ns}text").text: float(g.find(f"{ns}rect").attrib["x"])  # type: ignore[union-attr]
        for g in root.iter(f"{ns}g")
        if g.find(f"{ns}rect") is not None
    }
    assert x["extract"] < x["left"] == x["right"] < x["join"]
    assert len(root.findall(f"{ns}g/{ns}path")) == 2 * 4  # a line and an arrowhead per edge


def test_a_big_workflow_shows_a_bounded_table_failures_first_and_no_diagram() -> None:
    def boom() -> None:
        raise RuntimeError("late failure")

    wf = Workflow("big")
    for i in range(1_000):
        wf.add_task(Task(f"t{i}", boom if i == 900 else (lambda: None)))
    run(wf)
    bundle = wf._repr_mimebundle_()
    html = bundle["text/html"]
    rows = table_of(html)
    assert len(rows) == notebook.MAX_ROWS
    assert rows["t900"]["status"] == "FAILED"  # past the first 200, shown all the same
    assert "t0" in rows
    assert "t198" in rows
    assert "t199" not in rows
    assert "and 800 more tasks: 800 completed" in html
    assert f"no diagram above {notebook.MAX_DIAGRAM} tasks (this workflow has 1,000)" in html
    assert notebook.MERMAID not in bundle
    assert "<svg" not in html
    assert len(html) < 100_000


def test_mermaid_is_left_out_past_its_edge_limit_and_the_svg_drawn_instead() -> None:
    wf = Workflow("dense")
    for i in range(120):
        ups = [f"t{j}" for j in range(max(0, i - 6), i)]
        wf.add_task(Task(f"t{i}", lambda **kw: None), depends_on=ups)
    bundle = wf._repr_mimebundle_()
    assert notebook.MERMAID not in bundle  # 699 edges > Mermaid's 500
    assert "<svg" in bundle["text/html"]


def test_an_invalid_graph_still_shows_its_tasks_and_says_why_there_is_no_diagram() -> None:
    wf = Workflow("broken")
    wf.add_task(Task("a", lambda: 1), depends_on=["missing"])
    bundle = wf._repr_mimebundle_()
    assert (
        "no diagram: WorkflowValidationError: task &#x27;a&#x27; depends on" in bundle["text/html"]
    )
    assert list(table_of(bundle["text/html"])) == ["a"]
    assert notebook.MERMAID not in bundle


def test_an_empty_workflow_displays() -> None:
    wf = Workflow("empty")
    assert "0 tasks, not run yet" in wf._repr_html_()
    assert set(wf._repr_mimebundle_()) == {"text/plain", "text/html"}


def test_mimebundle_keys_and_include_exclude() -> None:
    wf = mixed()
    assert set(wf._repr_mimebundle_()) == {"text/plain", "text/html", notebook.MERMAID}
    assert wf._repr_mimebundle_()["text/plain"] == repr(wf)
    assert set(wf._repr_mimebundle_(include={notebook.MERMAID})) == {notebook.MERMAID}
    assert set(wf._repr_mimebundle_(exclude={"text/html"})) == {"text/plain", notebook.MERMAID}
    assert wf._repr_mimebundle_()[notebook.MERMAID] == wf.to_mermaid()


def test_a_long_error_is_cut_in_the_table_and_whole_in_its_tooltip() -> None:
    def fails() -> None:
        raise ValueError("x" * 500)

    wf = Workflow("long")
    wf.add_task(Task("fails", fails))
    run(wf)
    html = wf._repr_html_()
    parser = _Table()
    parser.feed(html)
    assert f"ValueError: {'x' * 500}" in parser.titles
    assert table_of(html)["fails"]["error"].endswith("…")
    assert len(table_of(html)["fails"]["error"]) == 160


def test_a_result_whose_repr_raises_or_is_huge_is_described_briefly() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    wf = Workflow("results")
    wf.add_task(Task("broken", lambda: Broken()))
    wf.add_task(Task("huge", lambda: list(range(100_000))))
    run(wf)
    rows = table_of(wf._repr_html_())
    assert rows["broken"]["result"].startswith("<Broken instance at 0x")  # reprlib's note
    assert rows["huge"]["result"] == "[0, 1, 2, 3, 4, 5, ...]"


def test_under_ipython_the_diagram_and_the_table_are_two_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[dict[str, Any]] = []
    monkeypatch.setattr(notebook, "display", lambda obj, **options: shown.append(obj))
    wf = mixed()
    run(wf)
    wf._ipython_display_()
    diagram, table = shown
    assert set(diagram) == {"text/plain", "image/svg+xml", notebook.MERMAID}
    assert set(table) == {"text/plain", "text/html"}
    assert "<svg" not in table["text/html"]  # drawn once, above
    assert list(table_of(table["text/html"])) == ["flaky", "bad", "after", "skipper", "square"]


def test_under_ipython_a_workflow_too_big_to_draw_is_one_output_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[dict[str, Any]] = []
    monkeypatch.setattr(notebook, "display", lambda obj, **options: shown.append(obj))
    wf = Workflow("big")
    for i in range(notebook.MAX_DIAGRAM + 1):
        wf.add_task(Task(f"t{i}", lambda: None))
    wf._ipython_display_()
    (table,) = shown
    assert "no diagram above" in table["text/html"]
