"""DaskExecutor on a LocalCluster with two worker processes: tasks run elsewhere."""

from __future__ import annotations

import os
import time

import pytest

distributed = pytest.importorskip("distributed")

from flowweaver import DaskExecutor, Task, Workflow  # noqa: E402

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow


def test_tasks_run_in_the_worker_processes() -> None:
    def where(**upstream: int) -> int:
        time.sleep(0.3)  # long enough that the two idle workers both take tasks
        return os.getpid()

    wf = Workflow("processes")
    for i in range(6):
        wf.add_task(Task(f"pid{i}", where))
    wf.add_task(
        Task("pids", lambda **pids: sorted(set(pids.values()))),
        depends_on=[f"pid{i}" for i in range(6)],
    )
    executor = DaskExecutor(
        cluster_options={"n_workers": 2, "threads_per_worker": 1, "processes": True}
    )
    executor.execute(wf)
    pids = wf.get_task("pids").result  # type: ignore[union-attr]
    assert os.getpid() not in pids
    assert len(pids) == 2
