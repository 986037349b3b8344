"""``flowweaver run -p/--target/--from`` and ``flowweaver plan``: decoding ``-p``, usage
errors, partial runs counted as such, and the plan's table.

Most cases call the command in this process (``InProcess``); the one that checks what a
pipe gets runs it as a subprocess, under the slow marker.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import flowweaver
from flowweaver import Plan, PlannedTask
from flowweaver._cli._output import Output
from flowweaver._cli._params import decode_value
from flowweaver._cli._plan import render_plan
from tests._cli_helpers import InProcess, flowweaver_cmd, write

# Each task writes what it received to runs.log when it really runs (not when restored).
DAILY = """
    import pathlib
    from flowweaver import Workflow, task

    HERE = pathlib.Path(__file__).parent

    def ran(name, **got):
        with open(HERE / "runs.log", "a") as log:
            log.write(f"{name} {got!r}\\n")

    @task()
    def extract(date, limit=3):
        ran("extract", date=date, limit=limit)
        return [f"{date}#{i}" for i in range(limit)]

    @task()
    def count(extract):
        ran("count")
        return len(extract)

    @task()
    def report(count, title="rows"):
        ran("report", title=title)
        return f"{title}: {count}"

    @task()
    def audit():
        ran("audit")
        return "ok"

    workflow = Workflow("daily")
    workflow.add_task(extract)
    workflow.add_task(count, depends_on=["extract"])
    workflow.add_task(report, depends_on=["count"])
    workflow.add_task(audit)
"""


@pytest.fixture
def flowweaver_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    write(tmp_path, "daily_flow.py", DAILY)
    monkeypatch.chdir(tmp_path)
    command = InProcess(tmp_path)
    yield command
    command.forget()


def runs(folder: Path) -> list[str]:
    log = folder / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def ran(folder: Path) -> list[str]:
    """The names of the tasks that really ran, in order."""
    return [line.split()[0] for line in runs(folder)]


def summary_tasks(stdout: str) -> list[str]:
    """The task names of the plain summary table at the end of a run."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["task", "status"])
    names = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        names.append(line.split()[0])
    return names


# -- -p: decoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("-2.5", -2.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ('"10"', "10"),  # a quoted JSON string: the way to pass text that would parse
        ("2026-11-30", "2026-11-30"),
        ("alice", "alice"),
        ("", ""),
        ("a=b", "a=b"),
        # Python's json reads these, JSON does not: they stay words
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
    ],
)
def test_a_param_value_is_json_when_it_parses_else_the_text(text: str, value: Any) -> None:
    decoded = decode_value(text)
    assert decoded == value
    assert type(decoded) is type(value)


def test_run_gives_each_task_the_decoded_params_it_takes(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    result = flowweaver_in(
        "run",
        "daily_flow.py",
        "--no-store",
        "-p",
        "date=2026-11-30",
        "-p",
        "limit=2",
        "--param",
        'title="10"',
    )
    assert result.exit_code == 0, result.output
    assert sorted(runs(tmp_path)) == [
        "audit {}",
        "count {}",
        "extract {'date': '2026-11-30', 'limit': 2}",
        "report {'title': '10'}",
    ]


def test_a_value_with_an_equals_sign_keeps_everything_after_the_first(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    result = flowweaver_in("run", "daily_flow.py", "--no-store", "-p", "date=a=b")
    assert result.exit_code == 0, result.output
    assert "extract {'date': 'a=b', 'limit': 3}" in runs(tmp_path)


# -- -p: usage errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("date", "'date' has no '='"),
        ("=2026-11-30", "'=2026-11-30' has no name before '='"),
        (" =1", "' =1' has no name before '='"),
    ],
)
def test_a_param_without_a_name_and_value_is_a_usage_error_naming_it(
    flowweaver_in: InProcess, tmp_path: Path, given: str, says: str
) -> None:
    for command in ("run", "plan"):
        result = flowweaver_in(command, "daily_flow.py", "--no-store", "-p", given)
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--param' / '-p'" in result.output
        assert says in result.output
    assert runs(tmp_path) == []


def test_a_param_given_twice_is_a_usage_error(flowweaver_in: InProcess, tmp_path: Path) -> None:
    result = flowweaver_in(
        "run", "daily_flow.py", "--no-store", "-p", "date=a", "-p", "limit=1", "-p", "date=b"
    )
    assert result.exit_code == 2, result.output
    assert "parameter 'date' is given twice (date=\"a\" and date=b)" in result.output
    assert runs(tmp_path) == []


def test_a_param_no_task_takes_is_a_usage_error_naming_it(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    result = flowweaver_in("run", "daily_flow.py", "--no-store", "-p", "date=x", "-p", "dte=y")
    assert result.exit_code == 2, result.output
    assert "Error: cannot run workflow 'daily' in daily_flow.py:" in result.output
    assert "dte" in result.output
    assert runs(tmp_path) == []


def test_a_param_named_like_a_task_is_a_usage_error(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    result = flowweaver_in("run", "daily_flow.py", "--no-store", "-p", "date=x", "-p", "count=3")
    assert result.exit_code == 2, result.output
    assert "count" in result.output
    assert runs(tmp_path) == []


# -- --target / --from -------------------------------------------------------------------


def test_target_runs_it_and_its_upstream_and_counts_only_those(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    result = flowweaver_in(
        "run", "daily_flow.py", "--no-store", "-p", "date=d", "--target", "count"
    )
    assert result.exit_code == 0, result.output
    assert ran(tmp_path) == ["extract", "count"]
    assert "run        daily: 2 tasks" in result.output
    assert summary_tasks(result.output) == ["extract", "count"]
    assert re.search(
        r"^daily: COMPLETED in .*: 2 completed, 0 failed, 0 skipped\.$", result.output, re.M
    )


def test_targets_repeat(flowweaver_in: InProcess, tmp_path: Path) -> None:
    result = flowweaver_in(
        "run",
        "daily_flow.py",
        "--no-store",
        "--target",
        "audit",
        "--target",
        "extract",
        "-p",
        "date=d",
    )
    assert result.exit_code == 0, result.output
    assert sorted(ran(tmp_path)) == ["audit", "extract"]
    assert summary_tasks(result.output) == ["extract", "audit"]


def test_from_runs_it_and_its_downstream_taking_upstream_results_from_the_store(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    first = flowweaver_in("run", "daily_flow.py", "--store", "s.db", "-p", "date=d")
    assert first.exit_code == 0, first.output
    (tmp_path / "runs.log").unlink()
    again = flowweaver_in(
        "run", "daily_flow.py", "--store", "s.db", "-p", "date=d", "--from", "count"
    )
    assert again.exit_code == 0, again.output
    # count runs although its result stands (--from runs it), with extract's saved result;
    # it returns what it did, so report is restored (early cut-off)
    assert ran(tmp_path) == ["count"]
    assert "restored   report" in again.output
    assert "run        daily: 2 tasks" in again.output
    assert summary_tasks(again.output) == ["count", "report"]
    assert "2 completed (1 restored), 0 failed, 0 skipped." in again.output
    assert "extract" not in again.output
    assert "audit" not in again.output


def test_from_without_the_upstream_result_saved_is_a_usage_error_naming_it(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    result = flowweaver_in(
        "run", "daily_flow.py", "--store", "s.db", "-p", "date=d", "--from", "count"
    )
    assert result.exit_code == 2, result.output
    assert "extract" in result.output
    assert runs(tmp_path) == []


@pytest.mark.parametrize("option", ["--target", "--from"])
def test_an_unknown_task_name_is_a_usage_error(
    flowweaver_in: InProcess, tmp_path: Path, option: str
) -> None:
    for command in ("run", "plan"):
        result = flowweaver_in(
            command, "daily_flow.py", "--no-store", "-p", "date=d", option, "cuont"
        )
        assert result.exit_code == 2, result.output
        assert "cuont" in result.output
    assert runs(tmp_path) == []


# -- plan: the table ---------------------------------------------------------------------


def sample_plan() -> Plan:
    tasks = [
        PlannedTask("extract", "run", "parameter `date` changed"),
        PlannedTask("count", "run", "upstream `extract` will run", unless_unchanged=True),
        PlannedTask("audit", "restore", "saved result stands"),
        PlannedTask("report", "skip", "not selected"),
    ]
    return Plan(
        workflow="daily",
        params={"date": "2026-12-01", "limit": 2},
        _tasks={t.name: t for t in tasks},
    )


def test_the_plan_is_a_plain_table_with_a_count_line_in_a_pipe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render_plan(Output(terminal=False), sample_plan(), "state store s.db")
    out = capsys.readouterr().out
    assert out.splitlines() == [
        'Plan for daily with date="2026-12-01", limit=2, state store s.db:',
        "",
        "task     action   reason",
        "-------  -------  ---------------------------",
        "extract  run      parameter `date` changed",
        "count    run?     upstream `extract` will run",
        "audit    restore  saved result stands",
        "report   skip     not selected",
        "",
        "2 run, 1 restore, 1 skip",
        "run?: decided during the run: restored after all when the upstream tasks that run "
        "return what they returned before (or its cache_key is unchanged).",
    ]
    assert "\x1b[" not in out


def test_the_plan_says_nothing_of_run_question_marks_when_there_are_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    only = PlannedTask("extract", "run", "no saved result")
    plan = Plan(workflow="daily", params={}, _tasks={"extract": only})
    render_plan(Output(terminal=False), plan, "no state store (--no-store)")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Plan for daily, no state store (--no-store):"
    assert lines[-1] == "1 run, 0 restore, 0 skip"


def test_the_plan_colours_each_action_on_a_terminal() -> None:
    out = Output(terminal=True)
    buffer = io.StringIO()
    out.console = Console(file=buffer, force_terminal=True, color_system="standard", width=120)
    render_plan(out, sample_plan(), "state store s.db")
    text = buffer.getvalue()
    # yellow run, cyan run?, green restore, dim skip
    assert "\x1b[33mrun\x1b[0m" in text
    assert "\x1b[36mrun?\x1b[0m" in text
    assert "\x1b[32mrestore\x1b[0m" in text
    assert "\x1b[2mskip\x1b[0m" in text
    assert "2 run, 1 restore, 1 skip" in text


# -- plan: the command ---------------------------------------------------------------------


class FakePlanner:
    """Stands in for ``executor.plan``: records what it was given, returns a plan."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def plan(executor: Any, workflow: Any, **options: Any) -> Plan:
            self.calls.append({"store": executor.state_store, "fresh": executor.fresh, **options})
            return sample_plan()

        monkeypatch.setattr(flowweaver.SequentialExecutor, "plan", plan)


def test_plan_passes_the_run_options_and_makes_no_store(
    flowweaver_in: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planner = FakePlanner()
    planner.install(monkeypatch)
    result = flowweaver_in(
        "plan",
        "daily_flow.py",
        "-p",
        "date=2026-12-01",
        "-p",
        "limit=2",
        "--target",
        "count",
        "--from",
        "extract",
        "--fresh",
    )
    assert result.exit_code == 0, result.output
    assert planner.calls == [
        {
            "store": None,
            "fresh": True,
            "params": {"date": "2026-12-01", "limit": 2},
            "targets": ["count"],
            "from_tasks": ["extract"],
        }
    ]
    assert "no state store at .flowweaver/state.db yet:" in result.output
    assert "2 run, 1 restore, 1 skip" in result.output
    assert not (tmp_path / ".flowweaver").exists()
    assert runs(tmp_path) == []


def test_plan_reads_the_store_run_wrote(
    flowweaver_in: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert flowweaver_in("run", "daily_flow.py", "--store", "s.db", "-p", "date=d").exit_code == 0
    planner = FakePlanner()
    planner.install(monkeypatch)
    result = flowweaver_in("plan", "daily_flow.py", "--store", "s.db")
    assert result.exit_code == 0, result.output
    (call,) = planner.calls
    assert {r.task_name for r in call["store"].list_records("daily")} == {
        "extract",
        "count",
        "report",
        "audit",
    }
    assert call["params"] is None
    assert call["targets"] is None
    assert call["fresh"] is False
    assert "state store s.db:" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--store", "nowhere/s.db"], "the folder nowhere does not exist"),
        (["--store", "s.txt"], "cannot tell what kind of state store s.txt is"),
        (["--store", "s.db", "--no-store"], "--store and --no-store cannot be used together"),
    ],
)
def test_plan_refuses_a_store_run_would_refuse(
    flowweaver_in: InProcess, args: list[str], says: str
) -> None:
    result = flowweaver_in("plan", "daily_flow.py", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_plan_after_a_run_shows_what_a_new_date_reruns(
    flowweaver_in: InProcess, tmp_path: Path
) -> None:
    assert flowweaver_in("run", "daily_flow.py", "-p", "date=2026-11-30").exit_code == 0
    result = flowweaver_in("plan", "daily_flow.py", "-p", "date=2026-12-01")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in result.output.splitlines()[4:8]}
    assert rows["extract"] == ["run", "parameter `date` changed"]
    assert rows["count"][0] == "run?"
    assert rows["report"][0] == "run?"
    assert rows["audit"] == ["restore", "saved result stands"]
    assert "3 run, 1 restore, 0 skip" in result.output
    assert sorted(ran(tmp_path)) == ["audit", "count", "extract", "report"]  # the first run


def test_plan_with_a_bad_param_exits_as_run_does(flowweaver_in: InProcess) -> None:
    result = flowweaver_in("plan", "daily_flow.py", "--no-store", "-p", "dte=x")
    assert result.exit_code == 2, result.output
    assert "Error: cannot plan workflow 'daily' in daily_flow.py:" in result.output
    assert "dte" in result.output


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_plan_in_a_pipe_is_plain_text(tmp_path: Path) -> None:
    write(tmp_path, "daily_flow.py", DAILY)
    first = flowweaver_cmd("run", "daily_flow.py", "-p", "date=2026-11-30", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    result = flowweaver_cmd("plan", "daily_flow.py", "-p", "date=2026-11-30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert result.stdout.splitlines()[2].split() == ["task", "action", "reason"]
    assert "0 run, 4 restore, 0 skip" in result.stdout
