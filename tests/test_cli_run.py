"""``flowweaver run``: importing the file, progress lines, the summary, exit codes, Ctrl-C.

These runs use ``--no-store``; runs with a state store are in test_cli_store.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._cli_helpers import (
    COMMAND,
    command_env,
    flowweaver_cmd,
    run_and_interrupt,
    waiting_workflow,
    write,
)

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

PIPELINE = """
    from flowweaver import Workflow, task

    @task()
    def extract():
        return [1, 2, 3]

    @task()
    def double(extract):
        return [x * 2 for x in extract]

    @task()
    def total(double):
        print("the total is", sum(double))
        return sum(double)

    workflow = Workflow("numbers")
    workflow.add_task(extract)
    workflow.add_task(double, depends_on=["extract"])
    workflow.add_task(total, depends_on=["double"])

    if __name__ == "__main__":
        raise SystemExit("the __main__ block must not run under flowweaver run")
"""

FAILING = """
    from flowweaver import Workflow, task

    def check_rows(rows):
        raise ValueError(f"bad row count {len(rows)}")

    @task()
    def extract():
        return [1, 2, 3]

    @task(retries=1)
    def validate(extract):
        check_rows(extract)

    @task()
    def load(validate):
        return "loaded"

    @task()
    def audit(extract):
        return "audited"

    workflow = Workflow("failing")
    workflow.add_task(extract)
    workflow.add_task(validate, depends_on=["extract"])
    workflow.add_task(load, depends_on=["validate"])
    workflow.add_task(audit, depends_on=["extract"])
"""


def event_lines(stdout: str) -> list[tuple[str, str]]:
    """``(verb, rest)`` of each progress line: ``[  0.01s] started    extract``."""
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(r"^\[\s*\d+\.\d\ds\] (\w+)\s+(.*)$", stdout, re.M)
    ]


def summary_rows(stdout: str) -> dict[str, list[str]]:
    """The plain summary table: task -> [status, attempts, duration] (and a mapped task's
    items, when the table has that column)."""
    lines = stdout.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.split()[:4] == ["task", "status", "attempts", "duration"]
    )
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        name, *cells = re.split(r"\s{2,}", line.strip())
        rows[name] = cells
    return rows


def test_in_a_pipe_a_clean_run_prints_its_start_its_end_and_the_tasks_own_output(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "number_flow.py", PIPELINE)
    result = flowweaver_cmd("run", path, "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = event_lines(result.stdout)
    # a start or a completion is no news in a log: only the run's own lines
    assert [verb for verb, _ in events] == ["run", "finished"]
    assert events[0][1] == "numbers: 3 tasks"
    assert events[-1][1].startswith("numbers: COMPLETED in ")
    assert "the total is 12\n" in result.stdout
    assert "\x1b[" not in result.stdout


def test_verbose_prints_one_plain_line_per_event_when_stdout_is_not_a_terminal(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "number_flow.py", PIPELINE)
    result = flowweaver_cmd("run", path, "--no-store", "--verbose", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = event_lines(result.stdout)
    assert [(verb, rest.split()[0]) for verb, rest in events] == [
        ("run", "numbers:"),
        ("started", "extract"),
        ("completed", "extract"),
        ("started", "double"),
        ("completed", "double"),
        ("started", "total"),
        ("completed", "total"),
        ("finished", "numbers:"),
    ]
    assert events[0][1] == "numbers: 3 tasks"
    completed = [rest for verb, rest in events if verb == "completed"]
    assert all(re.fullmatch(r"\w+ \([\d.]+ (ms|s)\)", c) for c in completed)
    assert events[-1][1].startswith("numbers: COMPLETED in ")
    # the task's own print is there, between its start and its completion
    assert "the total is 12\n" in result.stdout
    # no colours or cursor movement in a pipe
    assert "\x1b[" not in result.stdout


def test_run_ends_with_a_summary_table_of_status_attempts_and_duration(tmp_path: Path) -> None:
    path = write(tmp_path, "number_flow.py", PIPELINE)
    result = flowweaver_cmd("run", path, "--no-store", cwd=tmp_path)
    rows = summary_rows(result.stdout)
    assert list(rows) == ["extract", "double", "total"]
    for status, attempts, duration in rows.values():
        assert status == "COMPLETED"
        assert attempts == "1"
        assert re.fullmatch(r"[\d.]+ (ms|s)", duration)
    assert re.search(
        r"^numbers: COMPLETED in .*: 3 completed, 0 failed, 0 skipped\.$", result.stdout, re.M
    )


def test_run_does_not_run_the_files_main_block(tmp_path: Path) -> None:
    path = write(tmp_path, "number_flow.py", PIPELINE)
    result = flowweaver_cmd("run", path, "--no-store", cwd=tmp_path)
    assert result.returncode == 0
    assert "__main__ block" not in result.stderr + result.stdout


def test_a_failed_task_exits_1_shows_retries_skips_and_its_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "failing.py", FAILING)
    result = flowweaver_cmd("run", path, "--no-store", "--executor", "sequential", cwd=tmp_path)
    assert result.returncode == 1
    events = event_lines(result.stdout)
    assert ("retrying", "validate (attempt 1 failed: ValueError: bad row count 3)") in events
    assert ("FAILED", "validate after 2 attempts: ValueError: bad row count 3") in events
    assert ("skipped", "load (upstream task 'validate' failed)") in events
    assert "started" not in {verb for verb, _ in events}  # what went wrong, not every step
    assert events[-1][1].startswith("failing: FAILED in ")
    rows = summary_rows(result.stdout)
    assert rows["validate"][:2] == ["FAILED", "2"]
    assert rows["load"] == ["SKIPPED", "0", "-"]
    # an independent branch still ran
    assert rows["audit"][0] == "COMPLETED"
    assert "1 failed, 1 skipped (failed: validate)" in result.stdout
    # the traceback starts in the user's code, not in the engine
    assert "task 'validate' failed after 2 attempts:" in result.stderr
    trace = result.stderr.split("failed after 2 attempts:", 1)[1]
    assert f'File "{path}", line' in trace
    assert "in check_rows" in trace
    assert "flowweaver/_async" not in trace
    assert trace.rstrip().endswith("ValueError: bad row count 3")


HOSTILE = """
    from flowweaver import Workflow, task

    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no str")

    @task()
    def shout():
        raise Unprintable()

    @task()
    def huge():
        return 10 ** 5000

    @task()
    def calm():
        return 1

    workflow = Workflow("hostile")
    workflow.add_task(shout)
    workflow.add_task(huge)
    workflow.add_task(calm)
"""


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
@pytest.mark.parametrize("store", [True, False], ids=["store", "no_store"])
def test_a_task_that_raises_or_returns_something_hostile_fails_alone(
    tmp_path: Path, executor: str, store: bool
) -> None:
    path = write(tmp_path, "hostile.py", HOSTILE)
    args = ["run", path, "--executor", executor, *([] if store else ["--no-store"])]
    result = flowweaver_cmd(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = summary_rows(result.stdout)
    assert rows["shout"][0] == "FAILED"
    assert rows["calm"][0] == "COMPLETED"
    # the int cannot be saved in a JSON store: a failure with a store, fine without one
    assert rows["huge"][0] == ("FAILED" if store else "COMPLETED")
    events = event_lines(result.stdout)
    note = "Unprintable (its message could not be read: RuntimeError)"
    assert ("FAILED", f"shout after 1 attempt: {note}") in events
    assert "Traceback" not in result.stdout
    assert "task 'shout' failed after 1 attempt:" in result.stderr


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
def test_each_executor_runs_sync_and_async_tasks(tmp_path: Path, executor: str) -> None:
    path = write(
        tmp_path,
        "mixed.py",
        """
        import anyio
        from flowweaver import Workflow, task

        @task()
        async def fetch():
            await anyio.sleep(0.01)
            return 20

        @task()
        def add(fetch):
            return fetch + 1

        wf = Workflow("mixed")
        wf.add_task(fetch)
        wf.add_task(add, depends_on=["fetch"])
        """,
    )
    result = flowweaver_cmd("run", path, "--no-store", "--executor", executor, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_rows(result.stdout)["add"][0] == "COMPLETED"


def test_workers_bounds_how_many_tasks_run_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "wide.py",
        """
        import threading, time
        from flowweaver import Task, Workflow

        lock = threading.Lock()
        now = peak = 0

        def work():
            global now, peak
            with lock:
                now += 1
                peak = max(peak, now)
            time.sleep(0.05)
            with lock:
                now -= 1

        def report(**_):
            print("peak", peak)

        wf = Workflow("wide")
        for i in range(6):
            wf.add_task(Task(f"w{i}", work))
        wf.add_task(Task("report", report), depends_on=[f"w{i}" for i in range(6)])
        """,
    )
    result = flowweaver_cmd("run", path, "--no-store", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    peak = int(re.search(r"^peak (\d+)$", result.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert 1 <= peak <= 2


def test_run_on_trio(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "on_trio.py",
        """
        import trio
        from flowweaver import Workflow, task

        @task()
        async def which():
            trio.lowlevel.current_task()  # raises outside trio
            print("backend: trio")

        wf = Workflow("on_trio")
        wf.add_task(which)
        """,
    )
    result = flowweaver_cmd(
        "run", path, "--no-store", "--backend", "trio", "--executor", "async", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "backend: trio" in result.stdout


def test_fail_fast_skips_what_had_not_started(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fast.py",
        """
        from flowweaver import Task, Workflow

        def boom():
            raise RuntimeError("boom")

        wf = Workflow("fast")
        wf.add_task(Task("bad", boom))
        wf.add_task(Task("later", lambda: None), depends_on=["bad"])
        wf.add_task(Task("independent", lambda: None))
        """,
    )
    result = flowweaver_cmd(
        "run", path, "--no-store", "--executor", "sequential", "--fail-fast", cwd=tmp_path
    )
    assert result.returncode == 1
    assert summary_rows(result.stdout)["independent"][0] == "SKIPPED"


def test_name_picks_a_workflow_by_variable_or_by_its_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "two.py",
        """
        from flowweaver import Task, Workflow

        daily = Workflow("daily_report")
        daily.add_task(Task("d", lambda: print("ran daily")))
        hourly = Workflow("hourly_sync")
        hourly.add_task(Task("h", lambda: print("ran hourly")))
        """,
    )
    by_variable = flowweaver_cmd("run", f"{path}:hourly", "--no-store", cwd=tmp_path)
    assert by_variable.returncode == 0, by_variable.stderr
    assert "ran hourly" in by_variable.stdout
    assert "ran daily" not in by_variable.stdout
    by_name = flowweaver_cmd("run", f"{path}:daily_report", "--no-store", cwd=tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    assert "ran daily" in by_name.stdout


def test_the_file_can_import_modules_beside_it(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    write(tmp_path / "pipelines", "helpers.py", "def value():\n    return 41\n")
    path = write(
        tmp_path / "pipelines",
        "main_flow.py",
        """
        from dataclasses import dataclass
        from helpers import value
        from flowweaver import Task, Workflow

        @dataclass
        class Box:  # needs its module in sys.modules
            n: int

        wf = Workflow("neighbours")
        wf.add_task(Task("answer", lambda: print("answer", Box(value() + 1).n)))
        """,
    )
    # run from another folder: the file's own folder is what goes on sys.path
    result = flowweaver_cmd("run", path, "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "answer 42" in result.stdout


def test_the_installed_flowweaver_script_runs_the_command(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / ("flowweaver.exe" if os.name == "nt" else "flowweaver")
    assert script.exists(), "reinstall the package (pip install -e .) to get the script"
    path = write(tmp_path, "number_flow.py", PIPELINE)
    result = subprocess.run(
        [str(script), "run", str(path), "--no-store"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "numbers: COMPLETED" in result.stdout


def test_version_and_help(tmp_path: Path) -> None:
    version = flowweaver_cmd("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert "0.3.2" in version.stdout
    helptext = flowweaver_cmd("run", "--help", cwd=tmp_path)
    assert helptext.returncode == 0
    for option in (
        "--executor",
        "--workers",
        "--limit",
        "--rate",
        "--store",
        "--no-store",
        "--fresh",
    ):
        assert option in helptext.stdout


SLOW = waiting_workflow("slow")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
def test_ctrl_c_exits_130_and_reports_the_interrupted_task(tmp_path: Path, executor: str) -> None:
    path = write(tmp_path, "slow.py", SLOW)
    # "second is running" is printed by the task itself: the run is inside it
    code, out = run_and_interrupt(
        ["run", str(path), "--no-store", "--executor", executor], tmp_path, "second is running"
    )
    assert code == 130, out
    assert "cancelled  second (interrupted; it runs again next time)" in out
    assert summary_rows(out)["second"][0] == "PENDING"
    assert summary_rows(out)["first"][0] == "COMPLETED"
    assert re.search(r"^slow: CANCELLED \(interrupted\) after .*1 not finished\.$", out, re.M)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_on_a_terminal_run_shows_a_live_display_then_the_summary(tmp_path: Path) -> None:
    import pty

    path = write(
        tmp_path,
        "live.py",
        """
        import time
        from flowweaver import Task, Workflow

        wf = Workflow("live_demo")
        wf.add_task(Task("slow_step", lambda: time.sleep(0.8)))  # several redraws
        wf.add_task(Task("after", lambda: None), depends_on=["slow_step"])
        """,
    )
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*COMMAND, "run", str(path), "--no-store"],
        cwd=tmp_path,
        env=command_env({"TERM": "xterm-256color"}),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # the child closed the terminal (EIO on Linux)
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=30)
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
    screen = b"".join(chunks).decode("utf-8", "replace")
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert code == 0, plain
    assert "\x1b[?25l" in screen  # the live display hid the cursor while it drew
    assert "▶ slow_step" in plain  # the running task, listed while it ran
    assert re.search(r"0 done · 1 running · 0 failed · 0 skipped", plain)
    assert re.search(r"slow_step\s+COMPLETED\s+1\s+\d+ ms", plain)  # the summary table
    assert "live_demo: COMPLETED" in plain
    assert "started    slow_step" not in plain  # no plain event lines on a terminal


def test_no_store_saves_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "number_flow.py", PIPELINE)
    for _ in range(2):
        result = flowweaver_cmd("run", path, "--no-store", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "restored" not in result.stdout
    assert not (tmp_path / ".flowweaver").exists()
    assert list(tmp_path.iterdir()) == [path]


WIDE_FAILURE = """
    from flowweaver import Task, Workflow

    def extract():
        raise ConnectionError("database unreachable")

    def noop(**kw):
        return None

    workflow = Workflow("wide_failure")
    workflow.add_task(Task("extract", extract))
    workflow.add_task(Task("other", noop))
    for i in range(200):
        workflow.add_task(Task(f"t{i}", noop), depends_on=["extract" if i < 150 else "other"])
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor", ["sequential", "threaded", "async", "process"])
def test_in_a_pipe_a_failure_and_its_150_skips_take_two_lines_under_every_executor(
    tmp_path: Path, executor: str, backend: str
) -> None:
    path = write(tmp_path, "wide_failure.py", WIDE_FAILURE)
    result = flowweaver_cmd(
        "run", path, "--no-store", "--executor", executor, "--backend", backend, cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    events = event_lines(result.stdout)
    assert [verb for verb, _ in events] == ["run", "FAILED", "skipped", "finished"]
    assert events[2][1] == "150 tasks below 'extract' (it failed): t0, t1, t2 and 147 more"
    assert "202 tasks; shown: 1 failed, the 5 slowest" in result.stdout
    assert "and 196 more: 46 completed, 150 skipped (--all shows every task)" in result.stdout
    assert len(result.stdout.splitlines()) < 30
