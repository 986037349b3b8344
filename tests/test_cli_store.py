"""Runs with a state store, and ``flowweaver status`` / ``reset`` on it: real SQLite and JSON
files in a scratch folder, the command in a subprocess."""

from __future__ import annotations

import re
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests._cli_helpers import (
    flowweaver_cmd,
    run_and_interrupt,
    write,
)

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

# Each task appends its name to runs.log when it really runs (not when it is restored).
# `check` fails until a file named "fixed" exists beside the workflow.
COUNTED = """
    import pathlib
    from flowweaver import Workflow, task

    HERE = pathlib.Path(__file__).parent

    def ran(name):
        with open(HERE / "runs.log", "a") as log:
            log.write(name + "\\n")

    @task()
    def extract():
        ran("extract")
        return [1, 2, 3]

    @task()
    def check(extract):
        ran("check")
        if not (HERE / "fixed").exists():
            raise ValueError("the check is broken")
        return len(extract)

    @task()
    def load(check):
        ran("load")
        return check * 10

    workflow = Workflow("counted")
    workflow.add_task(extract)
    workflow.add_task(check, depends_on=["extract"])
    workflow.add_task(load, depends_on=["check"])
"""


def runs(folder: Path) -> list[str]:
    log = folder / "runs.log"
    return log.read_text().split() if log.exists() else []


def verbs(stdout: str) -> dict[str, list[str]]:
    """Progress verb -> the tasks it was printed for."""
    out: dict[str, list[str]] = {}
    for verb, task in re.findall(r"^\[\s*[\d.]+s\] (\w+)\s+(\S+)", stdout, re.M):
        out.setdefault(verb, []).append(task)
    return out


@pytest.fixture
def counted(tmp_path: Path) -> Path:
    write(tmp_path, "counted.py", COUNTED)
    (tmp_path / "fixed").touch()
    return tmp_path


def test_the_default_store_lives_in_dot_flowweaver_and_a_second_run_resumes(
    counted: Path,
) -> None:
    first = flowweaver_cmd("run", "counted.py", cwd=counted)
    assert first.returncode == 0, first.stderr
    assert (counted / ".flowweaver" / "state.db").is_file()
    assert (counted / ".flowweaver" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert "State saved in .flowweaver/state.db" in first.stdout
    # the reference's plain sqlite3 query works on it
    with closing(sqlite3.connect(counted / ".flowweaver" / "state.db")) as db:
        saved = db.execute("SELECT task_name FROM tasks WHERE status = 'COMPLETED'").fetchall()
    assert sorted(name for (name,) in saved) == ["check", "extract", "load"]

    second = flowweaver_cmd("run", "counted.py", cwd=counted)
    assert second.returncode == 0, second.stderr
    # one line counts what was restored
    assert re.search(
        r"^\[\s*[\d.]+s\] restored   3 tasks \(saved results\): extract, check, load$",
        second.stdout,
        re.M,
    )
    assert "started" not in verbs(second.stdout)
    assert runs(counted) == ["extract", "check", "load"]  # nothing ran twice
    assert re.search(r"^extract\s+COMPLETED \(restored\)\s+0\s+-$", second.stdout, re.M)
    assert "3 completed (3 restored)" in second.stdout


def test_fresh_runs_every_task_again(counted: Path) -> None:
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    again = flowweaver_cmd("run", "counted.py", "--fresh", cwd=counted)
    assert again.returncode == 0, again.stderr
    assert "restored" not in verbs(again.stdout)
    assert runs(counted) == ["extract", "check", "load"] * 2


@pytest.mark.parametrize("store", ["state.json", "state.db", "state.sqlite"])
def test_store_picks_the_kind_by_suffix_and_resumes_from_it(counted: Path, store: str) -> None:
    assert flowweaver_cmd("run", "counted.py", "--store", store, cwd=counted).returncode == 0
    assert (counted / store).is_file()
    assert not (counted / ".flowweaver").exists()
    second = flowweaver_cmd("run", "counted.py", "--store", store, "-v", cwd=counted)
    assert verbs(second.stdout).get("restored") == ["extract", "check", "load"]
    if store.endswith(".json"):
        assert '"extract"' in (counted / store).read_text()


def test_a_failed_run_resumes_after_the_fix_without_redoing_finished_work(
    tmp_path: Path,
) -> None:
    write(tmp_path, "counted.py", COUNTED)
    failed = flowweaver_cmd("run", "counted.py", cwd=tmp_path)
    assert failed.returncode == 1
    assert "Fix the failure and run the same command again" in failed.stdout
    (tmp_path / "fixed").touch()
    fixed = flowweaver_cmd("run", "counted.py", "--verbose", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert verbs(fixed.stdout).get("restored") == ["extract"]
    assert verbs(fixed.stdout).get("completed") == ["check", "load"]
    assert runs(tmp_path) == ["extract", "check", "check", "load"]


SLOW = """
    import pathlib, time
    from flowweaver import Workflow, task

    HERE = pathlib.Path(__file__).parent

    def ran(name):
        with open(HERE / "runs.log", "a") as log:
            log.write(name + "\\n")

    @task()
    def first():
        ran("first")
        return 1

    @task()
    def second(first):
        ran("second")
        print("second is running", flush=True)
        while not (HERE / "go").exists():
            time.sleep(0.02)
        return first + 1

    @task()
    def third(second):
        ran("third")
        return second + 1

    workflow = Workflow("interruptible")
    workflow.add_task(first)
    workflow.add_task(second, depends_on=["first"])
    workflow.add_task(third, depends_on=["second"])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("executor", ["sequential", "threaded"])
def test_a_run_stopped_by_sigint_resumes_and_finishes_on_the_next_run(
    tmp_path: Path, executor: str
) -> None:
    write(tmp_path, "slow.py", SLOW)
    code, out = run_and_interrupt(
        ["run", "slow.py", "--executor", executor], tmp_path, "second is running"
    )
    assert code == 130, out
    assert "cancelled  second" in out
    assert "Completed tasks are saved in .flowweaver/state.db" in out

    (tmp_path / "go").touch()
    resumed = flowweaver_cmd("run", "slow.py", "--executor", executor, "-v", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert verbs(resumed.stdout).get("restored") == ["first"]
    assert verbs(resumed.stdout).get("completed") == ["second", "third"]
    assert runs(tmp_path) == ["first", "second", "second", "third"]


# -- status ----------------------------------------------------------------------------------


def test_status_shows_each_saved_task_with_status_time_and_error(tmp_path: Path) -> None:
    write(tmp_path, "counted.py", COUNTED)
    assert flowweaver_cmd("run", "counted.py", cwd=tmp_path).returncode == 1
    result = flowweaver_cmd("status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "workflow counted:" in result.stdout
    rows = {
        m.group(1): (m.group(2), m.group(3), m.group(4))
        for m in re.finditer(
            r"^(\w+) +(COMPLETED|FAILED) +(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) *(.*)$",
            result.stdout,
            re.M,
        )
    }
    assert rows["extract"][0] == "COMPLETED"
    assert rows["extract"][2] == ""
    assert rows["check"][0] == "FAILED"
    assert "ValueError: the check is broken" in rows["check"][2]
    assert "load" not in rows  # skipped, never saved


def test_status_of_one_workflow_in_a_shared_store(counted: Path) -> None:
    write(
        counted,
        "other.py",
        """
        from flowweaver import Task, Workflow
        wf = Workflow("other")
        wf.add_task(Task("elsewhere", lambda: 1))
        """,
    )
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    assert flowweaver_cmd("run", "other.py", cwd=counted).returncode == 0
    both = flowweaver_cmd("status", ".flowweaver/state.db", cwd=counted)
    assert "workflow counted:" in both.stdout
    assert "workflow other:" in both.stdout
    one = flowweaver_cmd("status", "--workflow", "other", cwd=counted)
    assert one.returncode == 0
    assert "elsewhere" in one.stdout
    assert "extract" not in one.stdout
    unknown = flowweaver_cmd("status", "--workflow", "counte", cwd=counted)
    assert unknown.returncode == 2
    assert "no saved workflow 'counte'; did you mean 'counted'?" in unknown.stderr


# -- reset -----------------------------------------------------------------------------------


def test_reset_yes_deletes_everything_so_the_next_run_starts_over(counted: Path) -> None:
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    result = flowweaver_cmd("reset", "--yes", cwd=counted)
    assert result.returncode == 0, result.stderr
    assert "Deleted 3 saved task state(s)" in result.stdout
    assert "holds no saved tasks" in flowweaver_cmd("status", cwd=counted).stdout
    again = flowweaver_cmd("run", "counted.py", cwd=counted)
    assert "restored" not in verbs(again.stdout)


def test_reset_one_task_runs_it_again_and_its_downstream_only_if_its_result_changed(
    counted: Path,
) -> None:
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    result = flowweaver_cmd("reset", "--task", "check", "--yes", cwd=counted)
    assert result.returncode == 0, result.stderr
    assert "Deleted 1 saved task state(s)" in result.stdout
    again = flowweaver_cmd("run", "counted.py", "--verbose", cwd=counted)
    # check returns what it did: load, downstream of it, is restored (early cut-off)
    assert verbs(again.stdout).get("restored") == ["extract", "load"]
    assert verbs(again.stdout).get("completed") == ["check"]


def test_reset_asks_first_and_a_no_deletes_nothing(counted: Path) -> None:
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    declined = flowweaver_cmd("reset", "--workflow", "counted", cwd=counted, input="n\n")
    assert declined.returncode == 1
    assert "Delete all 3 saved task(s) of workflow 'counted'" in declined.stdout
    assert "Nothing deleted." in declined.stdout
    assert "extract" in flowweaver_cmd("status", cwd=counted).stdout
    accepted = flowweaver_cmd("reset", "--workflow", "counted", cwd=counted, input="y\n")
    assert accepted.returncode == 0
    assert "holds no saved tasks" in flowweaver_cmd("status", cwd=counted).stdout


def test_reset_of_an_unknown_task_deletes_nothing_and_lists_the_saved_ones(
    counted: Path,
) -> None:
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    result = flowweaver_cmd("reset", "--task", "lod", "--yes", cwd=counted)
    assert result.returncode == 2
    assert "no saved task 'lod'; did you mean 'load'? saved tasks: check, extract, load" in (
        result.stderr
    )
    assert "load" in flowweaver_cmd("status", cwd=counted).stdout


def test_reset_of_a_task_two_workflows_saved_needs_workflow(counted: Path) -> None:
    write(
        counted,
        "twin.py",
        """
        from flowweaver import Task, Workflow
        wf = Workflow("twin")
        wf.add_task(Task("extract", lambda: 1))
        """,
    )
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    assert flowweaver_cmd("run", "twin.py", cwd=counted).returncode == 0
    ambiguous = flowweaver_cmd("reset", "--task", "extract", "--yes", cwd=counted)
    assert ambiguous.returncode == 2
    assert "saved for several workflows (counted, twin)" in ambiguous.stderr
    picked = flowweaver_cmd(
        "reset", "--task", "extract", "--workflow", "twin", "--yes", cwd=counted
    )
    assert picked.returncode == 0, picked.stderr
    status = flowweaver_cmd("status", cwd=counted).stdout
    assert "workflow twin" not in status
    assert "workflow counted" in status


def test_reset_of_an_empty_store_has_nothing_to_do(counted: Path) -> None:
    assert flowweaver_cmd("run", "counted.py", cwd=counted).returncode == 0
    assert flowweaver_cmd("reset", "--yes", cwd=counted).returncode == 0
    again = flowweaver_cmd("reset", "--yes", cwd=counted)
    assert again.returncode == 0
    assert "Nothing to delete" in again.stdout
