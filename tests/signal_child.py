"""A child process for the signal tests: a run busy in every way a run can be.

    python tests/signal_child.py FORM EXECUTOR BACKEND STORE

FORM is ``blocking`` (``executor.execute(wf)`` from plain code) or ``awaited`` (``await``
an awaitable executor inside ``anyio.run``); EXECUTOR is ``sequential``, ``threaded`` or
``concurrent``; STORE is a JSON store's path, or ``-`` for none. Workflow tasks sleep in
threads and on the loop, retry after a delay, fire async callbacks and feed an async
observer, so that a signal lands in any of the run's tasks. The child prints ``READY``
once the first task started, and ``RAISED <exception> <workflow status>`` when
``execute`` raised. Each finished task name is printed as ``DONE <name>`` by a callback.
With a store, the last task waits until the store's path with ``.go`` added exists.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import anyio

import flowweaver
import flowweaver.aio
from flowweaver import RunEvent, Task, TaskStarted, Workflow

LAYERS = 4
WIDTH = 6


def say(text: str) -> None:
    os.write(1, (text + "\n").encode())  # one write per line: threads print too


def sync_step(**upstream: Any) -> int:
    time.sleep(0.02)
    return len(upstream)


async def async_step(**upstream: Any) -> int:
    await anyio.sleep(0.02)
    return len(upstream)


class FailsOnce:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, **upstream: Any) -> int:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("retry me")
        return 0


async def done(task: Task) -> None:
    await anyio.lowlevel.checkpoint()
    say(f"DONE {task.name}")


async def observer(event: RunEvent) -> None:
    await anyio.lowlevel.checkpoint()
    if isinstance(event, TaskStarted) and event.task == "t0_0":
        say("READY")


GO = ""  # a file whose existence lets the last task finish


def forever(**upstream: Any) -> None:
    while not (GO and os.path.exists(GO)):
        time.sleep(0.05)


def workflow() -> Workflow:
    wf = Workflow("signals")
    for layer in range(LAYERS):
        for j in range(WIDTH):
            name = f"t{layer}_{j}"
            func: Any = sync_step if j % 2 else async_step
            if j == 0 and layer == 1:
                func = FailsOnce()
            t = Task(name, func, callbacks=[done], retries=1, retry_delay=0.05)
            deps = [f"t{layer - 1}_{k}" for k in range(WIDTH)] if layer else []
            wf.add_task(t, depends_on=deps)
    wf.add_task(Task("last", forever), depends_on=[f"t{LAYERS - 1}_{k}" for k in range(WIDTH)])
    return wf


def main(form: str, kind: str, backend: str, store_path: str) -> None:
    wf = workflow()
    module: Any = flowweaver.aio if form == "awaited" else flowweaver
    cls = {
        "sequential": module.SequentialExecutor,
        "threaded": module.ThreadedExecutor,
        "concurrent": flowweaver.aio.AsyncExecutor
        if form == "awaited"
        else module.ConcurrentExecutor,
    }[kind]
    kwargs: dict[str, Any] = {"observer": observer}
    if store_path != "-":
        kwargs["state_store"] = module.JSONStateStore(store_path)
        global GO
        GO = store_path + ".go"
    try:
        if form == "awaited":

            async def run() -> None:
                await cls(**kwargs).execute(wf)

            anyio.run(run, backend=backend)
        else:
            cls(backend=backend, **kwargs).execute(wf)
    except BaseException as exc:
        say(f"RAISED {type(exc).__name__} {wf.status.value}")
        raise
    say(f"RETURNED {wf.status.value}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
