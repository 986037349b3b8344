"""Every file in examples/ runs with ``python FILE`` and with ``flowweaver run FILE``.

Each runs in a scratch folder, so the state store the command makes by default lands there.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._cli_helpers import command_env, flowweaver_cmd

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALL = sorted(p.name for p in EXAMPLES.glob("*.py"))
# Those whose `python FILE` needs nothing but the core library.
PLAIN = [name for name in ALL if name != "resume_after_fix.py"]


def python_file(
    name: str, cwd: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=command_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_examples_are_there() -> None:
    assert set(ALL) >= {
        "etl_pipeline.py",
        "async_fanout.py",
        "resume_after_fix.py",
        "async_service.py",
        "cleanup.py",
        "map_files.py",
        "daily_report.py",
    }


@pytest.mark.parametrize("name", PLAIN)
def test_example_runs_with_python(tmp_path: Path, name: str) -> None:
    result = python_file(name, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("name", PLAIN)
def test_example_runs_with_the_command_without_a_store(tmp_path: Path, name: str) -> None:
    result = flowweaver_cmd("run", EXAMPLES / name, "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^\w+: COMPLETED in ", result.stdout, re.M)


@pytest.mark.parametrize("name", PLAIN)
def test_example_runs_with_the_command_and_then_resumes(tmp_path: Path, name: str) -> None:
    first = flowweaver_cmd("run", EXAMPLES / name, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    again = flowweaver_cmd("run", EXAMPLES / name, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "started" not in again.stdout
    assert re.search(r"\d+ completed \((\d+) restored\)", again.stdout)


def test_async_fanout_runs_its_fetches_together_and_retries_the_flaky_one(tmp_path: Path) -> None:
    result = flowweaver_cmd(
        "run", EXAMPLES / "async_fanout.py", "--no-store", "-e", "async", "-v", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "retrying   fetch_07 (attempt 1 failed: ConnectionError" in result.stdout
    # all twenty fetches start before the first one completes
    lines = [line for line in result.stdout.splitlines() if "fetch_" in line]
    first_done = next(i for i, line in enumerate(lines) if "completed" in line)
    assert sum("started    fetch_" in line for line in lines[:first_done]) == 20


def test_async_service_answers_every_request(tmp_path: Path) -> None:
    result = python_file("async_service.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^quote for (\w+): [\d.]+$", result.stdout, re.M) == [
        "alice",
        "bob",
        "carol",
    ]


def test_etl_example_loads_the_users(tmp_path: Path) -> None:
    result = flowweaver_cmd("run", EXAMPLES / "etl_pipeline.py", "--no-store", cwd=tmp_path)
    assert "Loading 2 users to warehouse" in result.stdout


def test_resume_example_fails_until_fixed_with_the_command(tmp_path: Path) -> None:
    """Without a store: it fails (exit 1) naming the fix; fixed, it completes."""
    broken = flowweaver_cmd("run", EXAMPLES / "resume_after_fix.py", "--no-store", cwd=tmp_path)
    assert broken.returncode == 1
    assert "set RESUME_EXAMPLE_FIXED=1" in broken.stdout
    fixed = flowweaver_cmd(
        "run",
        EXAMPLES / "resume_after_fix.py",
        "--no-store",
        cwd=tmp_path,
        env={"RESUME_EXAMPLE_FIXED": "1"},
    )
    assert fixed.returncode == 0, fixed.stderr


def test_resume_example_fails_then_resumes_after_the_fix_with_the_command(tmp_path: Path) -> None:
    example = EXAMPLES / "resume_after_fix.py"
    broken = flowweaver_cmd("run", example, cwd=tmp_path)
    assert broken.returncode == 1
    assert "downloading the sales export" in broken.stdout
    fixed = flowweaver_cmd("run", example, cwd=tmp_path, env={"RESUME_EXAMPLE_FIXED": "1"})
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "restored   download" in fixed.stdout
    assert "downloading the sales export" not in fixed.stdout
    assert "sales by region: {'north': 150.5, 'south': 99.95}" in fixed.stdout


def test_resume_example_fails_then_resumes_after_the_fix_with_python(tmp_path: Path) -> None:
    broken = python_file("resume_after_fix.py", tmp_path)
    assert broken.returncode == 1, broken.stderr
    assert "downloading the sales export" in broken.stdout
    fixed = python_file("resume_after_fix.py", tmp_path, {"RESUME_EXAMPLE_FIXED": "1"})
    assert fixed.returncode == 0, fixed.stderr
    assert "restored download from the state store" in fixed.stdout
    assert "downloading the sales export" not in fixed.stdout


def test_cleanup_example_cleans_up_after_a_failed_load_and_skips_on_purpose(
    tmp_path: Path,
) -> None:
    result = python_file("cleanup.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "load failed (warehouse unreachable), publish skipped" in result.stdout
    assert "the run failed (load), and still cleaned up" in result.stdout
    assert "second run: COMPLETED; publish: SKIPPED" in result.stdout


def test_cleanup_example_restores_its_skip_and_counts_it_as_skipped(tmp_path: Path) -> None:
    example = EXAMPLES / "cleanup.py"
    first = flowweaver_cmd("run", example, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "skipped    check (no new rows since the last run)" in first.stdout
    again = flowweaver_cmd("run", example, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "restored   4 tasks (saved results): scratch, load, check, clean_up" in again.stdout
    assert "3 completed (3 restored), 0 failed, 2 skipped" in again.stdout


def processed(stdout: str) -> list[str]:
    """The files map_files.py processed in a run, in order."""
    return re.findall(r"^processing (\S+)$", stdout, re.M)


def files_folder(tmp_path: Path, n: int) -> dict[str, str]:
    files = tmp_path / "files"
    files.mkdir()
    for i in range(n):
        (files / f"f{i:02d}.txt").write_text(f"line {i}\n")
    return {"MAP_FILES_DIR": str(files), "MAP_FILES_DELAY": "0"}


def test_map_files_processes_each_file_once_and_a_second_run_restores_them(
    tmp_path: Path,
) -> None:
    env = files_folder(tmp_path, 6)
    example = EXAMPLES / "map_files.py"
    first = flowweaver_cmd("run", example, "--verbose", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(processed(first.stdout)) == [f"f{i:02d}.txt" for i in range(6)]
    assert "started    process_file[f03.txt]" in first.stdout  # items named by map_key
    assert "6 files, 6 lines, 12 words" in first.stdout
    assert "process_file: 6 of 6 items completed\n" in first.stdout
    again = flowweaver_cmd("run", example, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert processed(again.stdout) == []


def test_map_files_runs_only_a_new_or_changed_file(tmp_path: Path) -> None:
    env = files_folder(tmp_path, 6)
    example = EXAMPLES / "map_files.py"
    assert flowweaver_cmd("run", example, cwd=tmp_path, env=env).returncode == 0
    (tmp_path / "files" / "new.txt").write_text("one more file\n")
    added = flowweaver_cmd("run", example, cwd=tmp_path, env=env)
    assert added.returncode == 0, added.stdout + added.stderr
    assert processed(added.stdout) == ["new.txt"]
    assert "process_file: 7 of 7 items completed (6 restored)" in added.stdout
    # python FILE DIR: the same store, the same items; a changed file runs again
    (tmp_path / "files" / "f02.txt").write_text("changed\n")
    changed = python_file("map_files.py", tmp_path, env)
    assert changed.returncode == 0, changed.stderr
    assert processed(changed.stdout) == ["f02.txt"]
    assert "1 of 7 files processed in this run, the rest restored" in changed.stdout


def started(stdout: str) -> list[str]:
    """The tasks a run of the command started, in order."""
    return re.findall(r"^\[\s*[\d.]+s\] started    (\S+)", stdout, re.M)


def restored(stdout: str) -> list[str]:
    return re.findall(r"^\[\s*[\d.]+s\] restored   (\S+)", stdout, re.M)


def test_daily_report_reruns_only_what_reads_the_date_then_plans_an_edit(tmp_path: Path) -> None:
    """The example's walkthrough: two dates, an edited version, its plan, its run (the
    tutorial's parameters page walks through the same on a program of its own)."""
    example = tmp_path / "daily_report.py"
    example.write_text((EXAMPLES / "daily_report.py").read_text())
    first = flowweaver_cmd("run", example, "-p", "date=2026-11-30", "-v", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(started(first.stdout)) == 5
    report = (tmp_path / "reports" / "sales-2026-11-30.txt").read_text()
    assert report.startswith("Sales on 2026-11-30\n")
    assert re.search(r"^total\s+\d+\s+[\d.]+$", report, re.M)

    second = flowweaver_cmd("run", example, "-p", "date=2026-12-01", "-v", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert started(second.stdout) == ["orders_of_day", "region_totals", "write_report"]
    assert sorted(restored(second.stdout)) == ["load_orders", "load_shops"]
    assert (tmp_path / "reports" / "sales-2026-12-01.txt").exists()

    example.write_text(example.read_text().replace('@task(version="1")', '@task(version="2")'))
    plan = flowweaver_cmd("plan", example, "-p", "date=2026-12-01", cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in plan.stdout.splitlines()[4:9]}
    assert rows["load_orders"] == ["restore", "saved result stands"]
    assert rows["orders_of_day"][0] == "restore"
    assert rows["region_totals"][0] == "run"
    assert "version" in rows["region_totals"][1]
    assert rows["write_report"][0] == "run?"
    assert "2 run, 3 restore, 0 skip" in plan.stdout

    # the totals come out the same: the report is restored after all (early cut-off)
    third = flowweaver_cmd("run", example, "-p", "date=2026-12-01", "-v", cwd=tmp_path)
    assert third.returncode == 0, third.stdout + third.stderr
    assert started(third.stdout) == ["region_totals"]
    assert "write_report" in restored(third.stdout)


def test_daily_report_with_python_writes_where_it_is_told(tmp_path: Path) -> None:
    first = python_file("daily_report.py", tmp_path, args=("2026-12-24", "out"))
    assert first.returncode == 0, first.stderr
    assert "restored from the state store: nothing" in first.stdout
    assert "Sales on 2026-12-24" in first.stdout
    assert (tmp_path / "out" / "sales-2026-12-24.txt").exists()
    again = python_file("daily_report.py", tmp_path)  # the default date, 2026-11-30
    assert again.returncode == 0, again.stderr
    assert "restored from the state store: load_orders, load_shops\n" in again.stdout
    assert "Sales on 2026-11-30" in again.stdout
