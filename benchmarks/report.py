"""Turning measurements into ``RESULTS.md``: the tables, the targets of issue 4, the setup.

Everything here is formatting; the numbers come from :mod:`benchmarks.measure`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from . import systems as S
from . import targets15
from .building import Building
from .building import table as building_table
from .context import FORMS as CONTEXT_FORMS
from .context import ContextResult
from .durability import DurabilityResult, durability_table
from .handoff import FLOOR as HANDOFF_FLOOR
from .handoff import FORMS as HANDOFF_FORMS
from .handoff import HandoffResult
from .inloop import InLoopResult
from .inloop import table as inloop_table
from .inputs import InputsResult
from .maps import MapResult
from .measure import ROOT, Cell, FormTimes, MemoryResult, StoreResult, us, x
from .peers import PeersResult
from .peers import table as peers_table
from .processes import SYSTEMS as PROCESS_SYSTEMS
from .progress import ProgressResult
from .progress import table as progress_table
from .resources import FORMS as RESOURCE_FORMS
from .resources import ResourcesResult
from .watching import FORMS as WATCHING_FORMS
from .watching import WatchingResult

PACKAGES = ("flowweaver", "anyio", "trio", "sniffio", "dask", "prefect")
TARGET_N = 10_000
BIG_N = 100_000


@dataclass
class Results:
    """All a run measured; a section that did not run is left empty."""

    command: str
    started: datetime
    seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)
    repeats: dict[int, int] = field(default_factory=dict)
    workloads: list[str] = field(default_factory=list)
    systems: list[S.System] = field(default_factory=list)
    cells: dict[tuple[str, str, int], Cell] = field(default_factory=dict)
    stores: list[StoreResult] = field(default_factory=list)
    durability: DurabilityResult | None = None
    maps: list[MapResult] = field(default_factory=list)
    inputs: list[InputsResult] = field(default_factory=list)
    resources: list[ResourcesResult] = field(default_factory=list)
    processes: dict[str, Any] = field(default_factory=dict)
    context: list[ContextResult] = field(default_factory=list)
    record_us: float = 0.0
    handoff: list[HandoffResult] = field(default_factory=list)
    watching: list[WatchingResult] = field(default_factory=list)
    progress: list[ProgressResult] = field(default_factory=list)
    memory: list[MemoryResult] = field(default_factory=list)
    building: Building | None = None
    fixed: dict[str, float] = field(default_factory=dict)
    fixed_rounds: int = 0
    inloop: InLoopResult | None = None
    imports: dict[str, Any] = field(default_factory=dict)
    prefect: dict[str, Any] = field(default_factory=dict)
    peers: PeersResult | None = None
    load: list[tuple[float, float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- numbers ------------------------------------------------------------------------------


def per_task(cell: Cell | None) -> float | None:
    return None if cell is None else cell.us_per_task


def floor_us(res: Results, floor: str | None, workload: str, n: int) -> float | None:
    """The matching floor's microseconds per task (the faster async form, for async)."""
    if floor is None:
        return None
    if floor == S.ASYNC_FLOOR:
        values = [
            per_task(res.cells.get((f, workload, n))) for f in (S.ASYNC_TASKS, S.ASYNC_WORKERS)
        ]
        present = [v for v in values if v is not None]
        return min(present) if present else None
    return per_task(res.cells.get((floor, workload, n)))


def ratio_to_floor(res: Results, system: str, workload: str, n: int) -> float | None:
    s = next((s for s in res.systems if s.name == system), None)
    if s is None:
        return None
    mine = per_task(res.cells.get((system, workload, n)))
    base = floor_us(res, s.floor, workload, n)
    return None if mine is None or not base else mine / base


def scaling(res: Results, system: str, workload: str) -> float | None:
    big = per_task(res.cells.get((system, workload, BIG_N)))
    ref = per_task(res.cells.get((system, workload, TARGET_N)))
    return None if big is None or not ref else big / ref


# -- the setup ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "flowweaver"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    return f"{head}, flowweaver/ with uncommitted changes" if dirty else head


def setup_lines(res: Results) -> list[str]:
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    load = ", ".join(f"{a:.2f}" for a, _, _ in res.load) if res.load else "-"
    packages = ", ".join(f"{p} {version(p)}" for p in PACKAGES)
    minutes, seconds = divmod(int(res.seconds), 60)
    reps = ", ".join(f"{r} at {n:,} tasks" for n, r in sorted(res.repeats.items()))
    return [
        f"- Command: `{res.command}`",
        f"- Date: {res.started:%Y-%m-%d %H:%M} UTC; the run took {minutes} min {seconds} s",
        f"- Machine: {cpu_model()}, {cores} cores ({usable} usable), "
        f"{platform.system()} {platform.release()} {platform.machine()}; "
        f"1-minute load average at start and end: {load}",
        f"- Python: {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        f"- Packages: {packages}; source tree at {git_state()}",
        f"- Repetitions (median shown): {reps or '-'}",
    ]


# -- the tables -------------------------------------------------------------------------------


def matrix_tables(res: Results) -> list[str]:
    lines: list[str] = []
    if not res.cells:
        return lines
    lines += [
        "## Executors, floors and peers: microseconds per task (ratio to the matching floor)",
        "",
        "Median time of one `execute` (or of the floor's whole run) divided by the number of "
        "tasks. Building the workflow (or the floor's graph, or dask's task graph) is done "
        "before the clock starts and is not timed; every repetition builds a fresh one, so "
        "each timed `execute` is a first run (graph checks included). Blocking forms are "
        "timed around `execute` (starting the event loop included); awaited forms and the "
        "async floors inside a running loop. Sync no-op tasks for Sequential and Threaded, "
        "`async def` ones for AsyncExecutor and ConcurrentExecutor. The async floor is the "
        "faster of its two forms in each cell. `wide` has N+1 tasks.",
        "",
    ]
    head = "| system | floor | " + " | ".join(f"N={n:,}" for n in res.sizes) + " |"
    rule = "|---|---|" + "---:|" * len(res.sizes)
    floors = {
        S.SEQ_FLOOR: "loop",
        S.THR_FLOOR: "pool",
        S.ASYNC_FLOOR: "asyncio",
    }
    for wl in res.workloads:
        lines += [f"### {wl}", "", head, rule]
        for s in res.systems:
            cells = []
            for n in res.sizes:
                cell = res.cells.get((s.name, wl, n))
                if cell is None:
                    cells.append("-")
                elif cell.error:
                    cells.append("failed")
                elif cell.skipped:
                    cells.append("skipped")
                else:
                    r = ratio_to_floor(res, s.name, wl, n)
                    cells.append(us(cell.us_per_task) + (f" ({x(r)})" if r is not None else ""))
            floor = floors.get(s.floor or "", "-")
            lines.append(f"| {s.name} | {floor} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Floors: loop = " + S.SEQ_FLOOR[7:] + "; pool = " + S.THR_FLOOR[7:] + "; asyncio = "
        "the faster of the two asyncio ready-queue forms. dask is compared with the pool floor."
    )
    lines.append("")
    if BIG_N in res.sizes and TARGET_N in res.sizes:
        lines += [
            f"### Scaling: microseconds per task at {BIG_N:,} / at {TARGET_N:,}",
            "",
            "| system | " + " | ".join(res.workloads) + " |",
            "|---|" + "---:|" * len(res.workloads),
        ]
        for s in res.systems:
            vals = [x(scaling(res, s.name, wl)) for wl in res.workloads]
            if any(v != "-" for v in vals):
                lines.append(f"| {s.name} | " + " | ".join(vals) + " |")
        lines.append("")
    problems = [c for c in res.cells.values() if c.error or c.skipped]
    if problems:
        seen: set[tuple[str, str]] = set()
        lines += ["Skipped and failed cells:", ""]
        for c in problems:
            why = c.error or c.skipped or ""
            key = (c.system, why)
            if c.skipped and key in seen:
                continue
            seen.add(key)
            where = f"{c.workload} N={c.n:,}" if c.error else "every workload"
            lines.append(f"- {c.system} ({where}): {why}")
        lines.append("")
    return lines


def store_table(res: Results) -> list[str]:
    if not res.stores:
        return []
    n = res.stores[0].n
    lines = [
        f"## State stores: cost per task against no store ({n:,}-task layered DAG)",
        "",
        "Each repetition writes to a fresh temporary folder (nothing to restore). Making the "
        "store object and the workflow is not timed; `execute` is (opening, loading, writing "
        "and closing the store included).",
        "",
        "| executor | no store | SQLiteStateStore | JSONStateStore |",
        "|---|---:|---:|---:|",
    ]
    for r in res.stores:
        row = [us(r.us_per_task("none"))]
        for name in ("SQLiteStateStore", "JSONStateStore"):
            if name in r.errors:
                row.append(
                    "not available" if r.errors[name].startswith("not available") else "failed"
                )
            else:
                row.append(f"{us(r.us_per_task(name))} ({x(r.ratio(name))})")
        lines.append(f"| {r.executor} | " + " | ".join(row) + " |")
    lines.append("")
    reasons = {e for r in res.stores for e in r.errors.values()}
    lines += [f"- {e}" for e in sorted(reasons)]
    if reasons:
        lines.append("")
    return lines


def map_table(res: Results) -> list[str]:
    if not res.maps:
        return []
    n = res.maps[0].n
    lines = [
        f"## Maps: cost per item of a map of {n:,} against per task of {n:,} static tasks",
        "",
        f"A source task, a task mapped over its {n:,} numbers, one task taking the list, "
        f"against a source task, {n:,} no-op tasks depending on it and one depending on all "
        "of them; same executor, same process, taking turns. Issue 11's bar: a ratio of at "
        "most 1.",
        "",
        "| executor | static, per task | map, per item | map / static |",
        "|---|---:|---:|---:|",
    ]
    for r in res.maps:
        if r.error:
            lines.append(f"| {r.executor} | failed: {r.error} | - | - |")
            continue
        lines.append(
            f"| {r.executor} | {us(r.us_per_task('static'))} us | {us(r.us_per_task('map'))} us "
            f"| {x(r.ratio())} |"
        )
    lines.append("")
    return lines


def _extra_rows(results: Sequence[FormTimes], forms: Sequence[str]) -> list[str]:
    """A row per executor: *plain*, then each form with what it adds to *plain*."""
    rows = []
    for r in results:
        if r.error:
            rows.append(f"| {r.executor} | failed: {r.error} |" + " |" * len(forms))
            continue
        cells = [us(r.us_per_task("plain"))]
        for form in forms:
            extra = r.extra_us(form)
            sign = "+" if extra is not None and extra >= 0 else ""
            cells.append(f"{us(r.us_per_task(form))} ({sign}{us(extra)})")
        rows.append(f"| {r.executor} | " + " | ".join(cells) + " |")
    return rows


def resources_table(res: Results) -> list[str]:
    if not res.resources:
        return []
    n = res.resources[0].n
    forms = RESOURCE_FORMS[1:]
    lines = [
        f"## Resource control: cost per task of tag limits, rate limits and retries ({n:,} tasks)",
        "",
        "The layered DAG of no-op tasks, forms taking turns in one process. *limit, never "
        "full*: every task tagged, `limits={'db': N}` (the gate's bookkeeping, no wait); "
        "*limit 2*: `limits={'db': 2}` (under `ThreadedExecutor(4)` most ready tasks wait "
        "for the tag); *rate, never empty*: a rate no run reaches (a clock read and a token "
        "per start); *retried once*: every task fails once and is retried at once. Each "
        "cell: microseconds per task, and in brackets what the form adds to *plain*.",
        "",
        "| executor | plain | " + " | ".join(forms) + " |",
        "|---|" + "---:|" * (len(forms) + 1),
    ]
    lines += _extra_rows(res.resources, forms)
    lines.append("")
    return lines


def handoff_table(res: Results) -> list[str]:
    if not res.handoff:
        return []
    forms = HANDOFF_FORMS[1:]
    lines = [
        f"## Thread hand-off: sync no-op tasks on 4 worker threads against {HANDOFF_FLOOR}",
        "",
        "Every step of a chain is a round trip, worker thread to loop and back; the "
        "layered DAG has a hundred tasks ready at once. Forms taking turns: the floor, the "
        "blocking `ThreadedExecutor(4)`, `flowweaver.aio.ThreadedExecutor(4)` awaited "
        "under asyncio and trio. Each cell: microseconds per task, and in brackets the "
        "ratio to the floor (issue 15: the chain must reach 1.3x, aim 1.1x).",
        "",
        "| workload | floor | " + " | ".join(forms) + " |",
        "|---|" + "---:|" * (len(forms) + 1),
    ]
    for r in res.handoff:
        label = f"{r.executor}, {r.n:,} tasks"
        if r.error:
            lines.append(f"| {label} | failed: {r.error} |" + " |" * len(forms))
            continue
        cells = [f"{us(r.us_per_task(HANDOFF_FLOOR))} us"]
        cells += [f"{us(r.us_per_task(f))} us ({x(r.ratio(f))})" for f in forms]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def context_table(res: Results) -> list[str]:
    if not res.context:
        return []
    n = res.context[0].n
    forms = CONTEXT_FORMS[1:]
    lines = [
        f"## Run context: cost per task of `flowweaver.current()` and of a log record "
        f"({n:,} tasks)",
        "",
        "The layered DAG, forms taking turns: every task calls `flowweaver.current()` "
        "once, or logs one record (to a handler that drops it; the run's record factory "
        "adds the `fw_*` attributes), or the run has a `TracingObserver` (an SDK tracer "
        "provider without exporter: spans made and ended, none sent), or the run has "
        "`capture_logs=True`; or every task logs one record and prints one line (to a sink), "
        "without and with `capture_logs`. In brackets: what the form adds to *plain*.",
        "",
        "| executor | plain | " + " | ".join(forms) + " |",
        "|---|" + "---:|" * (len(forms) + 1),
    ]
    lines += _extra_rows(res.context, forms)
    lines += [
        "",
        f"The same record made outside any run: {us(res.record_us)} us.",
        "",
    ]
    return lines


def watching_table(res: Results) -> list[str]:
    if not res.watching:
        return []
    n = res.watching[0].n
    forms = WATCHING_FORMS[1:]
    lines = [
        f"## Watching a run: cost per task of an observer and of progress() ({n:,} tasks)",
        "",
        "The layered DAG, forms taking turns in one process. *no-op observer*: "
        "`observer=lambda e: None` (what the engine's events cost, whoever receives them); "
        "*progress(), pipe*: `flowweaver.progress()` writing occasional lines to a "
        "non-terminal console; *progress(), terminal*: the same console forced to be a "
        "terminal (rich's live display, redrawn by its own thread). Each cell: microseconds "
        "per task, and in brackets the ratio to *no observer*; the last column is "
        "progress() on a terminal against the no-op observer (what progress() itself adds).",
        "",
        "| tasks | executor | no observer | " + " | ".join(forms) + " | terminal / no-op |",
        "|---|---|" + "---:|" * (len(forms) + 2),
    ]
    for r in res.watching:
        if r.error:
            lines.append(f"| {r.task} | {r.executor} | failed: {r.error} |" + " |" * len(forms))
            continue
        cells = [us(r.us_per_task("no observer"))]
        cells += [f"{us(r.us_per_task(form))} ({x(r.ratio(form))})" for form in forms]
        cells.append(x(r.ratio("progress(), terminal", "no-op observer")))
        lines.append(f"| {r.task} | {r.executor} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def processes_table(res: Results) -> list[str]:
    if not res.processes:
        return []
    p = res.processes
    systems = PROCESS_SYSTEMS
    lines = [
        f"## Worker processes: cost per task against threads ({p['n']:,} tasks)",
        "",
        "No-op sync tasks under `ThreadedExecutor(2)`, `ProcessExecutor(2)` and "
        "`ThreadedExecutor(2)` with `isolation='process'` on every task, taking turns, "
        f"median of {p['rounds']}, around `execute`: starting the workers is included, "
        "as a run pays it. Microseconds per task, and in brackets against the threads.",
        "",
        "| workload | " + " | ".join(systems) + " |",
        "|---|" + "---:|" * len(systems),
    ]
    for workload in ("wide", "chain"):
        base = p["per_task"][workload, systems[0]]
        cells = [us(base)] + [
            f"{us(p['per_task'][workload, s])} ({x(p['per_task'][workload, s] / base)})"
            for s in systems[1:]
        ]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Starting one worker process (its first job less a job on a warm worker), median "
        f"of {p['starts']}: {p['start_ms']:.1f} ms.",
        "",
    ]
    return lines


def inputs_table(res: Results) -> list[str]:
    if not res.inputs:
        return []
    n = res.inputs[0].n
    lines = [
        f"## Input-aware records: cost per task of parameters and hashing ({n:,} tasks)",
        "",
        "`SequentialExecutor`, no-op tasks, taking turns in one process: without a store "
        "nothing is hashed, so a run parameter costs only passing it to each task (every "
        "task takes it here); with `SQLiteStateStore` each record carries the hash of its "
        "result and of its inputs (upstream hashes, and the parameter). *restore*: a second "
        "run on the same store, every task restored after its record is checked.",
        "",
        "| DAG | no store | + params | SQLite | + params | SQLite, restore | + params |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res.inputs:
        if r.error:
            lines.append(f"| {r.workload} | failed: {r.error} | | | | | |")
            continue
        cells = [
            us(r.us_per_task("none")),
            f"{us(r.us_per_task('none+params'))} ({x(r.ratio('none+params', 'none'))})",
            f"{us(r.us_per_task('sqlite'))} ({x(r.ratio('sqlite', 'none'))})",
            f"{us(r.us_per_task('sqlite+params'))} ({x(r.ratio('sqlite+params', 'sqlite'))})",
            us(r.us_per_task("sqlite restore")),
            f"{us(r.us_per_task('sqlite+params restore'))} "
            f"({x(r.ratio('sqlite+params restore', 'sqlite restore'))})",
        ]
        lines.append(f"| {r.workload} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Microseconds per task; in brackets, against the column on its left (SQLite: "
        "against no store).",
        "",
    ]
    return lines


def memory_table(res: Results) -> list[str]:
    if not res.memory:
        return []
    n = res.memory[0].n
    lines = [
        f"## Memory added per task ({n:,}-task layered DAG)",
        "",
        "Peak RSS of a fresh process that builds and runs the workflow, minus the peak RSS of "
        "one that only builds it, divided by the number of tasks (medians of the repetitions). "
        "tracemalloc (one more run each): the peak of Python allocations during `execute`, "
        "and what is still allocated after it (results, statuses, timings), per task.",
        "",
        "| executor | peak RSS added per task | tracemalloc peak per task | kept per task |",
        "|---|---:|---:|---:|",
    ]
    for m in res.memory:
        if m.error:
            lines.append(f"| {m.executor} | failed: {m.error} | - | - |")
            continue
        lines.append(
            f"| {m.executor} | {_bytes(m.rss_added_per_task)} | {_bytes(m.traced_peak_per_task)} "
            f"| {_bytes(m.traced_kept_per_task)} |"
        )
    lines.append("")
    return lines


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} B" if abs(value) < 1024 else f"{value / 1024:.2f} KiB"


def fixed_table(res: Results) -> list[str]:
    if not res.fixed:
        return []
    lines = [
        "## Fixed cost of one blocking `execute()` (1-task workflow)",
        "",
        f"Median of {res.fixed_rounds} calls each, a fresh workflow per call (not timed).",
        "",
        "| what | microseconds |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {us(v)} |" for k, v in res.fixed.items()]
    lines.append("")
    return lines


def import_table(res: Results) -> list[str]:
    if not res.imports:
        return []
    lines = [
        "## `import flowweaver`",
        "",
        "Fresh interpreters with bytecode caches, interleaved, medians; wall times minus "
        "`python -c pass`, CPU times counted inside the interpreter around the import "
        "(issue 15's target: flowweaver / anyio <= 3x, aim 2x).",
        "",
        "| what | value |",
        "|---|---:|",
    ]
    for k, v in res.imports.items():
        if isinstance(v, list):
            v = ", ".join(f"{name} {t / 1000:.1f} ms" for name, t in v)
        elif isinstance(v, float):
            v = f"{v:.2f}x" if " / " in k else f"{v:.1f}"
        lines.append(f"| {k} | {v} |")
    lines.append("")
    return lines


def prefect_table(res: Results) -> list[str]:
    if not res.prefect:
        return []
    p = res.prefect
    lines = ["## Prefect 3 (optional session)", ""]
    if p.get("error"):
        lines += [f"Not measured: {p['error']}", ""]
        return lines
    lines += [
        p.get("how", ""),
        "",
        "| workload | N | runs | Prefect us/task | ThreadedExecutor(4) us/task | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in p.get("rows", []):
        lines.append(
            f"| {row['workload']} | {row['n']:,} | {row.get('runs', '-')} | {us(row['prefect'])} "
            f"| {us(row['flowweaver'])} "
            f"| {x(row['prefect'] / row['flowweaver']) if row['flowweaver'] else '-'} |"
        )
    lines.append("")
    for failure in p.get("failures", []):
        lines.append(f"- Prefect failed: {failure}")
    if p.get("failures"):
        lines.append("")
    return lines


# -- the targets of issue 4 -----------------------------------------------------------------


@dataclass
class Target:
    what: str
    value: float | None
    shown: str
    must: float
    aim: float
    at_least: bool = False  # ">=" targets (dask is slower by at least ...)
    note: str = ""

    def verdict(self) -> str:
        if self.value is None:
            return "not measured"

        def ok(limit: float) -> bool:
            assert self.value is not None
            return self.value >= limit if self.at_least else self.value <= limit

        if ok(self.aim):
            return "met (aim met too)"
        if ok(self.must):
            return "met"
        return "**NOT MET**"


def targets(res: Results) -> list[Target]:
    out: list[Target] = []
    wl, n = "layered", TARGET_N

    def executor_rows(what: str, names: Sequence[str], must: float, aim: float) -> None:
        for name in names:
            r = ratio_to_floor(res, name, wl, n)
            note = ""
            if name.startswith("aio.SequentialExecutor"):
                note = "awaited form: sync tasks go to a worker thread by design"
            if r is not None and name in (
                "aio.AsyncExecutor [asyncio]",
                "aio.AsyncExecutor [trio]",
                "ConcurrentExecutor",
            ):
                ct = per_task(res.cells.get((S.ASYNC_TASKS, wl, n)))
                mine = per_task(res.cells.get((name, wl, n)))
                if ct and mine:
                    note = f"{x(mine / ct)} the create_task form"
            shown = (
                "-" if r is None else f"{x(r)} ({us(per_task(res.cells.get((name, wl, n))))} us)"
            )
            out.append(Target(f"{name} / {what}", r, shown, must, aim, note=note))

    executor_rows(
        "asyncio ready-queue floor",
        ["aio.AsyncExecutor [asyncio]", "aio.AsyncExecutor [trio]", "ConcurrentExecutor"],
        4,
        2,
    )
    executor_rows(
        "graphlib + ThreadPoolExecutor(4) floor",
        [
            "ThreadedExecutor(4)",
            "aio.ThreadedExecutor(4) [asyncio]",
            "aio.ThreadedExecutor(4) [trio]",
        ],
        3,
        1.5,
    )
    executor_rows(
        "plain loop floor",
        ["SequentialExecutor", "aio.SequentialExecutor [asyncio]", "aio.SequentialExecutor [trio]"],
        5,
        3,
    )
    for store, must, aim in (("SQLiteStateStore", 1.5, 1.2), ("JSONStateStore", 2, 1.3)):
        if not res.stores:
            out.append(Target(f"{store} / no store", None, "-", must, aim))
        for r in res.stores:
            ratio = None if store in r.errors else r.ratio(store)
            why = r.errors.get(store, "")
            shown = x(ratio) if ratio is not None else ("not available" if why else "-")
            out.append(
                Target(
                    f"{store} / no store, {r.executor} ({r.n:,} tasks)",
                    ratio,
                    shown,
                    must,
                    aim,
                    note="no such class in this tree yet" if "not available" in why else "",
                )
            )
    for m in res.maps:
        out.append(
            Target(
                f"map of {m.n:,} items / {m.n:,} static tasks, per item, {m.executor} (issue 11)",
                m.ratio(),
                x(m.ratio()),
                1,
                1,
            )
        )
    fw = [s.name for s in res.systems if s.group == "flowweaver"]
    scaled = [(name, scaling(res, name, wl)) for name in fw]
    what = f"{BIG_N:,} tasks: us per task / us per task at {TARGET_N:,}"
    for name, r in scaled:
        if not name.startswith("aio."):
            out.append(Target(f"{what}, {name}", r, x(r), 1.3, 1.1))
    awaited = [(r, name) for name, r in scaled if name.startswith("aio.") and r is not None]
    if awaited:
        r, name = max(awaited)
        out.append(
            Target(f"{what}, worst awaited form", r, x(r), 1.3, 1.1, note=f"{name}; all below")
        )
    if not fw:
        out.append(Target(what, None, "-", 1.3, 1.1))
    if res.memory:
        for m in res.memory:
            value = None if m.rss_added_per_task is None else m.rss_added_per_task / 1024
            out.append(
                Target(
                    f"memory added per task at {m.n:,} tasks, {m.executor}",
                    value,
                    _bytes(m.rss_added_per_task),
                    4,
                    2,
                )
            )
    else:
        out.append(Target("memory added per task at 100,000 tasks", None, "-", 4, 2))
    dask = per_task(res.cells.get((S.DASK, wl, n)))
    thr = per_task(res.cells.get(("ThreadedExecutor(4)", wl, n)))
    r = dask / thr if dask and thr else None
    out.append(
        Target(
            "dask.delayed (threads) / FlowWeaver ThreadedExecutor(4)",
            r,
            "-" if r is None else f"{x(r)} ({us(dask)} us vs {us(thr)} us)",
            5,
            20,
            at_least=True,
        )
    )
    return out


def target_table(res: Results) -> list[str]:
    rows = targets(res)
    if all(t.value is None for t in rows):
        return []  # a partial run (--only prefect, say) measured none of them
    lines = [
        "## The targets of issue 4",
        "",
        f"On the {TARGET_N:,}-task layered DAG unless the row says otherwise; ratios to the "
        "floor measured in the same run. Memory in KiB.",
        "",
        "| what | measured | must reach | aim for | verdict | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for t in rows:
        op = ">=" if t.at_least else "<="
        unit = " KiB" if t.what.startswith("memory") else "x"
        lines.append(
            f"| {t.what} | {t.shown} | {op} {t.must:g}{unit} | {op} {t.aim:g}{unit} "
            f"| {t.verdict()} | {t.note} |"
        )
    lines.append("")
    return lines


def render(res: Results) -> str:
    lines = [
        "# FlowWeaver benchmark results",
        "",
        "Written by `benchmarks/run.py`; see `benchmarks/README.md` for what each number means.",
        "",
        *setup_lines(res),
        "",
        *target_table(res),
        *targets15.table(res),
        *matrix_tables(res),
        *store_table(res),
        *durability_table(res.durability),
        *map_table(res),
        *inputs_table(res),
        *resources_table(res),
        *processes_table(res),
        *context_table(res),
        *handoff_table(res),
        *watching_table(res),
        *progress_table(res.progress),
        *memory_table(res),
        *building_table(res.building),
        *fixed_table(res),
        *inloop_table(res.inloop),
        *import_table(res),
        *prefect_table(res),
        *peers_table(res.peers),
    ]
    if res.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in res.notes], ""]
    return "\n".join(lines).rstrip() + "\n"


def now() -> datetime:
    return datetime.now(timezone.utc)
