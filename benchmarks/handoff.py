"""The thread hand-off: the handoff section of the suite (issue 15).

On a chain of sync no-op tasks every step is a round trip: a worker thread hands the
outcome back, the loop settles it and queues the next job, a worker picks it up. That
round trip is what this section prices, against the floor that makes the same trips with
no loop at all: graphlib + ``ThreadPoolExecutor(4)`` (:func:`floors.threaded`). Two
shapes: the 2,000-task chain (nothing but round trips) and the 10,000-task layered DAG
(the hand-off with a hundred tasks ready at once).

Forms take turns in one process: the floor, the blocking ``ThreadedExecutor(4)``, and
``flowweaver.aio.ThreadedExecutor(4)`` awaited under asyncio and under trio. Building the
workflow is not timed; ``execute`` is (inside the running loop, for the awaited forms).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from . import floors, workloads
from .measure import FormTimes, Progress, _quiet, rotated
from .systems import build_workflow

FLOOR = "graphlib + ThreadPoolExecutor(4)"
FORMS = (FLOOR, "ThreadedExecutor(4)", "aio, asyncio", "aio, trio")
SHAPES = ("chain", "layered")


class HandoffResult(FormTimes):
    """One shape's times (``executor`` names the shape): form -> seconds per repetition."""

    def ratio(self, form: str) -> float | None:
        """The form's time over the floor's."""
        a, b = self.us_per_task(form), self.us_per_task(FLOOR)
        return None if a is None or b is None else a / b


def _blocking(wf: Any) -> float:
    import flowweaver

    executor = flowweaver.ThreadedExecutor(4)
    start = time.perf_counter()
    executor.execute(wf)
    return time.perf_counter() - start


def _awaited(backend: str) -> Callable[[Any], float]:
    def timed(wf: Any) -> float:
        import anyio

        import flowweaver.aio

        async def main() -> float:
            executor = flowweaver.aio.ThreadedExecutor(4)
            start = time.perf_counter()
            await executor.execute(wf)
            return time.perf_counter() - start

        return anyio.run(main, backend=backend)

    return timed


_RUNS: dict[str, Callable[[Any], float]] = {
    "ThreadedExecutor(4)": _blocking,
    "aio, asyncio": _awaited("asyncio"),
    "aio, trio": _awaited("trio"),
}


def handoff_costs(
    chain_n: int, layered_n: int, rounds: int, progress: Progress = _quiet
) -> list[HandoffResult]:
    """Each form of :data:`FORMS` on a chain of ``chain_n`` tasks and a layered DAG of
    ``layered_n``, taking turns, ``rounds`` repetitions each."""
    results = [
        HandoffResult(n, shape) for shape, n in zip(SHAPES, (chain_n, layered_n), strict=True)
    ]
    dags = {r.executor: workloads.make(r.executor, r.n) for r in results}
    began = time.perf_counter()
    for rep in range(rounds):
        for res in results:
            dag = dags[res.executor]
            for form in rotated(FORMS, rep):
                wf = None if form == FLOOR else build_workflow(dag, workloads.noop)
                gc.collect()
                try:
                    seconds = floors.threaded(dag) if wf is None else _RUNS[form](wf)
                except Exception as exc:
                    res.error = f"{form}: {type(exc).__name__}: {exc}"[:200]
                    progress(f"  handoff on the {res.executor} failed: {res.error}")
                    continue
                res.times.setdefault(form, []).append(seconds)
    progress(f"  handoff: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results
