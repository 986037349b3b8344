"""The issue-2 check: ``python benchmarks/scaling.py [--n 10000] [--repeats 3]``.

Runs the layered DAG of no-op tasks (10,000 by default) under each FlowWeaver executor and
its floor, in one process, interleaved, and prints the median microseconds per task and
the ratio to the floor. It is a slice of the full suite (``benchmarks/run.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import measure, report
from benchmarks.systems import all_systems


def main(argv: list[str] | None = None) -> dict[str, float | None]:
    p = argparse.ArgumentParser(prog="python benchmarks/scaling.py", description=__doc__)
    p.add_argument("--n", type=int, default=10_000, help="tasks in the layered DAG")
    p.add_argument("--repeats", type=int, default=3, help="repetitions (median shown)")
    args = p.parse_args(argv)
    systems = [s for s in all_systems() if s.group in ("flowweaver", "floor")]
    systems = [s for s in systems if s.runs(args.n)]
    cells = measure.run_matrix(
        systems,
        ["layered"],
        [args.n],
        lambda n: args.repeats,
        lambda msg: print(msg, file=sys.stderr),
    )
    res = report.Results(command="scaling", started=report.now(), systems=systems, cells=cells)
    print(f"layered DAG, {args.n:,} no-op tasks, median of {args.repeats}")
    print(f"{'system':42} {'us/task':>9} {'vs floor':>9}")
    out: dict[str, float | None] = {}
    for s in systems:
        cell = cells[(s.name, "layered", args.n)]
        value = cell.us_per_task
        out[s.name] = value
        shown = cell.error or report.us(value)
        ratio = report.x(report.ratio_to_floor(res, s.name, "layered", args.n))
        print(f"{s.name:42} {shown:>9} {ratio if s.floor else '':>9}")
    return out


if __name__ == "__main__":
    main()
