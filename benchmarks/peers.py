"""Peer libraries in one process: FlowWeaver, Hamilton, pipefunc and Dagster on the same DAGs.

Only in the optional ``bench_peers`` session (``python benchmarks/run.py --only peers``). No
peer is a dependency of FlowWeaver or of the main suite: each is imported here only when it
is installed, and a peer that is not installed is reported as such while the rest runs.

Every system runs the same graph, made of the same functions: for each workload one Python
module is written to a temporary folder and imported, holding one function per task whose
parameters name its upstream tasks (``def t5(t3: object, t4: object) -> object``) and whose
body returns ``None``. Hamilton and Dagster read a task's inputs from those parameter names,
pipefunc too (each function wrapped in a ``PipeFunc`` whose ``output_name`` is its name),
and FlowWeaver injects upstream results by the same names. A module on disk, not functions
made by ``exec``, because Hamilton's cache hashes each function's source.

Each peer is used in its fastest documented in-process mode, and in a mode that writes
results to disk where it has one, to set against ``SequentialExecutor`` with a
``SQLiteStateStore``:

- Hamilton: ``driver.Builder().with_modules(module).build()`` then ``execute(leaves)``,
  the default single-threaded in-memory executor; persisting: ``.with_cache(path)`` (a
  SQLite metadata store and a file store of results).
- pipefunc: ``Pipeline.map(inputs={}, storage="dict", parallel=False)``, the mode pipefunc's
  own overhead benchmark uses (sequential, results in memory); persisting: ``map`` with a
  ``run_folder`` (its default ``file_array`` storage, one file per output).
  ``Pipeline.run`` is slower and fails on the 1,000-task chain (RecursionError).
- Dagster: a job of ops (``GraphDefinition(...).to_job()``) run with
  ``execute_in_process``: the in-process executor, the in-memory IO manager and an
  ephemeral instance; persisting: the same with ``FilesystemIOManager`` (Dagster's default
  IO manager outside ``execute_in_process``, one pickle per op output). Dagster's console
  logger is set to ERROR through the run config (it logs every event at DEBUG otherwise).

What is timed is the run; building the graph object (a ``Workflow``, a Hamilton driver, a
pipefunc ``Pipeline``, a Dagster job) is timed apart and shown in its own column, as the main
suite keeps it off the clock. Modes take turns (the order rotates on each repetition),
``gc.collect()`` runs before each timed run, and each cell is the median of its runs.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from . import workloads
from .measure import Progress, _quiet, rotated, us, x
from .workloads import Dag

PEERS_N = 1_000
BASELINE = "FlowWeaver SequentialExecutor, no store"
# The layered DAG is cheap next to the two the issue names, and it is the main suite's
# reference shape, so it runs too.
WORKLOADS = ("wide", "chain", "layered")
# Most modes take milliseconds per 1,000-task run, so every cell gets many runs (the
# baseline's median sets every ratio); the slow ones get fewer, which keeps the session
# within its ten minutes: Dagster takes seconds per run, Hamilton's cache about one.
SLOW_REPEATS = 3
CACHE_REPEATS = 5


# -- the shared module of task functions ----------------------------------------------------

_modules = itertools.count()


def task_module(dag: Dag, folder: Path) -> ModuleType:
    """Write and import a module with one function per task of ``dag`` (see above)."""
    lines = []
    for name, ups in zip(dag.names, dag.deps, strict=True):
        params = ", ".join(f"{dag.names[j]}: object" for j in ups)
        lines.append(f"def {name}({params}) -> object:\n    return None\n")
    name = f"peers_{dag.workload}_{len(dag)}_{next(_modules)}"
    path = folder / f"{name}.py"
    path.write_text("\n\n".join(lines), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Hamilton and Dagster look functions' modules up by name
    spec.loader.exec_module(module)
    return module


def leaves(dag: Dag) -> list[str]:
    """The tasks nothing depends on: what a pull-based system is asked for."""
    used = {j for ups in dag.deps for j in ups}
    return [name for i, name in enumerate(dag.names) if i not in used]


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="fw-bench-peers-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the modes ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    """What runs a graph object once, and how long building that object took."""

    run: Callable[[], None]
    build_seconds: float


@dataclass
class Mode:
    """One system in one mode: ``prepare(dag, module, folder)`` builds (not timed) and
    returns what runs it once (timed). ``folder`` is fresh per run, for what persists."""

    name: str
    system: str
    persists: str
    prepare: Callable[[Dag, ModuleType, Path], Prepared]
    max_repeats: int | None = None
    build_once: bool = False  # build one graph object per workload and run it each time


def _flowweaver_modes() -> list[Mode]:
    import flowweaver
    from flowweaver import SQLiteStateStore, Task, Workflow, WorkflowStatus

    def make(
        store: bool, executor: Callable[..., Any]
    ) -> Callable[[Dag, ModuleType, Path], Prepared]:
        def prepare(dag: Dag, module: ModuleType, folder: Path) -> Prepared:
            start = time.perf_counter()
            wf = Workflow(f"peers-{dag.workload}")
            names = dag.names
            for name, ups in zip(names, dag.deps, strict=True):
                wf.add_task(Task(name, getattr(module, name)), depends_on=[names[j] for j in ups])
            built = time.perf_counter() - start
            # The store object is made off the clock, as in the main suite's store section.
            state_store = SQLiteStateStore(str(folder / "state.db")) if store else None
            ex = executor(state_store=state_store)

            def run() -> None:
                try:
                    ex.execute(wf)
                finally:
                    close = getattr(state_store, "close", None)
                    if callable(close):
                        close()
                if wf.status is not WorkflowStatus.COMPLETED:
                    raise RuntimeError(f"workflow ended {wf.status}")

            return Prepared(run, built)

        return prepare

    return [
        Mode(BASELINE, "FlowWeaver", "nothing", make(False, flowweaver.SequentialExecutor)),
        Mode(
            "FlowWeaver ThreadedExecutor(4), no store",
            "FlowWeaver",
            "nothing",
            make(False, lambda **kw: flowweaver.ThreadedExecutor(4, **kw)),
        ),
        Mode(
            "FlowWeaver SequentialExecutor, SQLiteStateStore",
            "FlowWeaver",
            "every task's record and result in one SQLite file",
            make(True, flowweaver.SequentialExecutor),
        ),
    ]


def _hamilton_modes() -> list[Mode]:
    from hamilton import driver

    def make(cached: bool) -> Callable[[Dag, ModuleType, Path], Prepared]:
        def prepare(dag: Dag, module: ModuleType, folder: Path) -> Prepared:
            start = time.perf_counter()
            builder = driver.Builder().with_modules(module)
            if cached:
                builder = builder.with_cache(path=str(folder / "hamilton_cache"))
            dr = builder.build()
            built = time.perf_counter() - start
            wanted = leaves(dag)

            def run() -> None:
                out = dr.execute(wanted)
                if len(out) != len(wanted):
                    raise RuntimeError(f"Hamilton returned {len(out)} of {len(wanted)} outputs")

            return Prepared(run, built)

        return prepare

    return [
        Mode("Hamilton, execute", "Hamilton", "nothing", make(False)),
        Mode(
            "Hamilton, execute with .with_cache()",
            "Hamilton",
            "metadata of every node in SQLite, results in files named by their hash "
            "(here one file: every task returns None)",
            make(True),
            max_repeats=CACHE_REPEATS,
        ),
    ]


def _pipefunc_modes() -> list[Mode]:
    from pipefunc import PipeFunc, Pipeline

    pipelines: dict[int, tuple[Any, float]] = {}

    def make(to_disk: bool) -> Callable[[Dag, ModuleType, Path], Prepared]:
        def prepare(dag: Dag, module: ModuleType, folder: Path) -> Prepared:
            # Pipeline() validates the whole graph on each function added, so building one
            # is quadratic (tens of seconds at 1,000 functions): one per workload, shared
            # by both modes and reused by every run, which errs in pipefunc's favour.
            key = id(module)
            if key not in pipelines:
                start = time.perf_counter()
                built = Pipeline(
                    [PipeFunc(getattr(module, name), output_name=name) for name in dag.names]
                )
                pipelines[key] = (built, time.perf_counter() - start)
            pipeline, seconds = pipelines[key]

            def run() -> None:
                if to_disk:
                    out = pipeline.map(inputs={}, run_folder=str(folder / "run"), parallel=False)
                else:
                    out = pipeline.map(inputs={}, storage="dict", parallel=False)
                if len(out) != len(dag):
                    raise RuntimeError(f"pipefunc returned {len(out)} of {len(dag)} outputs")

            return Prepared(run, seconds)

        return prepare

    return [
        Mode(
            'pipefunc, map(storage="dict", parallel=False)',
            "pipefunc",
            "nothing",
            make(False),
            build_once=True,
        ),
        Mode(
            "pipefunc, map(run_folder=..., parallel=False)",
            "pipefunc",
            "every output in its own file (file_array storage)",
            make(True),
            build_once=True,
        ),
    ]


def _dagster_modes() -> list[Mode]:
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "yes")  # no network here
    import dagster as dg

    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

    def make(to_disk: bool) -> Callable[[Dag, ModuleType, Path], Prepared]:
        def prepare(dag: Dag, module: ModuleType, folder: Path) -> Prepared:
            start = time.perf_counter()
            names = dag.names
            ops = [dg.op(name=name)(getattr(module, name)) for name in names]
            deps = {
                name: {names[j]: dg.DependencyDefinition(names[j], "result") for j in ups}
                for name, ups in zip(names, dag.deps, strict=True)
            }
            job = dg.GraphDefinition(
                name=f"peers_{dag.workload}", node_defs=ops, dependencies=deps
            ).to_job()
            built = time.perf_counter() - start
            resources = (
                {"io_manager": dg.FilesystemIOManager(base_dir=str(folder / "dagster"))}
                if to_disk
                else None
            )

            def run() -> None:
                result = job.execute_in_process(run_config=quiet, resources=resources)
                steps = sum(1 for e in result.all_events if e.is_step_success)
                if not result.success or steps != len(dag):
                    raise RuntimeError(f"Dagster ran {steps} of {len(dag)} steps")

            return Prepared(run, built)

        return prepare

    return [
        Mode(
            "Dagster, job execute_in_process",
            "Dagster",
            "nothing (in-memory IO manager, ephemeral instance)",
            make(False),
            max_repeats=SLOW_REPEATS,
        ),
        Mode(
            "Dagster, job execute_in_process with FilesystemIOManager",
            "Dagster",
            "every op's output pickled to its own file (run records in memory)",
            make(True),
            max_repeats=SLOW_REPEATS,
        ),
    ]


# system -> (module to import, distributions whose versions to show, how to make its modes)
PEERS: dict[str, tuple[str, tuple[str, ...], Callable[[], list[Mode]]]] = {
    "Hamilton": ("hamilton", ("apache-hamilton", "sf-hamilton"), _hamilton_modes),
    "pipefunc": ("pipefunc", ("pipefunc",), _pipefunc_modes),
    "Dagster": ("dagster", ("dagster",), _dagster_modes),
}
# How each system is called, for the report (the module docstring says why).
HOW = {
    "FlowWeaver": (
        "a fresh `Workflow` per run (`add_task` per task), then `executor.execute(workflow)`; "
        "the store object is made before the clock starts, in a fresh folder per run."
    ),
    "Hamilton": (
        "`driver.Builder().with_modules(module).build()` per run, then "
        "`driver.execute(leaves)` (the default executor: one thread, results in memory); "
        "`.with_cache(path)` on the builder, in a fresh folder per run, for its cache."
    ),
    "pipefunc": (
        "`Pipeline([PipeFunc(f, output_name=name), ...])`, then `pipeline.map(inputs={}, "
        'storage="dict", parallel=False)`, the mode pipefunc\'s own overhead benchmark uses; '
        "`run_folder=` a fresh folder per run, instead of `storage=`, to write its outputs."
    ),
    "Dagster": (
        "a job of ops (`GraphDefinition(...).to_job()`) per run, then "
        "`job.execute_in_process(run_config=...)` with the console logger at ERROR (at DEBUG "
        'it logs every event); the persisting mode adds `resources={"io_manager": '
        "FilesystemIOManager(base_dir=...)}` in a fresh folder per run."
    ),
}
LEFT_OUT = (
    "Apache Airflow is not measured: its in-process mode, `dag.test()`, needs the DAG in a "
    "file of a DAG bundle and a metadata database made by `airflow db migrate`, and writes "
    "every task instance to that database; in a trial here it cost more per task than "
    "Dagster, and more per task on a bigger DAG, so a 1,000-task run would take minutes "
    "(benchmarks/README.md)."
)


def _version(distributions: tuple[str, ...]) -> str | None:
    for dist in distributions:
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None


# -- measuring -------------------------------------------------------------------------------


@dataclass
class PeerCell:
    """The runs of one mode on one workload."""

    mode: str
    workload: str
    tasks: int
    times: list[float] = field(default_factory=list)
    builds: list[float] = field(default_factory=list)
    error: str | None = None
    deep_stack: int | None = None  # the recursion limit it needed, when the default failed
    default_limit: int = 0  # the recursion limit it failed at

    def us_per_task(self) -> float | None:
        return statistics.median(self.times) / self.tasks * 1e6 if self.times else None

    def build_us_per_task(self) -> float | None:
        return statistics.median(self.builds) / self.tasks * 1e6 if self.builds else None


@dataclass
class PeersResult:
    n: int
    rounds: int
    modes: list[Mode] = field(default_factory=list)
    cells: dict[tuple[str, str], PeerCell] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # system -> "dist version"
    missing: dict[str, str] = field(default_factory=dict)  # system -> why not measured
    seconds: float = 0.0

    def ratio(self, mode: str, workload: str) -> float | None:
        mine = self.cells[(mode, workload)].us_per_task()
        base = self.cells[(BASELINE, workload)].us_per_task()
        return None if mine is None or not base else mine / base


@contextlib.contextmanager
def recursion_limit(limit: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _one_run(mode: Mode, prepared: Prepared, cell: PeerCell, n: int) -> float:
    """Time one run; a RecursionError at Python's default limit is noted and the run (and
    every later one of the cell) is made with the limit raised, so the cell still has a
    figure and says what it took."""
    if cell.deep_stack is None:
        try:
            start = time.perf_counter()
            prepared.run()
            return time.perf_counter() - start
        except RecursionError:
            cell.default_limit = sys.getrecursionlimit()
            cell.deep_stack = 30 * n + 1_000
    with recursion_limit(cell.deep_stack):
        start = time.perf_counter()
        prepared.run()
        return time.perf_counter() - start


def measure(rounds: int, n: int = PEERS_N, progress: Progress = _quiet) -> PeersResult:
    """Every installed peer's modes and FlowWeaver's on each workload at ``n`` tasks."""
    res = PeersResult(n=n, rounds=rounds)
    res.versions["FlowWeaver"] = _version(("flowweaver",)) or "flowweaver (source tree)"
    res.modes = _flowweaver_modes()
    for system, (import_name, dists, make) in PEERS.items():
        if importlib.util.find_spec(import_name) is None:
            res.missing[system] = "not installed (run `nox -s bench_peers`)"
            continue
        try:
            res.modes += make()
        except Exception as exc:  # a peer that cannot even import here: say so, go on
            res.missing[system] = f"could not be used: {type(exc).__name__}: {exc}"[:300]
            continue
        res.versions[system] = _version(dists) or "version unknown"

    began = time.perf_counter()
    with scratch() as root:
        warm = workloads.layered(20)  # imports and first-call caches, off every clock
        warm_module = task_module(warm, root)
        for mode in res.modes:
            with scratch() as folder:
                try:
                    mode.prepare(warm, warm_module, folder).run()
                except Exception:
                    pass  # the real runs report it
        for wl in WORKLOADS:
            dag = workloads.make(wl, n)
            module = task_module(dag, root)
            for mode in res.modes:
                res.cells[(mode.name, wl)] = PeerCell(mode.name, wl, len(dag))
            wl_began = time.perf_counter()
            for rep in range(rounds):
                for mode in rotated(res.modes, rep):
                    cell = res.cells[(mode.name, wl)]
                    if cell.error is not None:
                        continue
                    if mode.max_repeats is not None and rep >= mode.max_repeats:
                        continue
                    with scratch() as folder:
                        try:
                            prepared = mode.prepare(dag, module, folder)
                            cell.builds.append(prepared.build_seconds)
                            gc.collect()
                            cell.times.append(_one_run(mode, prepared, cell, len(dag)))
                        except Exception as exc:  # recorded in the table; the rest goes on
                            cell.error = f"{type(exc).__name__}: {exc}"[:200]
                            progress(f"  {mode.name} failed on {wl}: {cell.error}")
            progress(
                f"  peers: {wl} ({len(dag):,} tasks), {len(res.modes)} modes in "
                f"{time.perf_counter() - wl_began:.1f} s"
            )
    res.seconds = time.perf_counter() - began
    return res


# -- the report ---------------------------------------------------------------------------------

HEADING = "## Peers in one process: microseconds per task"


def table(res: PeersResult | None) -> list[str]:
    if res is None:
        return []
    fewer: dict[str, int] = {}
    for mode in res.modes:
        if mode.max_repeats is not None and mode.max_repeats < res.rounds:
            cap = mode.max_repeats
            same = [m for m in res.modes if m.system == mode.system]
            whole = all(m.max_repeats == cap for m in same)
            fewer[f"every {mode.system} mode" if whole else f"`{mode.name}`"] = cap
    capped = "; ".join(f"{k} for {what}" for what, k in fewer.items())
    runs = f"{res.rounds} runs" + (f" ({capped})" if capped else "")
    lines = [
        HEADING,
        "",
        f"No-op tasks at {res.n:,} tasks per workload (`wide` has one more: the task that "
        "takes all the others), every system running the same module of functions in one "
        f"process, taking turns. Each figure is the median of {runs}; the ratio is to "
        "FlowWeaver's "
        "`SequentialExecutor` without a store on the same workload. Building the graph "
        "object (a `Workflow`, a Hamilton driver, a pipefunc `Pipeline`, a Dagster job) is "
        "not in the run's figure; the last column shows it for the layered DAG. "
        "Versions: " + ", ".join(f"{s}: {v}" for s, v in res.versions.items()) + ".",
        "",
        "| system and mode | persists | "
        + " | ".join(f"{wl} us/task | {wl} ratio" for wl in WORKLOADS)
        + " | build, layered, us/task |",
        "|---|---|" + "---:|---:|" * len(WORKLOADS) + "---:|",
    ]
    notes: list[str] = []
    for mode in res.modes:
        cells = []
        for wl in WORKLOADS:
            cell = res.cells.get((mode.name, wl))
            if cell is None or cell.error is not None:
                cells += ["failed" if cell is not None else "-", "-"]
                if cell is not None:
                    notes.append(f"{mode.name} failed on `{wl}`: {cell.error}")
                continue
            mark = ""
            if cell.deep_stack is not None:
                mark = " (r)"
                notes.append(
                    f"(r) {mode.name} on `{wl}`: RecursionError at Python's default "
                    f"recursion limit ({cell.default_limit:,}); measured with "
                    f"`sys.setrecursionlimit({cell.deep_stack:,})`."
                )
            cells += [us(cell.us_per_task()) + mark, x(res.ratio(mode.name, wl))]
        layered = res.cells.get((mode.name, "layered"))
        build = us(layered.build_us_per_task()) if layered else "-"
        if mode.build_once and build != "-":
            build += " (once)"
        lines.append(f"| {mode.name} | {mode.persists} | " + " | ".join(cells) + f" | {build} |")
    lines.append("")
    if any(m.build_once for m in res.modes):
        notes.append(
            "(once) pipefunc's `Pipeline()` validates the whole graph on each function "
            "added, so building is quadratic; one `Pipeline` per workload is built and "
            "every run of both pipefunc modes reuses it, which errs in pipefunc's favour "
            "(its graph analysis is cached after the first run)."
        )
    measured = {m.system for m in res.modes}
    notes = [f"{system}: {HOW[system]}" for system in HOW if system in measured] + notes
    notes += [f"{system}: {why}" for system, why in res.missing.items()]
    notes.append(LEFT_OUT)
    lines += [f"- {note}" for note in notes]
    lines.append("")
    return lines
