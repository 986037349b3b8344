"""A real Jupyter kernel runs a notebook made here (nbformat, nbclient, ipykernel): a
workflow run with flowweaver.progress(), blocking and awaited, then displayed. What the
notebook file keeps is what a person sees: the progress outputs as last updated, the
diagram and the table."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from tests.test_notebook import table_of

SETUP = """
import time
import flowweaver
import flowweaver.aio
from flowweaver import SequentialExecutor, Skip, Task, Workflow, WorkflowExecutionError

calls = {"flaky": 0}

def flaky():
    calls["flaky"] += 1
    if calls["flaky"] == 1:
        raise ValueError("first attempt fails")
    time.sleep(0.6)  # long enough for the display to be redrawn while it runs
    return [1, 2, 3]

def bad():
    raise RuntimeError("boom <script>")

def skipper():
    raise Skip("not today")

wf = Workflow("mixed")
wf.add_task(Task("flaky", flaky, retries=1))
wf.add_task(Task("bad", bad))
wf.add_task(Task("after", lambda bad: bad), depends_on=["bad"])
wf.add_task(Task("skipper", skipper))
wf.add_task(Task("square", lambda flaky: flaky * flaky), map_over="flaky")
try:
    SequentialExecutor(observer=flowweaver.progress()).execute(wf)
except WorkflowExecutionError:
    pass
"""

AWAITED = """
small = Workflow("small")
small.add_task(Task("one", lambda: 1))
await flowweaver.aio.AsyncExecutor(observer=flowweaver.progress()).execute(small)
"""


def run_notebook(tmp_path: Path, sources: list[str]) -> list[list[dict[str, Any]]]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(s).strip()) for s in sources]
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.km = client.create_kernel_manager()
    try:
        client.start_new_kernel()
        client.start_new_kernel_client()
    except (NoSuchKernel, DeadKernelError, TimeoutError, RuntimeError) as exc:
        client._cleanup_kernel()
        pytest.skip(f"the Jupyter kernel could not start: {type(exc).__name__}: {exc}")
    try:
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    finally:
        client._cleanup_kernel()
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)  # as a person would save it: what they would see
    saved = nbformat.read(path, as_version=4)
    return [cell.outputs for cell in saved.cells]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_kernel_shows_live_progress_then_the_workflow_as_diagram_and_table(
    tmp_path: Path,
) -> None:
    run_cell, display_cell, awaited_cell = run_notebook(tmp_path, [SETUP, "wf", AWAITED])

    # the run: one output, updated in place to its final state; no lines on stderr
    assert [o["output_type"] for o in run_cell] == ["display_data"]
    final = run_cell[0]["data"]
    assert final["text/plain"].startswith("mixed: FAILED 5/5 tasks · 1 failed · 2 skipped")
    assert "▦ square: 3 items done" in final["text/plain"]
    assert "✗ bad: RuntimeError: boom &lt;script&gt;" in final["text/html"]
    assert "<script" not in final["text/html"]

    # the workflow: the diagram (Mermaid, SVG for front-ends without it), then the table
    diagram, table = display_cell
    assert diagram["output_type"] == table["output_type"] == "display_data"
    assert set(diagram["data"]) == {"text/plain", "image/svg+xml", "text/vnd.mermaid"}
    assert diagram["data"]["text/vnd.mermaid"].splitlines()[3] == "flowchart LR"
    assert set(table["data"]) == {"text/plain", "text/html"}
    rows = table_of(table["data"]["text/html"])
    assert {name: r["status"] for name, r in rows.items()} == {
        "flaky": "COMPLETED",
        "bad": "FAILED",
        "after": "SKIPPED",
        "skipper": "SKIPPED",
        "square": "COMPLETED",
    }
    assert rows["flaky"]["attempts"] == "2"
    assert rows["square"]["task"] == "square 3 items: 3 completed"
    assert rows["bad"]["error"] == "RuntimeError: boom <script>"

    # an awaited run on the kernel's own loop
    assert [o["output_type"] for o in awaited_cell] == ["display_data"]
    assert awaited_cell[0]["data"]["text/plain"].startswith("small: COMPLETED 1/1 tasks")
