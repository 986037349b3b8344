"""What a state store costs where it sits on the critical path: the durability section.

Three measurements, forms taking turns in one process (the machine is shared):

* **chain**: a chain of ``n`` no-op tasks with ``SequentialExecutor`` (every step waits for
  its upstream's record, so a store's commit is paid once per task), without a store and
  with each built-in store under each ``durability`` setting (``normal``, ``fsync``,
  ``ordered``); microseconds per task (wall clock) and the ratio to no store;
* **small runs**: a 10-task workflow run ``runs`` times in a row with one shared store
  object, as a service does per request: CPU per run (all threads), blocking
  ``SequentialExecutor`` and the awaited ``aio.SequentialExecutor`` (asyncio), against the
  same without a store;
* **resume**: a layered DAG of ``n`` tasks run once with ``SQLiteStateStore`` (timed: CPU),
  then again on the same store, which restores every task (timed): the resume's CPU
  against executing them.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import workloads
from .measure import Progress, _quiet, rotated

SETTINGS = ("normal", "fsync", "ordered")
STORES = ("SQLiteStateStore", "JSONStateStore")
CHAIN_FORMS = ("none", *(f"{s}/{d}" for s in STORES for d in SETTINGS))
SMALL_FORMS = ("none", "SQLiteStateStore", "JSONStateStore")


@dataclass
class DurabilityResult:
    chain_n: int = 0
    chain: dict[str, list[float]] = field(default_factory=dict)  # form -> seconds
    small_tasks: int = 10
    small_runs: int = 0
    small: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # form -> CPU s
    resume_n: int = 0
    resume: dict[str, list[float]] = field(default_factory=dict)  # "execute"/"resume" -> CPU
    errors: list[str] = field(default_factory=list)

    def chain_us(self, form: str) -> float | None:
        t = self.chain.get(form)
        return statistics.median(t) / self.chain_n * 1e6 if t else None

    def chain_ratio(self, form: str) -> float | None:
        a, b = self.chain_us(form), self.chain_us("none")
        return None if a is None or not b else a / b

    def small_ms(self, executor: str, form: str) -> float | None:
        t = self.small.get(executor, {}).get(form)
        return statistics.median(t) / self.small_runs * 1e3 if t else None

    def resume_ratio(self) -> float | None:
        ran, restored = self.resume.get("execute"), self.resume.get("resume")
        if not ran or not restored:
            return None
        return statistics.median(restored) / statistics.median(ran)


def _store(form: str, folder: str) -> Any:
    import flowweaver

    if form == "none":
        return None
    name, _, setting = form.partition("/")
    cls = getattr(flowweaver, name)
    suffix = ".db" if name.startswith("SQLite") else ".json"
    return cls(str(Path(folder) / f"state{suffix}"), durability=setting or "normal")


def _chain(n: int) -> Any:
    from flowweaver import Task, Workflow

    wf = Workflow(f"bench-chain-{n}")
    previous: list[str] = []
    for i in range(n):
        name = f"t{i}"
        wf.add_task(Task(name, workloads.noop), depends_on=previous)
        previous = [name]
    return wf


def _small(k: int, func: Any) -> Any:
    from flowweaver import Task, Workflow

    # three short chains side by side joined at the end: a few layers, as a small ETL
    wf = Workflow("bench-small")
    for i in range(k):
        wf.add_task(Task(f"t{i}", func), depends_on=[f"t{i - 3}"] if i >= 3 else [])
    return wf


def durability_costs(
    chain_n: int,
    small_runs: int,
    resume_n: int,
    rounds: int,
    progress: Progress = _quiet,
) -> DurabilityResult:
    """The three measurements of the module's docstring, ``rounds`` repetitions each."""
    import anyio

    import flowweaver
    import flowweaver.aio

    res = DurabilityResult(chain_n=chain_n, small_runs=small_runs, resume_n=resume_n)
    began = time.perf_counter()
    for rep in range(rounds):
        for form in rotated(CHAIN_FORMS, rep):
            with tempfile.TemporaryDirectory(prefix="fw-bench-") as folder:
                wf = _chain(chain_n)
                executor = flowweaver.SequentialExecutor(state_store=_store(form, folder))
                gc.collect()
                start = time.perf_counter()
                executor.execute(wf)
                res.chain.setdefault(form, []).append(time.perf_counter() - start)
    progress(f"  durability: chains of {chain_n:,} in {time.perf_counter() - began:.1f} s")

    executors = {
        "SequentialExecutor": lambda st: flowweaver.SequentialExecutor(state_store=st),
        "aio.SequentialExecutor (asyncio)": lambda st: flowweaver.aio.SequentialExecutor(
            state_store=st
        ),
    }
    for rep in range(rounds):
        for label, make in executors.items():
            awaited = label.startswith("aio")
            for form in rotated(SMALL_FORMS, rep):
                with tempfile.TemporaryDirectory(prefix="fw-bench-") as folder:
                    store = _store(form if form == "none" else f"{form}/normal", folder)
                    executor = make(store)
                    flows = [_small(res.small_tasks, workloads.noop) for _ in range(small_runs)]
                    # one run first: the store's file and table exist, as in a service
                    _call(executor, _small(res.small_tasks, workloads.noop), awaited, anyio)
                    gc.collect()
                    start = time.process_time()
                    if awaited:

                        async def many(ex: Any = executor, fl: list[Any] = flows) -> None:
                            for wf in fl:
                                await ex.execute(wf)

                        anyio.run(many)
                    else:
                        for wf in flows:
                            executor.execute(wf)
                    cpu = time.process_time() - start
                    res.small.setdefault(label, {}).setdefault(form, []).append(cpu)
    progress(f"  durability: small runs done at {time.perf_counter() - began:.1f} s")

    dag = workloads.make("layered", resume_n)
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="fw-bench-") as folder:
            store = _store("SQLiteStateStore/normal", folder)
            for what in ("execute", "resume"):
                wf = _build(dag)
                executor = flowweaver.SequentialExecutor(state_store=store)
                gc.collect()
                start = time.process_time()
                executor.execute(wf)
                res.resume.setdefault(what, []).append(time.process_time() - start)
    progress(f"  durability: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return res


def _call(executor: Any, wf: Any, awaited: bool, anyio: Any) -> None:
    if awaited:
        anyio.run(executor.execute, wf)
    else:
        executor.execute(wf)


def _build(dag: workloads.Dag) -> Any:
    from flowweaver import Task, Workflow

    wf = Workflow(f"bench-resume-{len(dag)}")
    for name, ups in zip(dag.names, dag.deps, strict=True):
        wf.add_task(Task(name, workloads.noop), depends_on=[dag.names[j] for j in ups])
    return wf


# -- the report ----------------------------------------------------------------------------


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def durability_table(res: DurabilityResult | None) -> list[str]:
    if res is None or not res.chain:
        return []
    lines = [
        f"## Durability: a store on the critical path ({res.chain_n:,}-task chain, "
        "small runs, resume)",
        "",
        f"A chain of {res.chain_n:,} no-op tasks, `SequentialExecutor`: each step waits for "
        "its upstream, so under `normal` and `fsync` each step also waits for its "
        "upstream's record to be committed. `normal` (the default) commits to the OS "
        "(survives kill -9), `fsync` to the disk (survives a power loss), `ordered` lets "
        "dependents start before the commit and commits records in completion order, at "
        "most `commit_interval` apart. Microseconds per task, wall clock; in brackets the "
        "ratio to no store.",
        "",
        "| store | normal | fsync | ordered |",
        "|---|---:|---:|---:|",
        f"| no store: {_num(res.chain_us('none'))} us | | | |",
    ]
    for store in STORES:
        cells = [
            f"{_num(res.chain_us(f'{store}/{d}'))} ({_x(res.chain_ratio(f'{store}/{d}'))})"
            for d in SETTINGS
        ]
        lines.append(f"| {store} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"A {res.small_tasks}-task workflow run {res.small_runs} times in a row with one "
        "store object (`durability='normal'`), as a service runs one per request: CPU "
        "milliseconds per run, all threads; in brackets the ratio to no store.",
        "",
        "| executor | no store | SQLiteStateStore | JSONStateStore |",
        "|---|---:|---:|---:|",
    ]
    for label in res.small:
        base = res.small_ms(label, "none")
        cells = [_num(base, 2)]
        for store in STORES:
            ms = res.small_ms(label, store)
            ratio = None if ms is None or not base else ms / base
            cells.append(f"{_num(ms, 2)} ({_x(ratio)})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if res.resume:
        ran = statistics.median(res.resume["execute"]) / res.resume_n * 1e6
        restored = statistics.median(res.resume["resume"]) / res.resume_n * 1e6
        lines += [
            "",
            f"Resume: a {res.resume_n:,}-task layered DAG, `SequentialExecutor`, "
            f"`SQLiteStateStore`: executing it {ran:.1f} us of CPU a task, a second run "
            f"that restores every task {restored:.1f} us ({_x(res.resume_ratio())}).",
        ]
    lines.append("")
    return lines
