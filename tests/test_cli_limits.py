"""``flowweaver run --limit TAG=N --rate TAG=RATE``: the executor's limits from the command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._cli_helpers import InProcess, write

LIMITED = """
    import json, os, threading, time
    from flowweaver import Workflow, task

    lock = threading.Lock()
    now = [0]
    most = [0]

    def work():
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.02)
        with lock:
            now[0] -= 1

    workflow = Workflow("limited")
    for k in range(5):
        workflow.add_task(task(name=f"db{k}", tags=["db"])(work))

    @task(tags=["api"])
    def report(**done):
        with open("most.json", "w") as f:
            json.dump(most[0], f)

    workflow.add_task(report, depends_on=[f"db{k}" for k in range(5)])
"""


@pytest.fixture
def flowweaver_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    write(tmp_path, "limited.py", LIMITED)
    monkeypatch.chdir(tmp_path)
    command = InProcess(tmp_path)
    yield command
    command.forget()


def test_limit_and_rate_reach_the_executor(flowweaver_in: InProcess, tmp_path: Path) -> None:
    result = flowweaver_in(
        "run", "limited.py", "--no-store", "--limit", "db=2", "--rate", "api=5/s"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "most.json").read_text() == "2"


def test_without_a_limit_every_worker_is_used(flowweaver_in: InProcess, tmp_path: Path) -> None:
    result = flowweaver_in("run", "limited.py", "--no-store", "--workers", "5")
    assert result.exit_code == 0, result.output
    assert int((tmp_path / "most.json").read_text()) > 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--limit", "db"], "--limit takes TAG=VALUE, as in --limit db=2; got 'db'"),
        (["--limit", "db=two"], "--limit db=two: the limit must be a whole number of tasks"),
        (["--limit", "db=0"], "limits['db'] must be at least 1, got 0"),
        (["--limit", "db=1", "--limit", "db=2"], "--limit names tag 'db' twice"),
        (["--rate", "api=fast"], "rate_limits['api'] must read like '10/s'"),
        (["--limit", "dbs=1"], "tag 'dbs', which no task has (its tasks' tags: 'api', 'db')"),
    ],
)
def test_bad_limits_are_bad_usage_naming_the_value(
    flowweaver_in: InProcess, args: list[str], says: str
) -> None:
    result = flowweaver_in("run", "limited.py", "--no-store", *args)
    assert result.exit_code == 2
    assert says in " ".join(result.output.split())
