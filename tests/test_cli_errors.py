"""Every bad input of issue 5: a clear message on stderr and exit code 2, nothing run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._cli_helpers import command_env, flowweaver_cmd, write

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

ONE = """
    from flowweaver import Task, Workflow

    wf = Workflow("one")
    wf.add_task(Task("only", lambda: print("the task ran")))
"""

TWO = """
    from flowweaver import Task, Workflow

    daily = Workflow("daily_report")
    daily.add_task(Task("d", lambda: print("the task ran")))
    hourly = Workflow("hourly_sync")
    hourly.add_task(Task("h", lambda: print("the task ran")))
"""


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "the task ran" not in result.stdout
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_a_missing_file(tmp_path: Path) -> None:
    result = flowweaver_cmd("run", "nowhere.py", "--no-store", cwd=tmp_path)
    assert_usage_error(result, "Error: no such file: nowhere.py")


def test_a_missing_file_with_a_name(tmp_path: Path) -> None:
    result = flowweaver_cmd("graph", "nowhere.py:etl", cwd=tmp_path)
    assert_usage_error(result, "Error: no such file: nowhere.py")


def test_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    result = flowweaver_cmd("run", "pipelines", "--no-store", cwd=tmp_path)
    assert_usage_error(result, "pipelines is a folder")


def test_a_file_that_fails_to_import_shows_its_traceback(tmp_path: Path) -> None:
    write(
        tmp_path,
        "broken.py",
        """
        from flowweaver import Workflow

        def settings():
            return {}["database_url"]

        URL = settings()
        wf = Workflow("never")
        """,
    )
    result = flowweaver_cmd("run", "broken.py", "--no-store", cwd=tmp_path)
    assert_usage_error(
        result,
        "Traceback (most recent call last):",
        "line 7, in <module>",
        "line 5, in settings",
        "KeyError: 'database_url'",
        "Error: could not import broken.py: KeyError: 'database_url' (traceback above)",
    )
    # the traceback starts at the user's file, not in importlib or the command
    trace = result.stderr.split("Traceback (most recent call last):", 1)[1]
    assert "importlib" not in trace
    assert "flowweaver/_cli" not in trace
    assert trace.index("broken.py") < trace.index("KeyError")


def test_a_file_with_a_syntax_error_shows_the_line(tmp_path: Path) -> None:
    write(tmp_path, "typo.py", "from flowweaver import Workflow\nwf = Workflow('x'\n")
    result = flowweaver_cmd("graph", "typo.py", cwd=tmp_path)
    assert_usage_error(result, "typo.py", "line 2", "SyntaxError", "Error: could not import")


def test_a_file_with_no_workflow(tmp_path: Path) -> None:
    write(
        tmp_path,
        "empty.py",
        """
        from flowweaver import Workflow

        if __name__ == "__main__":
            wf = Workflow("hidden")
        """,
    )
    result = flowweaver_cmd("run", "empty.py", "--no-store", cwd=tmp_path)
    assert_usage_error(result, "Error: empty.py defines no Workflow at module level")


def test_several_workflows_and_no_name_lists_the_choices(tmp_path: Path) -> None:
    write(tmp_path, "two.py", TWO)
    result = flowweaver_cmd("run", "two.py", "--no-store", cwd=tmp_path)
    assert_usage_error(
        result,
        "Error: two.py defines 2 workflows; pick one with two.py:NAME",
        "daily (Workflow 'daily_report'), hourly (Workflow 'hourly_sync')",
    )


def test_an_unknown_name_lists_the_choices_and_suggests_the_closest(tmp_path: Path) -> None:
    write(tmp_path, "two.py", TWO)
    result = flowweaver_cmd("run", "two.py:hourli", "--no-store", cwd=tmp_path)
    assert_usage_error(
        result,
        "Error: two.py has no workflow named 'hourli'; did you mean 'hourly'?",
        "choose one of: daily (Workflow 'daily_report'), hourly (Workflow 'hourly_sync')",
    )


def test_a_store_path_of_no_known_kind(tmp_path: Path) -> None:
    write(tmp_path, "one.py", ONE)
    result = flowweaver_cmd("run", "one.py", "--store", "state.txt", cwd=tmp_path)
    assert_usage_error(result, "state.txt", "must end in .db (SQLite) or .json (JSON)")


@pytest.mark.parametrize("store", ["notes.db", "notes.json"])
def test_a_store_path_that_is_not_a_flowweaver_store(tmp_path: Path, store: str) -> None:
    write(tmp_path, "one.py", ONE)
    (tmp_path / store).write_text("my shopping list, not a state store\n")
    result = flowweaver_cmd("run", "one.py", "--store", store, cwd=tmp_path)
    assert_usage_error(result, store)
    # never overwritten
    assert (tmp_path / store).read_text() == "my shopping list, not a state store\n"


@pytest.mark.parametrize("command", ["status", "reset"])
def test_status_and_reset_of_a_file_that_is_not_a_store(tmp_path: Path, command: str) -> None:
    junk = b"\x00\x01 definitely not sqlite" * 50
    (tmp_path / "notes.db").write_bytes(junk)
    extra = ["--yes"] if command == "reset" else []
    result = flowweaver_cmd(command, "notes.db", *extra, cwd=tmp_path)
    assert_usage_error(result, "notes.db")
    assert (tmp_path / "notes.db").read_bytes() == junk


def test_a_store_in_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    write(tmp_path, "one.py", ONE)
    result = flowweaver_cmd("run", "one.py", "--store", "no/such/dir/state.db", cwd=tmp_path)
    assert_usage_error(result, "the folder no/such/dir does not exist")


@pytest.mark.parametrize("command", ["status", "reset"])
def test_status_and_reset_need_an_existing_store(tmp_path: Path, command: str) -> None:
    result = flowweaver_cmd(command, "missing.db", cwd=tmp_path)
    assert_usage_error(result, "Error: no state store at missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_status_without_any_run_in_this_folder(tmp_path: Path) -> None:
    result = flowweaver_cmd("status", cwd=tmp_path)
    assert_usage_error(result, "no state store at .flowweaver/state.db")
    assert not (tmp_path / ".flowweaver").exists()


def test_an_unknown_executor(tmp_path: Path) -> None:
    write(tmp_path, "one.py", ONE)
    result = flowweaver_cmd("run", "one.py", "--executor", "processes", cwd=tmp_path)
    assert_usage_error(result, "Invalid value for '--executor'", "'processes'", "threaded")


@pytest.mark.parametrize("workers", ["0", "-3", "many"])
def test_workers_must_be_a_positive_whole_number(tmp_path: Path, workers: str) -> None:
    write(tmp_path, "one.py", ONE)
    result = flowweaver_cmd("run", "one.py", "--no-store", "--workers", workers, cwd=tmp_path)
    assert_usage_error(result, "Invalid value for '--workers'", workers)


def test_workers_with_the_sequential_executor(tmp_path: Path) -> None:
    write(tmp_path, "one.py", ONE)
    result = flowweaver_cmd(
        "run", "one.py", "--no-store", "-e", "sequential", "-w", "4", cwd=tmp_path
    )
    assert_usage_error(result, "--workers 4 does not apply to the sequential executor")


def test_store_and_no_store_together(tmp_path: Path) -> None:
    write(tmp_path, "one.py", ONE)
    result = flowweaver_cmd("run", "one.py", "--no-store", "--store", "s.db", cwd=tmp_path)
    assert_usage_error(result, "--store and --no-store cannot be used together")


def test_an_invalid_workflow_is_reported_before_anything_runs(tmp_path: Path) -> None:
    write(
        tmp_path,
        "cycle.py",
        """
        from flowweaver import Task, Workflow

        wf = Workflow("loop")
        wf.add_task(Task("a", lambda: print("the task ran")), depends_on=["b"])
        wf.add_task(Task("b", lambda: print("the task ran")), depends_on=["a"])
        """,
    )
    for command in (["run", "cycle.py", "--no-store"], ["plan", "cycle.py"], ["graph", "cycle.py"]):
        result = flowweaver_cmd(*command, cwd=tmp_path)
        assert_usage_error(result, "workflow 'loop' in cycle.py is invalid", "a -> b -> a")
    assert not (tmp_path / ".flowweaver").exists()


def test_an_unknown_command_or_option(tmp_path: Path) -> None:
    assert flowweaver_cmd("runn", cwd=tmp_path).returncode == 2
    assert flowweaver_cmd("run", "x.py", "--fast", cwd=tmp_path).returncode == 2


# Blocking an import by putting None in sys.modules makes it fail as if not installed.
WITHOUT = """
import sys
for name in {names!r}:
    sys.modules[name] = None
import runpy
runpy.run_module("flowweaver", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("missing", [["click"], ["rich"], ["click", "rich"]])
def test_without_the_cli_extra_the_command_says_how_to_install_it(
    tmp_path: Path, missing: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT.format(names=missing), "run", "x.py"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert " and ".join(missing) in result.stderr
    assert 'pip install "flowweaver[cli]"' in result.stderr
    assert "Traceback" not in result.stderr


def test_the_core_library_imports_and_runs_without_click_or_rich(tmp_path: Path) -> None:
    code = """
import sys
sys.modules["click"] = None
sys.modules["rich"] = None
import flowweaver
wf = flowweaver.Workflow("w")
wf.add_task(flowweaver.Task("t", lambda: 1))
flowweaver.SequentialExecutor().execute(wf)
print(wf.to_mermaid().splitlines()[3], wf.get_task("t").result)
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "flowchart LR 1\n"


def test_importing_flowweaver_does_not_import_the_command_line() -> None:
    code = (
        "import sys, flowweaver, flowweaver.aio\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich')\n"
        "             or m.startswith('flowweaver._cli')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
