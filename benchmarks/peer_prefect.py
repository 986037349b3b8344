"""Prefect 3 as a peer, at 1,000 tasks: only in the optional ``bench_prefect`` session.

Prefect is never a dependency of FlowWeaver or of the main suite: it is imported here only
when asked for. No Prefect server is set up: Prefect's own ephemeral mode starts a
temporary local server (127.0.0.1, SQLite) in a throw-away ``PREFECT_HOME``; an untimed
warm-up flow pays for its start. Telemetry is switched off (it needs the internet, which
this machine does not have, and its failure stops Prefect's event worker). Everything else,
logging included, is Prefect's default.

Prefect has no build step apart from running: the flow submits one task run per node
(``task.submit(**upstream_futures)`` on a ``ThreadPoolTaskRunner(4)``) and waits for all,
so the timed part includes submitting. FlowWeaver's ``ThreadedExecutor(4)`` runs the same
DAG in the same process right after each Prefect run, for the ratio.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from . import workloads
from .measure import Progress, _quiet
from .systems import flowweaver_systems
from .workloads import Dag, noop

PREFECT_N = 1_000


def _configure() -> None:
    home = tempfile.mkdtemp(prefix="fw-bench-prefect-")
    os.environ["PREFECT_HOME"] = home
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _flow_runner() -> Any:
    from prefect import flow, task
    from prefect.futures import wait
    from prefect.task_runners import ThreadPoolTaskRunner

    ptask = task(noop, name="noop")

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[misc]
    def run_dag(dag: Dag) -> int:
        names = dag.names
        futures: list[Any] = []
        for ups in dag.deps:
            futures.append(ptask.submit(**{names[j]: futures[j] for j in ups}))
        wait(futures)
        return sum(1 for f in futures if f.state.is_completed())

    return run_dag


def measure(rounds: int, n: int = PREFECT_N, progress: Progress = _quiet) -> dict[str, Any]:
    """Prefect and ThreadedExecutor(4) on each workload at ``n`` tasks, interleaved."""
    try:
        _configure()
        run_dag = _flow_runner()
        began = time.perf_counter()
        run_dag(workloads.layered(10))  # starts the temporary server; not timed
        progress(f"  prefect: temporary server up in {time.perf_counter() - began:.1f} s")
    except Exception as exc:
        return {"error": f"Prefect could not run here: {type(exc).__name__}: {exc}"[:400]}

    threaded = next(s for s in flowweaver_systems() if s.name == "ThreadedExecutor(4)")
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for wl in workloads.WORKLOADS:
        dag = workloads.make(wl, n)
        pt: list[float] = []
        ft: list[float] = []
        for _ in range(rounds):
            start = time.perf_counter()
            try:
                done = run_dag(dag)
            except Exception as exc:  # Prefect's local server can fail under load: say so
                failures.append(f"{wl}: {type(exc).__name__}: {exc}"[:300])
                break
            pt.append(time.perf_counter() - start)
            if done != len(dag):
                failures.append(f"{wl}: Prefect completed {done} of {len(dag)} tasks")
                break
            ft.append(threaded.run(dag))
        if pt and ft:
            rows.append(
                {
                    "workload": wl,
                    "n": n,
                    "runs": len(pt),
                    "prefect": statistics.median(pt) / len(dag) * 1e6,
                    "flowweaver": statistics.median(ft) / len(dag) * 1e6,
                }
            )
        progress(f"  prefect: {wl} done")
    from importlib import metadata

    return {
        "how": (
            f"Prefect {metadata.version('prefect')}, `ThreadPoolTaskRunner(max_workers=4)`, "
            "ephemeral mode (a temporary local server Prefect starts itself, SQLite in a "
            "throw-away PREFECT_HOME, telemetry off; Prefect's default logging, one line per "
            "task run). The whole flow call is timed "
            f"(submitting included); medians of up to {rounds} runs each, interleaved with "
            "FlowWeaver's ThreadedExecutor(4) on the same DAG."
        ),
        "rows": rows,
        "failures": failures,
    }
