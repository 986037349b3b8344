"""``flowweaver history`` and ``flowweaver status --run ID``: the command in a subprocess,
on real stores in a scratch folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowweaver import SQLiteStateStore, TaskStatus
from tests._cli_helpers import flowweaver_cmd, write
from tests.store_helpers import NOW
from tests.test_cli_store import COUNTED

# subprocesses: not in the quick `-m "not slow"` run
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

RUN_ID = re.compile(r"^([0-9a-f]{16})\s", re.M)


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    """A failed run of `counted`, then a fixed one (in the default store)."""
    write(tmp_path, "counted.py", COUNTED)
    assert flowweaver_cmd("run", "counted.py", cwd=tmp_path).returncode == 1
    (tmp_path / "fixed").touch()
    assert flowweaver_cmd("run", "counted.py", cwd=tmp_path).returncode == 0
    return tmp_path


def test_history_lists_the_runs_newest_first(two_runs: Path) -> None:
    shown = flowweaver_cmd("history", cwd=two_runs)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["run", "workflow", "started", "duration", "status", "tasks"]
    newest, oldest = lines[2], lines[3]
    assert re.match(r"[0-9a-f]{16}  counted\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", newest)
    assert newest.endswith("COMPLETED  2 completed, 1 restored")
    assert oldest.endswith("FAILED     1 completed, 1 failed, 1 skipped")
    assert re.search(r"\d+(\.\d+)? (ms|s)", newest)  # the duration

    assert flowweaver_cmd("history", "--workflow", "counted", cwd=two_runs).stdout == shown.stdout
    one = flowweaver_cmd("history", "-n", "1", cwd=two_runs)
    assert one.returncode == 0, one.stderr
    assert RUN_ID.findall(one.stdout) == RUN_ID.findall(shown.stdout)[:1]
    assert "Older runs not shown: pass --limit N to see more than 1." in one.stdout


def test_status_run_shows_one_run_by_its_id_or_the_start_of_it(two_runs: Path) -> None:
    newest, oldest = RUN_ID.findall(flowweaver_cmd("history", cwd=two_runs).stdout)
    shown = flowweaver_cmd("status", "--run", newest, cwd=two_runs)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"run {newest} of workflow counted: COMPLETED" in out
    assert re.search(r"^started .+, ended .+, took .+$", out, re.M)
    assert "parameters: none" in out
    assert "tasks: 2 completed, 1 restored" in out
    run = SQLiteStateStore(two_runs / ".flowweaver" / "state.db").get_run(newest)
    assert run is not None
    assert sorted(run.ran) == ["check", "load"]
    for task, why in run.ran.items():  # why each ran, as the run recorded it
        assert re.search(rf"^{task}\s+ran\s+{re.escape(why)}$", out, re.M)
    assert re.search(r"^extract\s+restored\s+saved result stands$", out, re.M)

    prefix = flowweaver_cmd("status", "--run", oldest[:6], cwd=two_runs)
    assert prefix.returncode == 0, prefix.stderr
    assert f"run {oldest} of workflow counted: FAILED" in prefix.stdout


def test_history_reads_a_json_store_too(tmp_path: Path) -> None:
    write(tmp_path, "counted.py", COUNTED)
    (tmp_path / "fixed").touch()
    assert flowweaver_cmd("run", "counted.py", "--store", "s.json", cwd=tmp_path).returncode == 0
    shown = flowweaver_cmd("history", "s.json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[2].endswith("COMPLETED  3 completed")


def test_history_errors_name_the_store_and_say_what_to_do(two_runs: Path) -> None:
    missing = flowweaver_cmd("history", "nowhere.db", cwd=two_runs)
    assert missing.returncode == 2
    assert "no state store at nowhere.db" in missing.stderr

    wrong = flowweaver_cmd("history", "--workflow", "countd", cwd=two_runs)
    assert wrong.returncode == 2
    assert "the run history of .flowweaver/state.db" in wrong.stderr
    assert "did you mean 'counted'?" in wrong.stderr

    unknown = flowweaver_cmd("status", "--run", "feedbeef", cwd=two_runs)
    assert unknown.returncode == 2
    assert ".flowweaver/state.db has no run 'feedbeef'" in unknown.stderr
    assert "`flowweaver history` lists the runs" in unknown.stderr

    newest = RUN_ID.findall(flowweaver_cmd("history", cwd=two_runs).stdout)[0]
    other = flowweaver_cmd("status", "--run", newest[:4], "--workflow", "other", cwd=two_runs)
    assert other.returncode == 2
    assert f"has no run {newest[:4]!r} of workflow 'other'" in other.stderr

    empty = flowweaver_cmd("status", "--run", "", cwd=two_runs)
    assert empty.returncode == 2
    assert "--run needs a run id; `flowweaver history` lists them" in empty.stderr


def test_history_of_a_store_without_runs_says_how_they_are_made(tmp_path: Path) -> None:
    SQLiteStateStore(tmp_path / "old.db").save_task_state("a", TaskStatus.COMPLETED, 1, None, NOW)
    shown = flowweaver_cmd("history", "old.db", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "old.db has no run history yet; `flowweaver run` records each run.\n"
