"""A blocking ``execute`` called where an event loop already runs: the in-loop section (issue 15).

A notebook cell, or a sync helper called by async code, calls the blocking
``SequentialExecutor().execute(wf)`` on a thread whose asyncio loop is running; the run
cannot start a loop there, so it runs on a helper thread (``_blocking``). The same call
from a plain thread (no loop) runs ``anyio.run`` right there: that is the baseline.

A 10-task workflow of no-op tasks (the layered shape, two layers of five), ``calls``
blocking executes in a row per repetition, forms taking turns in one process:

* ``plain thread``: the calls made on a ``threading.Thread`` that runs no loop;
* ``inside asyncio.run``: the calls made by a coroutine's sync code, in ``asyncio.run``.

Each cell: microseconds per ``execute`` (the median over repetitions of each
repetition's mean), and the ratio in-loop / plain thread, which issue 15 wants <= 1.5x.

``python benchmarks/inloop.py [--rounds 7] [--calls 100]`` runs it alone.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import workloads
from benchmarks.measure import Progress, _quiet, rotated

FORMS = ("plain thread", "inside asyncio.run")
TASKS = 10


@dataclass
class InLoopResult:
    """Form -> seconds per ``execute``, one entry per repetition."""

    tasks: int
    calls: int
    times: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    def us_per_call(self, form: str) -> float | None:
        t = self.times.get(form)
        return statistics.median(t) * 1e6 if t else None

    def ratio(self) -> float | None:
        inside, plain = self.us_per_call(FORMS[1]), self.us_per_call(FORMS[0])
        return None if inside is None or not plain else inside / plain


def _workflow() -> Any:
    from flowweaver import Task, Workflow

    dag = workloads.make("layered", TASKS)
    wf = Workflow("bench-inloop")
    names = dag.names
    for name, ups in zip(names, dag.deps, strict=True):
        wf.add_task(Task(name, workloads.noop), depends_on=[names[j] for j in ups])
    return wf


def _calls(calls: int) -> float:
    """Seconds per blocking execute, ``calls`` of them on this thread."""
    import flowweaver

    wf = _workflow()
    executor = flowweaver.SequentialExecutor()
    start = time.perf_counter()
    for _ in range(calls):
        executor.execute(wf)
    return (time.perf_counter() - start) / calls


def _on_plain_thread(calls: int) -> float:
    out: list[float] = []
    worker = threading.Thread(target=lambda: out.append(_calls(calls)))
    worker.start()
    worker.join()
    if not out:
        raise RuntimeError("the plain thread's executes failed")
    return out[0]


def _inside_asyncio_run(calls: int) -> float:
    async def main() -> float:
        return _calls(calls)  # sync code of a coroutine: the loop is running here

    return asyncio.run(main())


def inloop_costs(rounds: int, calls: int, progress: Progress = _quiet) -> InLoopResult:
    res = InLoopResult(TASKS, calls)
    forms = {"plain thread": _on_plain_thread, "inside asyncio.run": _inside_asyncio_run}
    began = time.perf_counter()
    try:
        for form in FORMS:  # first calls import and cache things; keep that off the clock
            forms[form](2)
        for rep in range(rounds):
            for form in rotated(FORMS, rep):
                gc.collect()
                res.times.setdefault(form, []).append(forms[form](calls))
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"[:200]
    progress(f"  in-loop execute: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return res


def table(res: InLoopResult | None) -> list[str]:
    if res is None:
        return []
    lines = [
        f"## In-loop execute: a blocking `execute` of {res.tasks} tasks where a loop runs",
        "",
        "`SequentialExecutor().execute(wf)` called by sync code inside `asyncio.run` (it "
        "runs on FlowWeaver's helper thread) against the same call on a plain thread "
        f"(`anyio.run` right there); {res.calls} calls in a row per repetition, forms "
        "taking turns, medians (issue 15: <= 1.5x).",
        "",
        "| " + " | ".join(FORMS) + " | in-loop / plain thread |",
        "|" + "---:|" * (len(FORMS) + 1),
    ]
    if res.error:
        lines.append(f"| failed: {res.error} |" + " |" * len(FORMS))
    else:
        cells = [_us(res.us_per_call(form)) for form in FORMS]
        ratio = res.ratio()
        cells.append("-" if ratio is None else f"{ratio:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} us"


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python benchmarks/inloop.py", description=__doc__)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=100)
    args = p.parse_args(argv)
    res = inloop_costs(args.rounds, args.calls, lambda msg: print(msg, file=sys.stderr))
    print("\n".join(table(res)))


if __name__ == "__main__":
    main()
