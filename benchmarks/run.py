"""Run the benchmark suite: ``python benchmarks/run.py [--quick] [--only NAME]``.

Everything is measured in this one process (and a few short-lived subprocesses for memory
and import time), so the ratios to the floors hold on a noisy machine. The report is
printed and written to ``benchmarks/RESULTS.md`` (``RESULTS-quick.md`` with ``--quick``;
with ``--only`` nothing is written unless ``--output`` says where).

Sections: ``executors`` (every system on every workload and size), ``stores``, ``maps``
(a map of 10,000 items against 10,000 static tasks), ``inputs`` (run parameters and
input-aware records on 2,000-task DAGs, with and without a store), ``watching`` (what an
observer and ``flowweaver.progress()`` cost a 10,000-task run), ``progress`` (the
command's live display and plain lines on 10,000 and 100,000 tasks), ``memory``,
``building`` (``add_task`` per task, a second ``execute`` against the first, a million
tasks built and run in a process: seconds and peak memory),
``fixed`` (one blocking execute of a 1-task workflow), ``inloop`` (a blocking execute
where a loop runs, against one on a plain thread), ``import``, ``prefect``
(only when asked for, with ``--only prefect`` or ``--prefect``) and ``peers`` (FlowWeaver
against Hamilton, pipefunc and Dagster in this process; only with ``--only peers``).
``--only`` takes section names and/or parts of system names (``--only
ThreadedExecutor,dask``: those systems, their floors, the executors section only),
comma-separated.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    building,
    context,
    durability,
    handoff,
    inloop,
    inputs,
    maps,
    measure,
    processes,
    report,
    resources,
    watching,
    workloads,
)
from benchmarks import progress as progress_section
from benchmarks.systems import System, all_systems

HERE = Path(__file__).resolve().parent
SECTIONS = (
    "executors",
    "stores",
    "durability",
    "maps",
    "inputs",
    "resources",
    "processes",
    "context",
    "handoff",
    "watching",
    "progress",
    "memory",
    "building",
    "fixed",
    "inloop",
    "import",
    "prefect",
    "peers",
)
# Run only when asked for: they need packages the suite does not install (nox -s
# bench_prefect, nox -s bench_peers).
OPTIONAL_SECTIONS = ("prefect", "peers")
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s not in OPTIONAL_SECTIONS)


@dataclass
class Config:
    """Sizes and repetitions of every section."""

    sizes: list[int]
    repeats: dict[int, int]
    store_n: int = 10_000
    store_rounds: int = 5
    durability_chain_n: int = 2_000
    durability_small_runs: int = 200
    durability_resume_n: int = 10_000
    durability_rounds: int = 5
    map_n: int = 10_000
    map_rounds: int = 5
    inputs_n: int = 2_000
    inputs_rounds: int = 15
    resources_n: int = 10_000
    resources_rounds: int = 5
    processes_n: int = 1_000
    processes_rounds: int = 5
    processes_starts: int = 15
    context_n: int = 10_000
    context_rounds: int = 5
    handoff_chain_n: int = 2_000
    handoff_layered_n: int = 10_000
    handoff_rounds: int = 7
    watching_n: int = 10_000
    watching_rounds: int = 5
    progress_sizes: list[int] = field(default_factory=lambda: [10_000, 100_000])
    progress_rounds: int = 3
    memory_n: int = 100_000
    memory_rounds: int = 3
    memory_trace: bool = True
    build_n: int = 100_000
    repeat_n: int = 10_000
    big_n: int = 1_000_000
    build_rounds: int = 5
    peer_repeats: int = 3
    fixed_rounds: int = 500
    inloop_rounds: int = 7
    inloop_calls: int = 100
    import_rounds: int = 15
    prefect_rounds: int = 3
    prefect_n: int = 1_000
    peers_rounds: int = 11
    peers_n: int = 1_000
    workloads: list[str] = field(default_factory=lambda: list(workloads.WORKLOADS))


FULL = Config(sizes=[1_000, 10_000, 100_000], repeats={1_000: 7, 10_000: 5, 100_000: 3})
QUICK = Config(
    sizes=[1_000, 10_000],
    repeats={1_000: 5, 10_000: 3},
    store_rounds=3,
    durability_rounds=3,
    map_rounds=3,
    inputs_rounds=5,
    resources_n=2_000,
    resources_rounds=3,
    processes_rounds=3,
    processes_starts=5,
    context_n=2_000,
    context_rounds=3,
    handoff_rounds=3,
    watching_rounds=3,
    progress_sizes=[10_000],
    memory_rounds=1,
    memory_trace=False,
    big_n=200_000,
    build_rounds=3,
    peer_repeats=1,
    fixed_rounds=200,
    inloop_rounds=5,
    inloop_calls=50,
    import_rounds=7,
    prefect_rounds=1,
    peers_rounds=5,
)
# For tests/test_benchmarks_smoke.py: every code path, tiny sizes, in seconds.
SMOKE = Config(
    sizes=[60],
    repeats={60: 1},
    store_n=200,
    store_rounds=1,
    durability_chain_n=50,
    durability_small_runs=3,
    durability_resume_n=200,
    durability_rounds=1,
    map_n=200,
    map_rounds=1,
    inputs_n=200,
    inputs_rounds=1,
    resources_n=200,
    resources_rounds=1,
    processes_n=20,
    processes_rounds=1,
    processes_starts=1,
    context_n=200,
    context_rounds=1,
    handoff_chain_n=30,
    handoff_layered_n=200,
    handoff_rounds=1,
    watching_n=200,
    watching_rounds=1,
    progress_sizes=[200],
    progress_rounds=1,
    memory_n=500,
    memory_rounds=1,
    build_n=200,
    repeat_n=200,
    big_n=500,
    build_rounds=1,
    fixed_rounds=3,
    inloop_rounds=1,
    inloop_calls=2,
    import_rounds=1,
    prefect_rounds=1,
    prefect_n=30,
    peers_rounds=1,
    peers_n=30,
)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python benchmarks/run.py", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="1,000 and 10,000 tasks, fewer repeats")
    p.add_argument(
        "--only",
        metavar="NAME",
        help="comma-separated section names (" + ", ".join(SECTIONS) + ") or parts of system names",
    )
    p.add_argument("--prefect", action="store_true", help="add the Prefect section")
    p.add_argument("--sizes", help="comma-separated task counts instead of the defaults")
    p.add_argument("--repeats", type=int, help="repetitions per cell instead of the defaults")
    p.add_argument("--output", help="where to write the report (default: see above)")
    p.add_argument("--no-write", action="store_true", help="print the report only")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def choose(
    only: str | None, prefect: bool, systems: list[System]
) -> tuple[list[str], list[System]]:
    """The sections to run and the systems of the executors section."""
    if not only:
        return list(DEFAULT_SECTIONS) + (["prefect"] if prefect else []), systems
    sections: list[str] = []
    picked: list[System] = []
    unknown = []
    for word in (w.strip() for w in only.split(",") if w.strip()):
        if word.lower() in SECTIONS:
            sections.append(word.lower())
            continue
        matches = [s for s in systems if word.lower() in s.name.lower()]
        if not matches:
            unknown.append(word)
        picked += [m for m in matches if m not in picked]
    if unknown:
        names = ", ".join(s.name for s in systems)
        raise SystemExit(f"--only: no section or system matches {unknown}; systems: {names}")
    if prefect and "prefect" not in sections:
        sections.append("prefect")
    if picked:
        floors = {s.floor for s in picked if s.floor}
        if "floor: asyncio ready-queue" in floors:
            floors |= {s.name for s in systems if s.name.startswith("floor: asyncio")}
        picked += [s for s in systems if s.name in floors and s not in picked]
        if "executors" not in sections:
            sections.insert(0, "executors")
        return sections, [s for s in systems if s in picked]
    return sections, systems


def default_output(args: argparse.Namespace) -> Path | None:
    if args.no_write:
        return None
    if args.output:
        return Path(args.output)
    if args.only or args.smoke:
        return None
    return HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")


def main(argv: Sequence[str] | None = None) -> report.Results:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    cfg = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.sizes:
        cfg.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    if args.repeats:
        cfg.repeats = {}
    reps = dict(cfg.repeats)

    def repeats(n: int) -> int:
        return args.repeats or reps.get(n) or 3

    every = [
        replace(s, max_repeats=min(s.max_repeats, cfg.peer_repeats)) if s.max_repeats else s
        for s in all_systems()
    ]
    sections, systems = choose(args.only, args.prefect, every)
    via = os.environ.get("FLOWWEAVER_BENCH_VIA")
    command = shlex.join(["python", "benchmarks/run.py", *argv])
    res = report.Results(
        command=f"{via} (which runs {command})" if via else command,
        started=report.now(),
    )
    res.load.append(os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0))

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    began = time.perf_counter()
    if "executors" in sections:
        progress(f"executors: {len(systems)} systems, sizes {cfg.sizes}")
        res.sizes = list(cfg.sizes)
        res.workloads = list(cfg.workloads)
        res.systems = systems
        res.repeats = {n: repeats(n) for n in cfg.sizes}
        res.cells = measure.run_matrix(systems, cfg.workloads, cfg.sizes, repeats, progress)
    if "stores" in sections:
        progress(f"stores: {cfg.store_n:,} tasks")
        res.stores = measure.store_costs(cfg.store_n, cfg.store_rounds, progress)
    if "durability" in sections:
        progress(f"durability: {cfg.durability_chain_n:,}-task chains, small runs, resume")
        res.durability = durability.durability_costs(
            cfg.durability_chain_n,
            cfg.durability_small_runs,
            cfg.durability_resume_n,
            cfg.durability_rounds,
            progress,
        )
    if "maps" in sections:
        progress(f"maps: {cfg.map_n:,} items against {cfg.map_n:,} static tasks")
        res.maps = maps.map_costs(cfg.map_n, cfg.map_rounds, progress)
    if "inputs" in sections:
        progress(f"inputs: {cfg.inputs_n:,} tasks, parameters and input-aware records")
        res.inputs = inputs.input_costs(cfg.inputs_n, cfg.inputs_rounds, progress)
    if "resources" in sections:
        progress(f"resources: {cfg.resources_n:,} tasks, tag limits, rate limits, retries")
        res.resources = resources.resource_costs(cfg.resources_n, cfg.resources_rounds, progress)
    if "processes" in sections:
        progress(f"processes: {cfg.processes_n:,} tasks in worker processes against threads")
        res.processes = {
            "n": cfg.processes_n,
            "rounds": cfg.processes_rounds,
            "per_task": processes.per_task(cfg.processes_n, cfg.processes_rounds),
            "starts": cfg.processes_starts,
            "start_ms": processes.worker_start(cfg.processes_starts),
        }
    if "context" in sections:
        progress(f"context: {cfg.context_n:,} tasks, flowweaver.current() and log records")
        res.context = context.context_costs(cfg.context_n, cfg.context_rounds, progress)
        res.record_us = context.record_outside_runs_us()
    if "handoff" in sections:
        progress(
            f"handoff: {cfg.handoff_chain_n:,}-task chain, {cfg.handoff_layered_n:,}-task "
            "layered DAG, ThreadedExecutor(4) against graphlib + ThreadPoolExecutor(4)"
        )
        res.handoff = handoff.handoff_costs(
            cfg.handoff_chain_n, cfg.handoff_layered_n, cfg.handoff_rounds, progress
        )
    if "watching" in sections:
        progress(f"watching: {cfg.watching_n:,} tasks, no observer against progress()")
        res.watching = watching.watching_costs(cfg.watching_n, cfg.watching_rounds, progress)
    if "progress" in sections:
        progress(f"progress: run displays on {cfg.progress_sizes} tasks")
        res.progress = progress_section.progress_costs(
            cfg.progress_sizes, cfg.progress_rounds, progress
        )
    if "memory" in sections:
        progress(f"memory: {cfg.memory_n:,} tasks")
        res.memory = measure.memory(
            cfg.memory_n, cfg.memory_rounds, progress, trace=cfg.memory_trace
        )
    if "building" in sections:
        progress(f"building: add_task, a second execute, {cfg.big_n:,} tasks in a process")
        res.building = building.building_costs(
            cfg.build_n, cfg.repeat_n, cfg.big_n, cfg.build_rounds, progress
        )
        if args.quick:
            res.notes.append(f"--quick: the building section's big run has {cfg.big_n:,} tasks")
    if "fixed" in sections:
        progress("fixed cost of one blocking execute()")
        res.fixed = measure.fixed_cost(cfg.fixed_rounds, progress)
        res.fixed_rounds = cfg.fixed_rounds
    if "inloop" in sections:
        progress(f"in-loop execute: {cfg.inloop_calls} blocking executes of 10 tasks per form")
        res.inloop = inloop.inloop_costs(cfg.inloop_rounds, cfg.inloop_calls, progress)
    if "import" in sections:
        progress("import time")
        res.imports = measure.import_time(cfg.import_rounds, progress)
    if "prefect" in sections:
        progress(f"prefect: {cfg.prefect_n:,} tasks")
        if measure_installed("prefect"):
            from benchmarks import peer_prefect

            res.prefect = peer_prefect.measure(cfg.prefect_rounds, cfg.prefect_n, progress)
        else:
            res.prefect = {"error": "prefect is not installed (run `nox -s bench_prefect`)"}
    if "peers" in sections:
        # FlowWeaver's modes always run; each peer only where it is installed.
        progress(f"peers: {cfg.peers_n:,} tasks, FlowWeaver and the installed peers")
        from benchmarks import peers

        res.peers = peers.measure(cfg.peers_rounds, cfg.peers_n, progress)
    if "executors" in sections:
        res.notes += [
            "The async floor: a worker coroutine runs a task that never suspends to its end "
            "without a trip through the event loop (FlowWeaver's lanes do the same), so the "
            "50-worker form is faster than create_task per task; both are shown, and ratios "
            "use the faster one in each cell.",
            "dask runs the graph `dask.delayed` makes, flattened into one dict: building it "
            "call by call with `dask.delayed` is quadratic (a 10,000-task chain took about "
            "ten minutes to build), and the flat graph is no slower for dask to compute.",
            "A shared machine: the load average above says how busy it was. Ratios within "
            "one table are comparable; absolute numbers from two runs may not be.",
        ]
    if "executors" in sections and not args.only and not any(s.group == "peer" for s in systems):
        res.notes.append("dask is not installed: the dask row and target are missing")
    if args.quick:
        res.notes.append(
            "--quick: no 100,000-task runs, so the scaling target is not measured; memory "
            "is from one repetition without tracemalloc; dask from one repetition"
        )
    res.seconds = time.perf_counter() - began
    res.load.append(os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0))
    text = report.render(res)
    print(text)
    out = default_output(args)
    if out is not None:
        out.write_text(text, encoding="utf-8")
        progress(f"written to {out}")
    return res


def measure_installed(module: str) -> bool:
    from benchmarks.systems import installed

    return installed(module)


if __name__ == "__main__":
    main()
