"""Reading tasks from another thread while a ThreadedExecutor run is in progress.

Whenever a reader sees ``COMPLETED`` the result is already the final value, and
``snapshot()`` never mixes one moment's status with another moment's result or error.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flowweaver import (
    Task,
    TaskStatus,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
)

N = 120


def _value(i: int) -> tuple[str, int]:
    return ("value", i)


def _func(i: int) -> Any:
    def body(**upstream: Any) -> tuple[str, int]:
        time.sleep(0.001 * (i % 3))
        if i % 17 == 5:
            raise ValueError(f"task {i} fails")
        return _value(i)

    return body


def _workflow() -> Workflow:
    wf = Workflow("watched")
    for i in range(N):
        # a few dependencies on earlier tasks, so statuses change in waves and skips
        deps = [f"t{j}" for j in (i - 7, i - 13) if j >= 0 and j % 17 != 5]
        wf.add_task(Task(f"t{i}", _func(i), retries=1 if i % 11 == 0 else 0), depends_on=deps)
    return wf


def test_readers_see_consistent_state_during_a_threaded_run() -> None:
    tasks: list[Task] = []
    stop = threading.Event()
    problems: list[str] = []
    observations = [0]
    seen_statuses: set[TaskStatus] = set()

    def reader() -> None:
        while not stop.is_set():
            for i, t in enumerate(tasks):
                # read the properties one by one: a COMPLETED status implies the final result
                status = t.status
                if status is TaskStatus.COMPLETED and t.result != _value(i):
                    problems.append(f"{t.name}: COMPLETED but result {t.result!r}")
                snap_status, result, error = t.snapshot()
                seen_statuses.add(snap_status)
                if snap_status is TaskStatus.COMPLETED:
                    if result != _value(i) or error is not None:
                        problems.append(f"{t.name}: snapshot {(snap_status, result, error)}")
                elif snap_status is TaskStatus.FAILED:
                    if result is not None or not isinstance(error, ValueError):
                        problems.append(f"{t.name}: snapshot {(snap_status, result, error)}")
                elif result is not None:
                    problems.append(f"{t.name}: {snap_status} with a result {result!r}")
                observations[0] += 1

    # a fresh workflow per run: a second run of the same one resets every task to PENDING,
    # so a status read before that reset and a result read after it would mix two runs
    for _ in range(2):
        wf = _workflow()
        tasks[:] = wf.tasks
        stop.clear()
        readers = [threading.Thread(target=reader) for _ in range(2)]
        for r in readers:
            r.start()
        try:
            ThreadedExecutor(max_workers=8).execute(wf)
        except WorkflowExecutionError:
            pass
        finally:
            stop.set()
            for r in readers:
                r.join(10)
    assert problems == []
    assert observations[0] > N
    # the readers really watched the run move, not just its end
    assert TaskStatus.COMPLETED in seen_statuses
    assert seen_statuses & {TaskStatus.PENDING, TaskStatus.RUNNING}
    assert wf.status is WorkflowStatus.FAILED


def test_status_of_the_workflow_is_running_while_observed_from_another_thread() -> None:
    entered = threading.Event()
    release = threading.Event()
    seen: list[Any] = []

    def hold() -> None:
        entered.set()
        release.wait(10)

    wf = Workflow("observed")
    wf.add_task(Task("hold", hold))

    def watcher() -> None:
        entered.wait(10)
        seen.append(wf.status)
        seen.append(wf.get_task("hold").status)  # type: ignore[union-attr]
        release.set()

    thread = threading.Thread(target=watcher)
    thread.start()
    ThreadedExecutor().execute(wf)
    thread.join(10)
    assert seen == [WorkflowStatus.RUNNING, TaskStatus.RUNNING]
    assert wf.status is WorkflowStatus.COMPLETED
