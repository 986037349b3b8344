"""A clean-up task that runs however the load ended (``trigger="all_done"``), and a
branch that ends early on purpose (``raise Skip``).

``python examples/cleanup.py`` runs it twice: once with a load that fails, once with one
that works. Either way the scratch folder is removed; the failed run still raises.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from flowweaver import (
    SKIPPED,
    Failed,
    SequentialExecutor,
    Skip,
    Workflow,
    WorkflowExecutionError,
    task,
)


@task
def scratch() -> str:
    """A folder the run works in."""
    return tempfile.mkdtemp(prefix="flowweaver-cleanup-")


@task
def check(scratch: str) -> int:
    """Nothing new to publish: the publish branch ends here, on purpose."""
    raise Skip("no new rows since the last run")


@task
def publish(check: int) -> str:
    return f"published {check} rows"


def make_load(fail: bool) -> Any:
    @task(name="load")
    def load(scratch: str) -> str:
        (Path(scratch) / "rows.csv").write_text("id,amount\n1,100\n")
        if fail:
            raise OSError("warehouse unreachable")
        return "2 rows loaded"

    return load


@task(trigger="all_done")
def clean_up(scratch: str, load: Any, publish: Any) -> str:
    """Runs whether load completed or failed, and whether publish ran or was skipped."""
    shutil.rmtree(scratch)
    how = f"failed ({load.error})" if isinstance(load, Failed) else "completed"
    branch = "skipped" if publish is SKIPPED else "ran"
    print(f"cleaned up {Path(scratch).name}: load {how}, publish {branch}")
    return "clean"


def build(fail: bool = False) -> Workflow:
    wf = Workflow("cleanup")
    wf.add_task(scratch)
    wf.add_task(make_load(fail), depends_on=["scratch"])
    wf.add_task(check, depends_on=["scratch"])
    wf.add_task(publish, depends_on=["check"])
    wf.add_task(clean_up, depends_on=["scratch", "load", "publish"])
    return wf


workflow = build()

if __name__ == "__main__":
    try:
        SequentialExecutor().execute(build(fail=True))
    except WorkflowExecutionError as exc:
        print(f"the run failed ({exc.failed_task}), and still cleaned up")
    wf = build()
    SequentialExecutor().execute(wf)
    print(f"second run: {wf.status.value}; publish: {wf.get_task('publish').status.value}")
