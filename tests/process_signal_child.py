"""A child process for the worker-process signal tests: a blocking run with tasks in
worker processes, busy for an hour, that the test interrupts.

    python tests/process_signal_child.py EXECUTOR BACKEND FOLDER

EXECUTOR is ``process`` (``ProcessExecutor(2)``) or ``sequential`` (``SequentialExecutor``
with ``isolation="process"`` tasks). The run's JSON store is ``FOLDER/state.json``; each
sleeping task writes its worker's pid to ``FOLDER/<task>.pid`` once it runs. The child
prints ``RAISED <exception> <workflow status>`` when ``execute`` raised.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` imports in workers

import flowweaver
from flowweaver import JSONStateStore, Task, Workflow
from tests import process_tasks


def main(kind: str, backend: str, folder: str) -> None:
    wf = Workflow("interrupted")
    wf.add_task(Task("first", process_tasks.pid, isolation="process"))
    for name in ("sleep_a", "sleep_b"):
        func = partial(process_tasks.record_pid, folder, name, 3600)
        wf.add_task(Task(name, func, isolation="process"), depends_on=["first"])
    store = JSONStateStore(os.path.join(folder, "state.json"))
    executor = (
        flowweaver.ProcessExecutor(2, state_store=store, backend=backend, kill_grace=2)
        if kind == "process"
        else flowweaver.SequentialExecutor(state_store=store, backend=backend, kill_grace=2)
    )
    try:
        executor.execute(wf)
    except BaseException as exc:
        os.write(1, f"RAISED {type(exc).__name__} {wf.status.value}\n".encode())
        raise


if __name__ == "__main__":
    main(*sys.argv[1:4])
