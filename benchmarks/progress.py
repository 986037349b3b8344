"""What the command's run displays cost a run: the progress section of the suite (issue 14).

The layered DAG of no-op tasks (10,000 and 100,000 tasks), in four forms taking turns in
one process, with ``SequentialExecutor`` and ``ThreadedExecutor(4)``:

* ``none``: no observer (the baseline);
* ``null observer``: ``observer=lambda event: None``: what the engine spends making and
  delivering the events, which any observer pays;
* ``live display``: the command's terminal display (``LiveProgress``) started on a rich
  ``Console`` writing to a ``StringIO`` with ``force_terminal=True``, redrawing four times
  a second on its own thread as on a terminal;
* ``plain lines``: the command's display for logs and pipes (``PlainProgress``, not
  verbose, its progress-line thread running), writing to a ``StringIO``.

Each cell says what the form adds per task to ``none``, and the ratio; the display's own
share is the difference to ``null observer``. Building the workflow is not timed.

``python benchmarks/progress.py [--sizes 10000,100000] [--rounds 3]`` runs it alone.

On a shared machine those wall-clock ratios move by tens of percent from run to run, so
``python benchmarks/progress.py --instructions`` counts instead (valgrind's callgrind):
the instructions per task each form adds to ``none``, which the load cannot blur, and the
time one redraw of the live display takes with 100,000 tasks and 200 running (it redraws
four times a second on its own thread, whatever the run does: that share of a second is
what it takes from the run, at most).
"""

from __future__ import annotations

import gc
import io
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import workloads
from benchmarks.measure import Progress, _quiet, rotated

FORMS = ("none", "null observer", "live display", "plain lines")
EXECUTORS = ("SequentialExecutor", "ThreadedExecutor(4)")


@dataclass
class ProgressResult:
    """One executor at one size: form -> seconds per repetition."""

    n: int
    executor: str
    times: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    def us_per_task(self, form: str) -> float | None:
        t = self.times.get(form)
        return statistics.median(t) / self.n * 1e6 if t else None

    def ratio(self, form: str, to: str = "none") -> float | None:
        a, b = self.us_per_task(form), self.us_per_task(to)
        return None if a is None or not b else a / b


def _workflow(dag: workloads.Dag) -> Any:
    from flowweaver import Task, Workflow

    wf = Workflow(f"bench-progress-{len(dag)}")
    names = dag.names
    for name, ups in zip(names, dag.deps, strict=True):
        wf.add_task(Task(name, workloads.noop), depends_on=[names[j] for j in ups])
    return wf


@contextmanager
def _observer(form: str, n: int) -> Iterator[Any]:
    """The observer of ``form``, started (and stopped afterwards) as the command does."""
    from rich.console import Console

    from flowweaver._cli._progress import LiveProgress, PlainProgress, RunState

    if form == "none":
        yield None
        return
    if form == "null observer":
        yield lambda event: None
        return
    state = RunState(f"bench-progress-{n}", n)
    display: AbstractContextManager[Any]
    if form == "live display":
        console = Console(file=io.StringIO(), force_terminal=True, width=100)
        display = LiveProgress(state, console)
    else:
        sink = io.StringIO()
        display = PlainProgress(state, write=lambda text: print(text, file=sink))
    with display:
        yield display


def _executor(name: str, observer: Any) -> Any:
    import flowweaver

    if name == "SequentialExecutor":
        return flowweaver.SequentialExecutor(observer=observer)
    return flowweaver.ThreadedExecutor(4, observer=observer)


def progress_costs(
    sizes: list[int], rounds: int, progress: Progress = _quiet
) -> list[ProgressResult]:
    """Each form of :data:`FORMS` on the layered DAG of each size with each executor,
    taking turns, ``rounds`` repetitions each."""
    results = []
    began = time.perf_counter()
    for n in sizes:
        dag = workloads.make("layered", n)
        here = [ProgressResult(n, e) for e in EXECUTORS]
        for rep in range(rounds):
            for res in here:
                for form in rotated(FORMS, rep):
                    if res.error is not None:
                        continue
                    wf = _workflow(dag)
                    try:
                        with _observer(form, n) as observer:
                            executor = _executor(res.executor, observer)
                            gc.collect()
                            start = time.perf_counter()
                            executor.execute(wf)
                            seconds = time.perf_counter() - start
                    except Exception as exc:
                        res.error = f"{form}: {type(exc).__name__}: {exc}"[:200]
                        progress(f"  progress with {res.executor} failed: {res.error}")
                        continue
                    res.times.setdefault(form, []).append(seconds)
        results += here
    progress(f"  progress: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results


def table(results: list[ProgressResult]) -> list[str]:
    """The report's section."""
    if not results:
        return []
    forms = FORMS[1:]
    lines = [
        "## Run displays: cost per task of the command's live display and plain lines",
        "",
        "The layered DAG of no-op tasks, forms taking turns in one process. *null "
        "observer*: what the engine spends making and delivering events, which any "
        "observer pays; *live display*: `flowweaver run`'s terminal display (rich, "
        "redrawing on its thread) on a `Console(file=StringIO(), force_terminal=True)`; "
        "*plain lines*: its display for logs and pipes (not verbose). Each cell: "
        "microseconds per task, what the form adds to *none*, and the ratio to *none*.",
        "",
        "| tasks | executor | none | " + " | ".join(forms) + " |",
        "|---:|---|" + "---:|" * (len(forms) + 1),
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.n:,} | {r.executor} | failed: {r.error} |" + " |" * len(forms))
            continue
        base = r.us_per_task("none")
        cells = [_us(base)]
        for form in forms:
            value = r.us_per_task(form)
            extra = None if value is None or base is None else value - base
            sign = "+" if extra is not None and extra >= 0 else ""
            ratio = r.ratio(form)
            cells.append(
                f"{_us(value)} ({sign}{_us(extra)}, {'-' if ratio is None else f'{ratio:.2f}x'})"
            )
        lines.append(f"| {r.n:,} | {r.executor} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


# Runs in the child, under valgrind: a warm-up run first (imports and lazy loads are then
# outside the difference), then the measured run, or only its build. The live display is
# not started here: under valgrind its redraws, four a second of a run slowed fifty times,
# would be counted fifty times too often; :func:`redraw_ms` times them instead.
CHILD = """
import io, sys
repo, executor, form, n, mode = sys.argv[1:6]
sys.path.insert(0, repo)
import flowweaver
from rich.console import Console
from benchmarks import workloads
from benchmarks.progress import _workflow
from flowweaver._cli._progress import LiveProgress, PlainProgress, RunState

def observer(n):
    if form == "none":
        return None
    if form == "null observer":
        return lambda event: None
    state = RunState("bench", n)
    if form == "live display":
        return LiveProgress(state, Console(file=io.StringIO(), force_terminal=True))
    return PlainProgress(state, interval=0, write=lambda text: None)

def execute(n, obs):
    wf = _workflow(workloads.make("layered", n))
    if mode == "build" and n > 100:
        return
    if executor == "seq":
        flowweaver.SequentialExecutor(observer=obs).execute(wf)
    else:
        flowweaver.ThreadedExecutor(4, observer=obs).execute(wf)

execute(100, observer(100))
execute(int(n), observer(int(n)))
"""


def instructions(executor: str, form: str, n: int) -> float:
    """Instructions per task of ``form`` (a run less its build), counted by callgrind."""
    import re
    import subprocess

    here = str(Path(__file__).resolve().parent.parent)

    def count(mode: str) -> int:
        done = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
                *(sys.executable, "-c", CHILD, here, executor, form, str(n), mode),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"valgrind printed no count:\n{done.stderr[-2000:]}")
        return int(found.group(1))

    return (count("run") - count("build")) / n


def redraw_ms(rounds: int = 50) -> float:
    """Milliseconds one redraw of the live display takes (the median), at 100,000 tasks
    with 200 running, 40,000 done and a map half done."""
    from rich.console import Console

    from flowweaver import Task
    from flowweaver._cli._progress import LiveProgress, RunState
    from flowweaver._events import RunStarted, TaskCompleted, TaskStarted

    mapped = Task("load", lambda x: x, map_over="source")
    mapped._items = [mapped._item(k) for k in range(1000)]
    state = RunState("bench", 100_000, {"load": mapped})
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    display = LiveProgress(state, console)
    display(RunStarted("bench", time.time(), 100_000))
    for i in range(40_000):
        display(TaskCompleted("bench", time.time(), f"t{i}", 1, 0.0))
    for i in range(200):
        display(TaskStarted("bench", time.time() - i, f"r{i}", 1))
    for k in range(500):
        display(TaskCompleted("bench", time.time(), f"load[{k}]", 1, 0.0, item=k))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        # what a redraw does: build the renderable, render it to the terminal's text
        console.print(display.__rich__())
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python benchmarks/progress.py", description=__doc__)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--instructions", action="store_true", help="count, with valgrind")
    p.add_argument("--n", type=int, default=10_000, help="tasks, with --instructions")
    p.add_argument("--executors", default="seq,threaded", help="with --instructions")
    args = p.parse_args(argv)
    if args.instructions:
        for executor in args.executors.split(","):
            base = instructions(executor, "none", args.n)
            print(f"{executor:9} none             {base:>9,.0f} instructions/task")
            for form in FORMS[1:]:
                value = instructions(executor, form, args.n)
                print(
                    f"{executor:9} {form:16} {value:>9,.0f} instructions/task "
                    f"(+{value - base:,.0f}, {value / base:.3f}x)"
                )
        ms = redraw_ms()
        print(f"one redraw of the live display: {ms:.2f} ms; four a second: {ms * 0.4:.2f}%")
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    results = progress_costs(sizes, args.rounds, lambda msg: print(msg, file=sys.stderr))
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
