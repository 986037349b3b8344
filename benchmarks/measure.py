"""How things are timed: interleaved repetitions in one process, and the side measurements.

Ratios are what the targets are about, and a shared 2-core machine is noisy, so every
system runs in the same process and the same run, the systems take turns (the order is
rotated on each repetition so that none always runs right after a heavy one), and each
cell reports the median of its repetitions. ``gc.collect()`` runs before each timed run so
that one system's garbage is not collected on another's clock; the collector stays on
during the run, as in a user's program.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import workloads
from .systems import System, build_workflow
from .workloads import anoop, noop

ROOT = Path(__file__).resolve().parent.parent
Progress = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


@dataclass
class Cell:
    """The repetitions of one system on one DAG."""

    system: str
    workload: str
    n: int
    tasks: int
    times: list[float] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def us_per_task(self) -> float | None:
        m = self.median
        return None if m is None else m / self.tasks * 1e6


def rotated(items: Sequence[Any], by: int) -> list[Any]:
    if not items:
        return []
    k = by % len(items)
    return list(items[k:]) + list(items[:k])


def run_matrix(
    systems: Sequence[System],
    workload_names: Sequence[str],
    sizes: Sequence[int],
    repeats: Callable[[int], int],
    progress: Progress = _quiet,
) -> dict[tuple[str, str, int], Cell]:
    """Time every system on every workload and size, interleaved; one cell per triple."""
    cells: dict[tuple[str, str, int], Cell] = {}
    warm = workloads.layered(20)
    for s in systems:  # first calls import and cache things; keep that off every clock
        try:
            s.run(warm)
        except Exception:
            pass  # reported by the real runs
    for n in sizes:
        for wl in workload_names:
            dag = workloads.make(wl, n)
            active: list[System] = []
            for s in systems:
                cell = Cell(s.name, wl, n, len(dag))
                cells[(s.name, wl, n)] = cell
                if s.runs(n):
                    active.append(s)
                else:
                    cell.skipped = s.skip_reason
            rounds = repeats(n)
            began = time.perf_counter()
            for rep in range(rounds):
                for s in rotated(active, rep):
                    cell = cells[(s.name, wl, n)]
                    if cell.error is not None:
                        continue
                    if s.max_repeats is not None and rep >= s.max_repeats:
                        continue
                    gc.collect()
                    try:
                        cell.times.append(s.run(dag))
                    except Exception as exc:  # recorded in the table; the suite goes on
                        cell.error = f"{type(exc).__name__}: {exc}"[:200]
                        progress(f"  {s.name} failed on {wl} {n}: {cell.error}")
            progress(
                f"  {wl:8} n={n:>7,}: {len(active)} systems x {rounds} repetitions "
                f"in {time.perf_counter() - began:.1f} s"
            )
    return cells


# -- state stores -------------------------------------------------------------------------

STORE_CLASSES = ("SQLiteStateStore", "JSONStateStore")


def store_class(name: str) -> tuple[Any, str | None]:
    """``flowweaver.<name>``, or ``None`` and why it could not be had."""
    try:
        import flowweaver

        return getattr(flowweaver, name), None
    except Exception as exc:
        return None, f"not available: {type(exc).__name__}: {exc}"


@dataclass
class StoreResult:
    n: int
    executor: str
    times: dict[str, list[float]]  # store label ("none" or a class name) -> seconds
    errors: dict[str, str]

    def us_per_task(self, label: str) -> float | None:
        t = self.times.get(label)
        return statistics.median(t) / self.n * 1e6 if t else None

    def ratio(self, label: str) -> float | None:
        base, other = self.us_per_task("none"), self.us_per_task(label)
        return None if base is None or other is None else other / base


def _store_executors() -> list[tuple[str, Callable[[Any], Any], Callable[..., Any]]]:
    import flowweaver

    return [
        ("SequentialExecutor", lambda st: flowweaver.SequentialExecutor(state_store=st), noop),
        ("ThreadedExecutor(4)", lambda st: flowweaver.ThreadedExecutor(4, state_store=st), noop),
        ("ConcurrentExecutor", lambda st: flowweaver.ConcurrentExecutor(state_store=st), anoop),
    ]


def store_costs(n: int, rounds: int, progress: Progress = _quiet) -> list[StoreResult]:
    """Each store against no store, same executor, on the layered DAG of ``n`` tasks.

    Each repetition gets a fresh temporary folder, so nothing is restored. Making the store
    object and building the workflow are not timed; ``execute`` is (the store's opening,
    loading, writing and closing included).
    """
    dag = workloads.layered(n)
    classes = {name: store_class(name) for name in STORE_CLASSES}
    results: list[StoreResult] = []
    began = time.perf_counter()
    for label, _, _ in _store_executors():
        res = StoreResult(n, label, {"none": []}, {})
        for name, (cls, why) in classes.items():
            if cls is None:
                res.errors[name] = why or "not available"
            else:
                res.times[name] = []
        results.append(res)
    for rep in range(rounds):
        for res, (label, make_executor, func) in zip(results, _store_executors(), strict=True):
            for store in rotated(list(res.times), rep):
                if store in res.errors:
                    continue
                with tempfile.TemporaryDirectory(prefix="fw-bench-") as folder:
                    state_store = None
                    if store != "none":
                        cls = classes[store][0]
                        suffix = ".db" if "SQLite" in store else ".json"
                        state_store = cls(str(Path(folder) / f"state{suffix}"))
                    wf = build_workflow(dag, func)
                    executor = make_executor(state_store)
                    gc.collect()
                    try:
                        start = time.perf_counter()
                        executor.execute(wf)
                        res.times[store].append(time.perf_counter() - start)
                    except Exception as exc:
                        res.errors[store] = f"{type(exc).__name__}: {exc}"[:200]
                        progress(f"  {store} with {label} failed: {res.errors[store]}")
                    finally:
                        close = getattr(state_store, "close", None)
                        if callable(close):
                            try:
                                close()
                            except Exception:
                                pass
    progress(f"  stores: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results


# -- the fixed cost of one blocking execute() ---------------------------------------------


def fixed_cost(rounds: int, progress: Progress = _quiet) -> dict[str, float]:
    """Median microseconds of one blocking ``execute()`` of a 1-task workflow.

    A fresh 1-task workflow per call (not timed). Two baselines give the floor under it:
    ``anyio.run`` and ``asyncio.run`` of an empty coroutine.
    """
    import asyncio

    import anyio

    import flowweaver

    dag = workloads.chain(1)

    async def empty() -> None:
        return None

    def blocking(make: Callable[[], Any], func: Callable[..., Any]) -> Callable[[], float]:
        def once() -> float:
            wf = build_workflow(dag, func)
            executor = make()
            start = time.perf_counter()
            executor.execute(wf)
            return time.perf_counter() - start

        return once

    def loop_only(run: Callable[[], Any]) -> Callable[[], float]:
        def once() -> float:
            start = time.perf_counter()
            run()
            return time.perf_counter() - start

        return once

    cases: dict[str, Callable[[], float]] = {
        "SequentialExecutor": blocking(flowweaver.SequentialExecutor, noop),
        "ThreadedExecutor(4)": blocking(lambda: flowweaver.ThreadedExecutor(4), noop),
        "ConcurrentExecutor (async task)": blocking(flowweaver.ConcurrentExecutor, anoop),
        'SequentialExecutor(backend="trio")': blocking(
            lambda: flowweaver.SequentialExecutor(backend="trio"), noop
        ),
        "baseline: anyio.run(empty coroutine)": loop_only(lambda: anyio.run(empty)),
        'baseline: anyio.run(empty, backend="trio")': loop_only(
            lambda: anyio.run(empty, backend="trio")
        ),
        "baseline: asyncio.run(empty coroutine)": loop_only(lambda: asyncio.run(empty())),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    began = time.perf_counter()
    gc.collect()
    for rep in range(rounds):
        for name in rotated(list(cases), rep):
            times[name].append(cases[name]())
    progress(f"  fixed cost: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


# -- import time --------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    # Bytecode caches written and used, as an installed package has them: without them
    # every run would compile FlowWeaver's sources (and not anyio's, installed with its
    # caches), which measures the compiler (a shell with PYTHONDONTWRITEBYTECODE set).
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=_child_env())
    return time.perf_counter() - start


def _import_cpu(module: str) -> float:
    """CPU seconds of ``import module`` in a fresh interpreter, counted from inside it."""
    code = f"import time\nt = time.process_time()\nimport {module}\nprint(time.process_time() - t)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=_child_env(),
    )
    return float(proc.stdout.split()[-1])


def import_time(rounds: int, progress: Progress = _quiet) -> dict[str, Any]:
    """``import flowweaver`` in fresh interpreters, minus ``python -c pass`` (medians, ms).

    Also ``import anyio`` alone (the dependency most of it is), the CPU time of each
    import counted inside the interpreter (what issue 15's target is about: CPU time
    moves less than wall time with the machine's load) and their ratio, and the module
    ``-X importtime`` reports as the heaviest, from one more run.
    """
    codes = {"pass": "pass", "anyio": "import anyio", "flowweaver": "import flowweaver"}
    for code in codes.values():  # warm the bytecode caches and the disk
        _wall(code)
    walls: dict[str, list[float]] = {k: [] for k in codes}
    cpu: dict[str, list[float]] = {"anyio": [], "flowweaver": []}
    began = time.perf_counter()
    for rep in range(rounds):
        for key in rotated(list(codes), rep):
            walls[key].append(_wall(codes[key]))
        for key in rotated(list(cpu), rep):
            cpu[key].append(_import_cpu(key))
    med = {k: statistics.median(v) * 1e3 for k, v in walls.items()}
    cpu_ms = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
    out: dict[str, Any] = {
        "python -c pass (ms)": med["pass"],
        "import anyio, minus pass (ms)": med["anyio"] - med["pass"],
        "import flowweaver, minus pass (ms)": med["flowweaver"] - med["pass"],
        "import anyio, CPU (ms)": cpu_ms["anyio"],
        "import flowweaver, CPU (ms)": cpu_ms["flowweaver"],
        "import flowweaver / import anyio (CPU)": (
            cpu_ms["flowweaver"] / cpu_ms["anyio"] if cpu_ms["anyio"] > 0 else None
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import flowweaver"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=_child_env(),
    )
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].strip().startswith("import time:"):
            try:
                self_us = int(parts[0].split(":")[1])
                cumulative = int(parts[1])
            except ValueError:
                continue
            rows.append((parts[2].rstrip(), self_us, cumulative))
    top = sorted(rows, key=lambda r: -r[1])[:6]
    out["heaviest modules (self us, -X importtime)"] = [(n.strip(), s) for n, s, _ in top]
    fw = [c for n, _, c in rows if n.strip() == "flowweaver"]
    if fw:
        out["flowweaver cumulative per -X importtime (ms)"] = fw[0] / 1e3
    progress(f"  import time: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return out


# -- memory -------------------------------------------------------------------------------

MEMORY_EXECUTORS = ("SequentialExecutor", "ThreadedExecutor(4)", "ConcurrentExecutor")


def _probe(mode: str, executor: str, n: int) -> dict[str, Any]:
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memprobe", mode, executor, str(n)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@dataclass
class MemoryResult:
    n: int
    executor: str
    rss_added_per_task: float | None  # bytes; peak RSS (build + run) - peak RSS (build)
    traced_peak_per_task: float | None  # bytes; tracemalloc peak during execute / n
    traced_kept_per_task: float | None  # bytes; still allocated after execute / n
    error: str | None = None


def memory(
    n: int, rounds: int, progress: Progress = _quiet, trace: bool = True
) -> list[MemoryResult]:
    """Memory added per task on the layered DAG of ``n`` tasks, from fresh subprocesses.

    Peak RSS of a process that builds and runs the workflow, minus that of one that only
    builds it (medians over ``rounds`` each), divided by ``n``; and, with ``trace``,
    tracemalloc's view from one more run (the peak of Python allocations during
    ``execute``, and what stays).
    """
    began = time.perf_counter()
    build: list[float] = []
    runs: dict[str, list[float]] = {e: [] for e in MEMORY_EXECUTORS}
    errors: dict[str, str] = {}
    for rep in range(rounds):
        build.append(_probe("build", "-", n)["maxrss"])
        for ex in rotated(list(MEMORY_EXECUTORS), rep):
            if ex in errors:
                continue
            try:
                runs[ex].append(_probe("run", ex, n)["maxrss"])
            except Exception as exc:
                errors[ex] = f"{type(exc).__name__}: {exc}"[:200]
    base = statistics.median(build)
    results = []
    for ex in MEMORY_EXECUTORS:
        if ex in errors:
            results.append(MemoryResult(n, ex, None, None, None, errors[ex]))
            continue
        added = (statistics.median(runs[ex]) - base) / n
        peak = kept = None
        if trace:
            try:
                traced = _probe("trace", ex, n)
                peak, kept = traced["traced_peak"] / n, traced["traced_kept"] / n
            except Exception:
                pass  # shown as "-"; the RSS figure above is the one the target reads
        results.append(MemoryResult(n, ex, added, peak, kept))
    progress(f"  memory: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results


@dataclass
class FormTimes:
    """One executor's times in a section whose forms take turns (resources, context):
    form -> seconds per repetition; ``plain`` is the form the others are priced against."""

    n: int
    executor: str
    times: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    def us_per_task(self, form: str) -> float | None:
        t = self.times.get(form)
        return statistics.median(t) / self.n * 1e6 if t else None

    def extra_us(self, form: str) -> float | None:
        """What the form costs per task beyond ``plain``."""
        a, b = self.us_per_task(form), self.us_per_task("plain")
        return None if a is None or b is None else a - b


# -- numbers as the reports show them ---------------------------------------------------


def us(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def x(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:,.1f}x" if ratio < 100 else f"{ratio:,.0f}x"
