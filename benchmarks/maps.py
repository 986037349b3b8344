"""What an item of a map costs against a static task: the maps section of the suite.

A map of ``n`` no-op items (``systems.build_map_workflow``: a source task, the mapped task,
one task taking its list) against its static twin, ``workloads.fan_out(n)`` (a source
task, ``n`` no-op tasks depending on it, one task depending on all of them), with the same
executor, in the same process, taking turns as the executors section does. Issue 11's bar:
a map costs no more per item than the static DAG per task (a ratio of at most 1).
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field

from .measure import Progress, _quiet, _store_executors, rotated
from .systems import build_fan_out_workflow, build_map_workflow

KINDS = ("static", "map")


@dataclass
class MapResult:
    n: int
    executor: str
    times: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    error: str | None = None

    def us_per_task(self, kind: str) -> float | None:
        t = self.times.get(kind)
        return statistics.median(t) / self.n * 1e6 if t else None

    def ratio(self) -> float | None:
        """Per item of the map / per task of the static twin."""
        static, mapped = self.us_per_task("static"), self.us_per_task("map")
        return None if static is None or mapped is None else mapped / static


def map_costs(n: int, rounds: int, progress: Progress = _quiet) -> list[MapResult]:
    """A map of ``n`` items against ``n`` static tasks, with each executor of the stores
    section (Sequential, Threaded(4), Concurrent with async tasks). Building the workflow
    is not timed; ``execute`` is (the map's expansion and gathering included)."""
    results = [MapResult(n, label) for label, _, _ in _store_executors()]
    began = time.perf_counter()
    for rep in range(rounds):
        for res, (label, make_executor, func) in zip(results, _store_executors(), strict=True):
            for kind in rotated(KINDS, rep):
                if res.error is not None:
                    continue
                build = build_map_workflow if kind == "map" else build_fan_out_workflow
                wf = build(n, func)
                executor = make_executor(None)
                gc.collect()
                try:
                    start = time.perf_counter()
                    executor.execute(wf)
                    res.times[kind].append(time.perf_counter() - start)
                except Exception as exc:
                    res.error = f"{kind}: {type(exc).__name__}: {exc}"[:200]
                    progress(f"  maps with {label} failed: {res.error}")
    progress(f"  maps: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results
