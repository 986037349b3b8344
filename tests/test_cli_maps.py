"""``flowweaver run`` with mapped tasks: progress and the summary count items, not tasks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from flowweaver import Task
from flowweaver._cli._progress import LiveProgress, RunState
from flowweaver._events import (
    RunStarted,
    TaskCompleted,
    TaskFailed,
    TaskRestored,
    TaskSkipped,
    TaskStarted,
)
from tests._cli_helpers import flowweaver_cmd, write
from tests.test_cli_run import summary_rows

FILES = """
    from flowweaver import Workflow, task

    @task()
    def list_files():
        return [f"f{{i}}.txt" for i in range(12)]

    @task(map_over="list_files", map_key=lambda f: f, max_concurrent=3,
          on_item_failure={mode!r})
    def process_file(list_files):
        if int(list_files[1:-4]) in {bad}:
            raise ValueError(f"cannot read {{list_files}}")
        return len(list_files)

    @task()
    def report(process_file):
        return sum(process_file)

    workflow = Workflow("files")
    workflow.add_task(list_files)
    workflow.add_task(process_file)
    workflow.add_task(report, depends_on=["process_file"])
"""


def files_flow(tmp_path: Path, mode: str, bad: set[int]) -> Path:
    return write(tmp_path, "files_flow.py", FILES.format(mode=mode, bad=bad or "()"))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_summary_counts_items_and_skipped_failures_are_no_failed_task(tmp_path: Path) -> None:
    path = files_flow(tmp_path, "skip", {3, 7})
    result = flowweaver_cmd("run", path, "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = summary_rows(result.stdout)
    assert list(rows) == ["list_files", "process_file", "report"]  # no row per item
    assert rows["process_file"][0] == "COMPLETED"
    assert (
        "process_file: 10 of 12 items completed, 2 failed: process_file[f3.txt], "
        "process_file[f7.txt] (left out of its result: on_item_failure='skip')\n"
    ) in result.stdout
    assert re.search(
        r"^files: COMPLETED in .*: 3 completed, 0 failed, 0 skipped\.$", result.stdout, re.M
    )
    assert "(failed:" not in result.stdout
    # the mapped task's own progress line counts its items
    assert re.search(
        r"^\[\s*[\d.]+s\] completed  process_file \([\d.]+ m?s\): 10 items done, 2 failed$",
        result.stdout,
        re.M,
    )
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_failed_map_names_a_bounded_list_of_items_and_shows_their_tracebacks(
    tmp_path: Path,
) -> None:
    bad = {1, 2, 3, 5, 6, 8, 9, 10}
    path = files_flow(tmp_path, "fail", bad)
    result = flowweaver_cmd("run", path, "--no-store", "--executor", "sequential", cwd=tmp_path)
    assert result.returncode == 1
    rows = summary_rows(result.stdout)
    assert rows["process_file"][0] == "FAILED"
    assert rows["report"][0] == "SKIPPED"
    assert (
        "process_file: 4 of 12 items completed, 8 failed: process_file[f1.txt], "
        "process_file[f2.txt], process_file[f3.txt], process_file[f5.txt], "
        "process_file[f6.txt] and 3 more\n"
    ) in result.stdout
    assert "1 failed, 1 skipped (failed: process_file)." in result.stdout
    # the items' tracebacks, from the user's code, at most three of them
    assert (
        "task 'process_file' failed: 8 of 12 items of task 'process_file' failed" in result.stderr
    )
    assert result.stderr.count("Traceback (most recent call last)") == 3
    item = result.stderr.split("item 'process_file[f1.txt]' failed after 1 attempt:", 1)[1]
    assert f'File "{path}", line' in item
    assert "ValueError: cannot read f1.txt" in item
    assert "(and 5 more failed items)" in result.stderr


def item_events(state: RunState, name: str, keys: range, event: type, *args: object) -> None:
    for k in keys:
        state.apply(event("files", 2.0, f"{name}[{k}]", *args, item=k))


def test_item_events_count_as_items_of_their_mapped_task_never_as_tasks() -> None:
    process = Task("process_file", lambda list_files: list_files, map_over="list_files")
    process._items = [process._item(k) for k in range(10)]  # expanded: 10 items known
    state = RunState("files", 3, {"process_file": process})
    state.apply(RunStarted("files", 1.0, 3))
    state.apply(TaskCompleted("files", 1.5, "list_files", 1, 0.1))
    item_events(state, "process_file", range(6), TaskStarted, 1)
    item_events(state, "process_file", range(2), TaskCompleted, 1, 0.1)
    item_events(state, "process_file", range(2, 3), TaskFailed, 1, 0.1, ValueError("x"))
    item_events(state, "process_file", range(3, 4), TaskSkipped, "", "no data")
    item_events(state, "process_file", range(9, 10), TaskRestored)

    assert state.completed == 1
    assert state.failed == []  # an item's failure is not a task's
    assert state.skipped == 0
    assert state.restored == []
    counts = state.items["process_file"]
    assert (counts.done, counts.restored, counts.failed, counts.skipped) == (
        2,
        1,
        ["process_file[2]"],
        1,
    )
    assert sorted(state.running) == ["process_file[3]", "process_file[4]", "process_file[5]"]

    console = Console(width=100, record=True, color_system=None)
    console.print(LiveProgress(state, console).__rich__())
    screen = console.export_text()
    assert "1/3" in screen  # tasks settled of tasks
    assert "1 done" in screen
    assert "0 failed" in screen
    assert "▦ process_file  3/10 items done (1 restored) · 1 failed · 1 skipped" in screen
    assert "▶ process_file[3]" in screen
