"""A run that fails, is fixed, and resumes without doing the finished work again.

`download` is slow and succeeds; `parse` has a bug until the environment variable
RESUME_EXAMPLE_FIXED is set to 1 (standing in for the fix you would make to the code);
`report` needs `parse`. Each completed task is saved in the state store, so the second
run restores `download` instead of running it again:

    flowweaver run examples/resume_after_fix.py        # parse fails: exit code 1
    flowweaver status                                  # download COMPLETED, parse FAILED
    RESUME_EXAMPLE_FIXED=1 flowweaver run examples/resume_after_fix.py
                                                       # download restored; parse, report run
    flowweaver reset --yes                             # forget it all, to start over

`python examples/resume_after_fix.py` does the same with the store in
.flowweaver/state.db too (the command's default), printing what it restores.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from flowweaver import (
    RunEvent,
    SequentialExecutor,
    TaskRestored,
    Workflow,
    WorkflowExecutionError,
    task,
)


def fixed() -> bool:
    return os.environ.get("RESUME_EXAMPLE_FIXED") == "1"


@task(retries=1)
def download() -> list[dict[str, Any]]:
    """The slow part: worth not doing twice."""
    print("downloading the sales export (slow)...")
    time.sleep(0.3)
    return [
        {"region": "north", "amount ": "120.50"},
        {"region": "south", "amount ": "99.95"},
        {"region": "north", "amount ": "30.00"},
    ]


@task()
def parse(download: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bug: the export's column is "amount " (with a space), not "amount"."""
    column = "amount " if fixed() else "amount"
    if column not in download[0]:
        raise ValueError(
            f"no column {column!r} in the export (it has {sorted(download[0])}); "
            "set RESUME_EXAMPLE_FIXED=1 to fix the parser"
        )
    return [{"region": row["region"], "amount": float(row[column])} for row in download]


@task()
def report(parse: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in parse:
        totals[row["region"]] = round(totals.get(row["region"], 0.0) + row["amount"], 2)
    print(f"sales by region: {totals}")
    return totals


workflow = Workflow("resume_after_fix", description="Fail, fix, resume")
workflow.add_task(download)
workflow.add_task(parse, depends_on=["download"])
workflow.add_task(report, depends_on=["parse"])


def show_restored(event: RunEvent) -> None:
    if isinstance(event, TaskRestored):
        print(f"restored {event.task} from the state store (not run again)")


def main() -> int:
    from flowweaver import SQLiteStateStore

    Path(".flowweaver").mkdir(exist_ok=True)
    store = SQLiteStateStore(".flowweaver/state.db")
    try:
        SequentialExecutor(state_store=store, observer=show_restored).execute(workflow)
    except WorkflowExecutionError as exc:
        print(f"the run failed: {exc}")
        print("download is saved; set RESUME_EXAMPLE_FIXED=1 and run again to resume.")
        return 1
    print("done:", {t.name: t.status.value for t in workflow.tasks})
    return 0


if __name__ == "__main__":
    sys.exit(main())
