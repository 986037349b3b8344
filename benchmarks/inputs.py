"""What input-aware records cost per task: the inputs section of the suite (issue 12).

With a state store, each record carries a hash of the task's result and of what it
received (its upstream results' hashes, and each run parameter it takes); a resumed run
checks them. Without a store nothing is hashed: issue 12 wants hashing off the hot path
of such runs. So the same DAG of no-op tasks runs, with ``SequentialExecutor`` (the least
overhead of its own, so the hashing shows most), in four forms taking turns in one
process: no store, no store with one run parameter (``params={"date": ...}``, taken by
every task, since the no-op tasks take ``**kw``), a fresh ``SQLiteStateStore``, and one
with the parameter. Each store run is followed by a second run on the same store, which
restores every task (the cost of checking the records). Building the workflow and making
the store object are not timed; ``execute`` is.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import workloads
from .measure import Progress, _quiet, rotated
from .systems import build_workflow

WORKLOADS = ("chain", "layered")
FORMS = ("none", "none+params", "sqlite", "sqlite+params")
PARAMS = {"date": "2026-11-30"}


@dataclass
class InputsResult:
    """One workload's times: a form (see :data:`FORMS`), and ``<form> restore`` for the
    second run of a store form, -> seconds per repetition."""

    n: int
    workload: str
    times: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    def us_per_task(self, label: str) -> float | None:
        t = self.times.get(label)
        return statistics.median(t) / self.n * 1e6 if t else None

    def ratio(self, label: str, base: str) -> float | None:
        a, b = self.us_per_task(label), self.us_per_task(base)
        return None if a is None or b is None else a / b


def _execute(dag: workloads.Dag, form: str, folder: Path) -> tuple[float, float | None]:
    """Seconds of one run of ``dag`` in ``form``, and of the restoring run after it (store
    forms only)."""
    import flowweaver

    params = PARAMS if form.endswith("+params") else None
    store = flowweaver.SQLiteStateStore(str(folder / "s.db")) if "sqlite" in form else None
    seconds: list[float] = []
    # the store's file is opened by each run and closed at its end
    for _ in range(1 if store is None else 2):
        wf = build_workflow(dag, workloads.noop)
        executor = flowweaver.SequentialExecutor(state_store=store)
        gc.collect()
        start = time.perf_counter()
        executor.execute(wf, params=params)
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1] if len(seconds) > 1 else None


def input_costs(n: int, rounds: int, progress: Progress = _quiet) -> list[InputsResult]:
    """Each form of :data:`FORMS` on the chain and the layered DAG of ``n`` tasks, taking
    turns, ``rounds`` repetitions each."""
    results = [InputsResult(n, w) for w in WORKLOADS]
    dags = {w: workloads.make(w, n) for w in WORKLOADS}
    began = time.perf_counter()
    for rep in range(rounds):
        for res in results:
            for form in rotated(FORMS, rep):
                if res.error is not None:
                    continue
                with tempfile.TemporaryDirectory(prefix="fw-bench-inputs-") as folder:
                    try:
                        first, again = _execute(dags[res.workload], form, Path(folder))
                    except Exception as exc:
                        res.error = f"{form}: {type(exc).__name__}: {exc}"[:200]
                        progress(f"  inputs on {res.workload} failed: {res.error}")
                        continue
                res.times.setdefault(form, []).append(first)
                if again is not None:
                    res.times.setdefault(f"{form} restore", []).append(again)
    progress(f"  inputs: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results
