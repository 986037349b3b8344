"""The command and captured lines: ``flowweaver run`` shows a failed task's last lines,
``flowweaver status --logs TASK`` prints what the store kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._cli_helpers import InProcess, write

CHATTY = """
    import logging
    from flowweaver import Workflow, task

    log = logging.getLogger("etl")

    @task()
    def extract():
        print("extracting")
        return [1, 2, 3]

    @task()
    def load(extract):
        for i in range(8):
            print(f"row {i}")
        log.warning("the database said no")
        raise ValueError("cannot load")

    workflow = Workflow("chatty")
    workflow.add_task(extract)
    workflow.add_task(load, depends_on=["extract"])
"""


@pytest.fixture
def flowweaver_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    write(tmp_path, "chatty.py", CHATTY)
    monkeypatch.chdir(tmp_path)
    command = InProcess(tmp_path)
    yield command
    command.forget()


def _err(result: Any) -> str:
    """The command's stderr; under click 8.1 (the lowest bound) its runner mixes stderr
    into the output and has no stderr of its own."""
    try:
        return str(result.stderr)
    except ValueError:
        return str(result.output)


@pytest.mark.parametrize("store", ["state.db", "state.json"])
def test_a_failed_tasks_summary_shows_its_last_lines_and_status_prints_them_all(
    flowweaver_in: InProcess, store: str
) -> None:
    result = flowweaver_in("run", "chatty.py", "--store", store)
    assert result.exit_code == 1, result.output
    err = _err(result)
    assert "ValueError: cannot load" in err
    last = err[err.index("the last 5 of the 9 lines it logged and printed") :]
    assert "(all of them: flowweaver status --logs load)" in last
    assert [line for line in last.splitlines() if line.startswith("  | ")] == [
        "  | row 4",
        "  | row 5",
        "  | row 6",
        "  | row 7",
        "  | WARNING etl: the database said no",
    ]

    shown = flowweaver_in("status", store, "--logs", "load")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        *(f"row {i}" for i in range(8)),
        "WARNING etl: the database said no",
    ]
    shown = flowweaver_in("status", store, "--logs", "extract", "--workflow", "chatty")
    assert shown.stdout.splitlines() == ["extracting"]


def test_status_logs_of_an_unknown_task_is_bad_usage(flowweaver_in: InProcess) -> None:
    flowweaver_in("run", "chatty.py", "--store", "s.db")
    result = flowweaver_in("status", "s.db", "--logs", "lod")
    assert result.exit_code == 2
    assert "no saved task 'lod'; did you mean 'load'?" in _err(result)


def test_status_logs_of_a_task_saved_without_lines_says_why(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    import flowweaver
    from flowweaver import SQLiteStateStore, Task, Workflow

    wf = Workflow("plain")
    wf.add_task(Task("quiet", lambda: 1))
    flowweaver.SequentialExecutor(SQLiteStateStore(tmp_path / "s.db")).execute(wf)
    result = flowweaver_in("status", "s.db", "--logs", "quiet")
    assert result.exit_code == 2
    assert "task 'quiet'" in _err(result)
    assert "has no captured lines" in _err(result)
    assert "capture_logs=True" in _err(result)


def test_status_logs_and_run_do_not_go_together(flowweaver_in: InProcess) -> None:
    flowweaver_in("run", "chatty.py", "--store", "s.db")
    result = flowweaver_in("status", "s.db", "--logs", "load", "--run", "abc")
    assert result.exit_code == 2
    assert "--run and --logs do not go together" in _err(result)


MAPPED = """
    from flowweaver import Workflow, task

    @task()
    def files():
        return ["a.txt", "b.txt"]

    @task(map_over="files")
    def count(files):
        print(f"opening {files}")
        if files == "b.txt":
            raise FileNotFoundError(files)
        return 1

    workflow = Workflow("mapped")
    workflow.add_task(files)
    workflow.add_task(count, depends_on=["files"])
"""


def test_a_failed_items_summary_shows_what_it_printed(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    write(tmp_path, "mapped.py", MAPPED)
    result = flowweaver_in("run", "mapped.py", "--no-store")
    assert result.exit_code == 1, result.output
    err = _err(result)
    item = err[err.index("item 'count[1]' failed") :]
    assert "what it logged and printed (1 line):\n  | opening b.txt\n" in item
