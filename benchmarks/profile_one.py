"""Profile one system on one DAG: ``python benchmarks/profile_one.py SYSTEM [options]``.

``SYSTEM`` is part of a system name as in the report (``ThreadedExecutor``, ``"aio.Async``
``Executor [trio]"``...). The profile covers one whole repetition: building the workflow
shows up as its own branch (``build_workflow``), so read the ``execute`` branch. Only the
calling thread is profiled: time spent in worker threads shows up as waiting.

    python benchmarks/profile_one.py SequentialExecutor --workload chain --n 10000
    python benchmarks/profile_one.py ThreadedExecutor --tool pyinstrument
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import workloads
from benchmarks.systems import all_systems


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python benchmarks/profile_one.py", description=__doc__)
    p.add_argument("system", help="part of a system name")
    p.add_argument("--workload", default="layered", choices=list(workloads.WORKLOADS))
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--tool", default="cprofile", choices=["cprofile", "pyinstrument"])
    p.add_argument("--top", type=int, default=30, help="rows of the cProfile table")
    args = p.parse_args(argv)
    matches = [s for s in all_systems() if args.system.lower() in s.name.lower()]
    if not matches:
        raise SystemExit(f"no system matches {args.system!r}")
    system = matches[0]
    dag = workloads.make(args.workload, args.n)
    system.run(workloads.layered(20))  # warm up imports and caches
    print(f"{system.name} on {args.workload} with {len(dag):,} tasks", file=sys.stderr)
    if args.tool == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
        seconds = system.run(dag)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False))
    else:
        prof = cProfile.Profile()
        prof.enable()
        seconds = system.run(dag)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)
    print(f"timed part: {seconds / len(dag) * 1e6:.2f} us per task (under the profiler)")


if __name__ == "__main__":
    main()
