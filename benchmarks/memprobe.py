"""One memory measurement in a fresh process: ``python -m benchmarks.memprobe MODE EXECUTOR N``.

MODE ``build`` builds the layered workflow of N tasks; ``run`` builds and executes it;
``trace`` does the same under tracemalloc (slow) and reports the Python allocations of
``execute`` alone. Prints one JSON line: ``maxrss`` (bytes, the process's peak RSS), and
``traced_peak`` / ``traced_kept`` (bytes) for ``trace``.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

from .systems import build_workflow
from .workloads import anoop, layered, noop


def _maxrss() -> int:
    """This process's peak RSS in bytes.

    Linux's ``ru_maxrss`` survives ``exec``: a child forked from a parent bigger than
    itself reports the parent's size. ``VmHWM`` belongs to the new address space, so it
    is read first.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _executor(name: str) -> tuple[Any, Any]:
    import flowweaver

    if name == "SequentialExecutor":
        return flowweaver.SequentialExecutor(), noop
    if name == "ThreadedExecutor(4)":
        return flowweaver.ThreadedExecutor(4), noop
    if name == "ConcurrentExecutor":
        return flowweaver.ConcurrentExecutor(), anoop
    raise SystemExit(f"unknown executor {name!r}")


def main(argv: list[str]) -> None:
    mode, name, n_text = argv
    n = int(n_text)
    import flowweaver  # noqa: F401  - imported in every mode, so it cancels out

    out: dict[str, Any] = {}
    if mode == "build":
        wf = build_workflow(layered(n), noop)
    elif mode == "run":
        executor, func = _executor(name)
        wf = build_workflow(layered(n), func)
        executor.execute(wf)
    elif mode == "trace":
        import tracemalloc

        executor, func = _executor(name)
        wf = build_workflow(layered(n), func)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        executor.execute(wf)
        after, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["traced_peak"] = peak - before
        out["traced_kept"] = after - before
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    out["maxrss"] = _maxrss()
    out["tasks"] = len(wf.tasks)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
