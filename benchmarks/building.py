"""What building a workflow and planning a run cost: the building section (issue 15).

Three rows, on layered DAGs of no-op tasks:

* ``add_task``: CPU per task of ``wf.add_task(Task(name, noop), depends_on=deps)`` for
  ``n`` tasks of fan-in 3 (names and dependency lists made beforehand), priced against
  running the same workflow with ``SequentialExecutor`` in the same process;
* ``repeat``: a second ``execute`` of an unchanged workflow against its first (10,000
  tasks, ``SequentialExecutor``): what the cached graph and plan save;
* ``big``: a layered DAG of fan-in 3 (a million tasks; fewer with ``--quick``) built and
  run with ``SequentialExecutor`` in a fresh process (``python -m benchmarks.building N``):
  the process's peak RSS per task (everything the process holds, the DAG's own names and
  lists included, as the issue measures it), beside the RSS of the process before it
  built anything.
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import workloads
from .measure import ROOT, Progress, _quiet

FAN_IN = 3


def _names_and_deps(n: int) -> tuple[tuple[str, ...], list[list[str]]]:
    dag = workloads.layered(n, fan_in=FAN_IN)
    names = dag.names
    return names, [[names[j] for j in ups] for ups in dag.deps]


def _build(name: str, names: tuple[str, ...], deps: list[list[str]]) -> Any:
    from flowweaver import Task, Workflow

    wf = Workflow(name)
    add = wf.add_task
    noop = workloads.noop
    for task_name, ups in zip(names, deps, strict=True):
        add(Task(task_name, noop), depends_on=ups)
    return wf


@dataclass
class BuildResult:
    """CPU seconds per repetition: building the workflow, and running it once."""

    n: int
    build: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)
    error: str | None = None

    def us_per_task(self, what: str) -> float | None:
        t = self.build if what == "build" else self.run
        return statistics.median(t) / self.n * 1e6 if t else None

    def ratio(self) -> float | None:
        a, b = self.us_per_task("build"), self.us_per_task("run")
        return None if a is None or b is None else a / b


def add_task_cost(n: int, rounds: int, progress: Progress = _quiet) -> BuildResult:
    """CPU per task of building the layered DAG of ``n`` tasks (fan-in 3), and of running
    it with ``SequentialExecutor``, taking turns."""
    from flowweaver import SequentialExecutor

    res = BuildResult(n)
    names, deps = _names_and_deps(n)
    began = time.perf_counter()
    for _ in range(rounds):
        try:
            gc.collect()
            start = time.process_time()
            wf = _build(f"bench-build-{n}", names, deps)
            res.build.append(time.process_time() - start)
            gc.collect()
            start = time.process_time()
            SequentialExecutor().execute(wf)
            res.run.append(time.process_time() - start)
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"[:200]
            break
        del wf
    progress(f"  add_task: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return res


@dataclass
class RepeatResult:
    """Seconds of the first and of the second ``execute`` of one workflow, per repetition."""

    n: int
    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    error: str | None = None

    def us_per_task(self, which: str) -> float | None:
        t = self.first if which == "first" else self.second
        return statistics.median(t) / self.n * 1e6 if t else None

    def ratio(self) -> float | None:
        """Median of the per-repetition ratios second / first (each pair ran back to back)."""
        pairs = [b / a for a, b in zip(self.first, self.second, strict=False) if a > 0]
        return statistics.median(pairs) if pairs else None


def repeat_cost(n: int, rounds: int, progress: Progress = _quiet) -> RepeatResult:
    """The first and the second ``execute`` of a fresh layered workflow of ``n`` tasks
    (fan-in 3) with ``SequentialExecutor``, ``rounds`` times."""
    from flowweaver import SequentialExecutor

    res = RepeatResult(n)
    names, deps = _names_and_deps(n)
    began = time.perf_counter()
    for _ in range(rounds):
        try:
            wf = _build(f"bench-repeat-{n}", names, deps)
            for times in (res.first, res.second):
                gc.collect()
                start = time.perf_counter()
                SequentialExecutor().execute(wf)
                times.append(time.perf_counter() - start)
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"[:200]
            break
    progress(f"  repeat: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return res


@dataclass
class BigResult:
    """One fresh process that built and ran the big layered DAG."""

    n: int
    build_s: float | None = None
    run_s: float | None = None
    build_cpu: float | None = None
    run_cpu: float | None = None
    peak_rss: int | None = None  # bytes: the process's peak
    start_rss: int | None = None  # bytes: after imports and the DAG data, before building
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.build_s is None or self.run_s is None else self.build_s + self.run_s

    def per_task(self, base: bool = False) -> float | None:
        """Peak RSS per task in bytes; with ``base``, less the RSS before building."""
        if self.peak_rss is None:
            return None
        less = (self.start_rss or 0) if base else 0
        return (self.peak_rss - less) / self.n


def big_run(n: int, progress: Progress = _quiet) -> BigResult:
    """Build and run the layered DAG of ``n`` tasks (fan-in 3) in a fresh process."""
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.building", str(n)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    res = BigResult(n)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        res.error = (tail[-1] if tail else f"exit status {proc.returncode}")[:200]
    else:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        res.build_s, res.run_s = found["build_s"], found["run_s"]
        res.build_cpu, res.run_cpu = found["build_cpu"], found["run_cpu"]
        res.peak_rss, res.start_rss = found["peak_rss"], found["start_rss"]
    progress(f"  big: {n:,} tasks in {time.perf_counter() - began:.1f} s")
    return res


@dataclass
class Building:
    """The section's three rows (any of them None when not measured)."""

    add: BuildResult | None = None
    repeat: RepeatResult | None = None
    big: BigResult | None = None


def building_costs(
    add_n: int, repeat_n: int, big_n: int, rounds: int, progress: Progress = _quiet
) -> Building:
    """The three rows: ``add_task`` at ``add_n`` tasks, a second ``execute`` at
    ``repeat_n``, build + run and peak memory of ``big_n`` in a fresh process."""
    return Building(
        add_task_cost(add_n, rounds, progress),
        repeat_cost(repeat_n, rounds, progress),
        big_run(big_n, progress),
    )


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(found: Building | None) -> list[str]:
    """The report's section."""
    if found is None:
        return []
    lines = [
        "## Building a workflow, running it again, and a million tasks (issue 15)",
        "",
        "Layered DAGs of no-op tasks, fan-in 3. *add_task*: CPU per task of "
        "`wf.add_task(Task(name, noop), depends_on=[...])`, names and dependency lists made "
        "beforehand, against CPU per task of running the workflow it built with "
        "`SequentialExecutor` (taking turns). *second execute*: the same workflow run "
        "again, unchanged (its graph and plan are kept), against its first run, "
        "`SequentialExecutor`; ratio: median of the pairs. *build + run*: a fresh process "
        "builds and runs the DAG with `SequentialExecutor`; peak RSS of the whole "
        "process per task (the DAG's names and lists included), and less the RSS it had "
        "before building.",
        "",
        "| row | measured | against | ratio |",
        "|---|---:|---:|---:|",
    ]
    a = found.add
    if a is not None:
        if a.error:
            lines.append(f"| add_task per task, {a.n:,} fan-in 3 (CPU) | failed: {a.error} | | |")
        else:
            lines.append(
                f"| add_task per task, {a.n:,} fan-in 3 (CPU) | {_us(a.us_per_task('build'))} us "
                f"| run: {_us(a.us_per_task('run'))} us | {_x(a.ratio())} |"
            )
    r = found.repeat
    if r is not None:
        what = f"second execute of an unchanged workflow / first execute ({r.n:,} layered)"
        if r.error:
            lines.append(f"| {what} | failed: {r.error} | | |")
        else:
            lines.append(
                f"| {what} | {_us(r.us_per_task('second'))} us | "
                f"first: {_us(r.us_per_task('first'))} us | {_x(r.ratio())} |"
            )
    b = found.big
    if b is not None:
        what = f"{b.n:,} layered build+run, Sequential"
        if b.error:
            lines.append(f"| {what} | failed: {b.error} | | |")
        else:
            lines.append(
                f"| {what}: seconds | {b.build_s or 0:.1f} s + {b.run_s or 0:.1f} s | "
                f"CPU: {b.build_cpu or 0:.1f} s + {b.run_cpu or 0:.1f} s | |"
            )
            lines.append(
                f"| {what}: peak memory per task | {_bytes(b.per_task())} | "
                f"less the RSS before building: {_bytes(b.per_task(base=True))} | |"
            )
    lines.append("")
    return lines


def _bytes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} B"


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv: list[str]) -> None:
    """The child of :func:`big_run`: prints one JSON line."""
    from flowweaver import SequentialExecutor

    from .memprobe import _maxrss

    n = int(argv[0])

    names, deps = _names_and_deps(n)
    start_rss = _rss()
    start, start_cpu = time.perf_counter(), time.process_time()
    wf = _build(f"bench-big-{n}", names, deps)
    built, built_cpu = time.perf_counter(), time.process_time()
    SequentialExecutor().execute(wf)
    ran, ran_cpu = time.perf_counter(), time.process_time()
    out = {
        "build_s": built - start,
        "run_s": ran - built,
        "build_cpu": built_cpu - start_cpu,
        "run_cpu": ran_cpu - built_cpu,
        "peak_rss": _maxrss(),
        "start_rss": start_rss,
        "tasks": len(wf.tasks),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
