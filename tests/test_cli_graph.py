"""``flowweaver graph``: the DAG of a workflow file as Mermaid or DOT text on stdout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests._cli_helpers import flowweaver_cmd, write

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

PIPELINE = """
    from flowweaver import Task, Workflow

    workflow = Workflow("etl")
    workflow.add_task(Task("extract", lambda: print("the task ran")))
    workflow.add_task(Task('say "hi"', lambda: None), depends_on=["extract"])
    workflow.add_task(Task("load", lambda: None), depends_on=["extract", 'say "hi"'])
"""


def test_graph_prints_mermaid_by_default_without_running_anything(tmp_path: Path) -> None:
    write(tmp_path, "etl.py", PIPELINE)
    result = flowweaver_cmd("graph", "etl.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        '---\ntitle: "etl"\n---\nflowchart LR\n'
        '    t0["extract"]\n'
        '    t1["say #34;hi#34;"]\n'
        '    t2["load"]\n'
        "    t0 --> t1\n"
        "    t0 --> t2\n"
        "    t1 --> t2\n"
    )
    assert not (tmp_path / ".flowweaver").exists()


def test_graph_format_dot(tmp_path: Path) -> None:
    write(tmp_path, "etl.py", PIPELINE)
    result = flowweaver_cmd("graph", "etl.py:etl", "--format", "dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('digraph "etl" {')
    assert '    t1 [label="say \\"hi\\""];' in result.stdout
    assert "    t1 -> t2;" in result.stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_dot_output_renders_with_graphviz(tmp_path: Path) -> None:
    write(tmp_path, "etl.py", PIPELINE)
    dot = flowweaver_cmd("graph", "etl.py", "-f", "dot", cwd=tmp_path).stdout
    svg = subprocess.run(
        ["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=False, timeout=60
    )
    assert svg.returncode == 0, svg.stderr
    assert "say &quot;hi&quot;" in svg.stdout


def test_graph_rejects_an_unknown_format(tmp_path: Path) -> None:
    write(tmp_path, "etl.py", PIPELINE)
    result = flowweaver_cmd("graph", "etl.py", "--format", "png", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--format'" in result.stderr
