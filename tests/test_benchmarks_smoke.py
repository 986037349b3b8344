"""The benchmark suite still runs: every section at tiny sizes, so it cannot rot.

Nothing here asserts a speed (numbers on a shared machine prove nothing in a test); it
checks that every system runs every workload to the end and that the report has every
part. The suite's own pure helpers (floors, workloads, verdicts, --only) are checked too.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from benchmarks import (
    building,
    context,
    floors,
    handoff,
    inloop,
    instructions,
    peers,
    processes,
    progress,
    report,
    resources,
    run,
    systems,
    watching,
    workloads,
)
from benchmarks.measure import Cell

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow


def test_smoke_run_measures_every_system_and_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    res = run.main(["--smoke", "--output", str(out)])
    text = out.read_text(encoding="utf-8")

    for wl in workloads.WORKLOADS:
        for s in res.systems:
            cell = res.cells[(s.name, wl, 60)]
            assert cell.error is None, (s.name, wl, cell.error)
            assert cell.us_per_task is not None, (s.name, wl)
            assert cell.us_per_task > 0, (s.name, wl)
    names = {s.name for s in res.systems}
    assert "ThreadedExecutor(4)" in names
    assert "aio.AsyncExecutor [trio]" in names
    assert systems.TO_THREAD in names
    for heading in (
        "## The targets of issue 4",
        "### layered",
        "## State stores",
        "## Memory added per task",
        "## Fixed cost of one blocking `execute()`",
        "## `import flowweaver`",
        "- Command: `python benchmarks/run.py --smoke --output",
        "- Machine:",
    ):
        assert heading in text, heading
    assert "## Maps: cost per item of a map of 200 against per task of 200 static tasks" in text
    assert [m.executor for m in res.maps] == [
        "SequentialExecutor",
        "ThreadedExecutor(4)",
        "ConcurrentExecutor",
    ]
    for m in res.maps:
        assert m.error is None, m.error
        assert m.ratio() is not None
    assert "## Input-aware records: cost per task of parameters and hashing" in text
    assert [r.workload for r in res.inputs] == ["chain", "layered"]
    for r in res.inputs:
        assert r.error is None, r.error
        assert r.ratio("sqlite+params restore", "sqlite restore") is not None
    assert "## Resource control: cost per task of tag limits, rate limits and retries" in text
    assert [r.executor for r in res.resources] == ["SequentialExecutor", "ThreadedExecutor(4)"]
    for r in res.resources:
        assert r.error is None, r.error
        assert all(r.us_per_task(form) is not None for form in resources.FORMS)
    assert "## Worker processes: cost per task against threads (20 tasks)" in text
    assert set(res.processes["per_task"]) == {
        (w, s) for w in ("wide", "chain") for s in processes.SYSTEMS
    }
    assert "## Run context: cost per task of `flowweaver.current()`" in text
    assert [r.executor for r in res.context] == ["SequentialExecutor", "ThreadedExecutor(4)"]
    for r in res.context:
        assert r.error is None, r.error
        assert all(r.us_per_task(form) is not None for form in context.FORMS)
    assert "## Thread hand-off: sync no-op tasks on 4 worker threads" in text
    assert [(r.executor, r.n) for r in res.handoff] == [("chain", 30), ("layered", 200)]
    for r in res.handoff:
        assert r.error is None, r.error
        assert all(r.ratio(form) is not None for form in handoff.FORMS)
    assert "## Watching a run: cost per task of an observer and of progress() (200 tasks)" in text
    assert [(r.task, r.executor) for r in res.watching] == [
        (t, e) for t in watching.TASKS for e in watching.EXECUTORS
    ]
    for r in res.watching:
        assert r.error is None, r.error
        assert all(r.us_per_task(form) is not None for form in watching.FORMS)
    assert "## Run displays: cost per task of the command's live display and plain lines" in text
    assert [(r.n, r.executor) for r in res.progress] == [
        (200, "SequentialExecutor"),
        (200, "ThreadedExecutor(4)"),
    ]
    for r in res.progress:
        assert r.error is None, r.error
        assert all(r.ratio(form) is not None for form in progress.FORMS)
    assert len(res.memory) == 3
    assert all(m.error is None for m in res.memory)
    assert "## Building a workflow, running it again, and a million tasks" in text
    built = res.building
    assert built is not None
    assert built.add is not None
    assert built.repeat is not None
    assert built.big is not None
    assert (built.add.error, built.repeat.error, built.big.error) == (None, None, None)
    assert built.add.ratio() is not None
    assert built.repeat.ratio() is not None
    assert built.big.n == 500
    assert (built.big.per_task() or 0) > 0
    assert "| 500 layered build+run, Sequential: peak memory per task |" in text
    assert res.fixed["SequentialExecutor"] > 0
    assert res.imports["import flowweaver, minus pass (ms)"] is not None
    assert res.imports["import flowweaver / import anyio (CPU)"] > 0
    assert "## In-loop execute: a blocking `execute` of 10 tasks where a loop runs" in text
    assert res.inloop is not None
    assert res.inloop.error is None, res.inloop.error
    assert res.inloop.ratio() is not None
    # each store is either measured or reported as not available, never silently absent
    for r in res.stores:
        assert r.us_per_task("none") is not None
        for name in ("SQLiteStateStore", "JSONStateStore"):
            assert (name in r.errors) != bool(r.times.get(name))


def test_the_in_loop_section_times_both_forms_and_prints_their_ratio() -> None:
    res = inloop.inloop_costs(rounds=2, calls=2)
    assert res.error is None, res.error
    assert all(len(res.times[form]) == 2 for form in inloop.FORMS)
    ratio = res.ratio()
    assert ratio is not None
    assert ratio > 0
    text = "\n".join(inloop.table(res))
    assert f"{ratio:.2f}x" in text
    assert inloop.table(None) == []


@pytest.mark.timeout(120)
def test_the_building_rows_measure_what_they_say() -> None:
    a = building.add_task_cost(300, 2)
    assert a.error is None
    assert len(a.build) == len(a.run) == 2
    r = building.repeat_cost(300, 2)
    assert r.error is None
    assert len(r.first) == len(r.second) == 2
    big = building.big_run(300)
    assert big.error is None
    assert (big.peak_rss or 0) > (big.start_rss or 0) > 0
    assert all(s > 0 for s in (big.build_s, big.run_s, big.build_cpu, big.run_cpu) if s)
    assert None not in (big.build_s, big.run_s, big.build_cpu, big.run_cpu)
    assert len(workloads.layered(300, fan_in=3).deps[-1]) == 3
    lines = building.table(building.Building(a, r, big))
    assert len([line for line in lines if line.startswith("| ")]) == 5


def test_the_process_figures_measure_every_system_and_a_worker_start() -> None:
    found = processes.main(["--n", "20", "--repeats", "1", "--starts", "1"])
    assert set(found["per_task"]) == {(w, s) for w in ("wide", "chain") for s in processes.SYSTEMS}
    assert found["start_ms"] > 0


@pytest.mark.parametrize("workload", list(workloads.WORKLOADS))
def test_every_floor_runs_each_task_once_with_upstream_results_by_name(workload: str) -> None:
    dag = workloads.make(workload, 250)
    for floor in (floors.sequential, floors.threaded, floors.async_tasks, floors.async_workers):
        assert floor(dag) > 0  # each floor raises if it ran fewer tasks than the DAG has


def test_layered_workload_is_fixed_and_depends_on_two_tasks_of_the_layer_before() -> None:
    a, b = workloads.layered(1_000), workloads.layered(1_000)
    assert a == b
    assert all(d == () for d in a.deps[:100])
    for i, deps in enumerate(a.deps[100:], start=100):
        layer = i // 100
        assert len(set(deps)) == 2
        assert all((layer - 1) * 100 <= j < layer * 100 for j in deps)
    assert len(workloads.wide(10)) == 11
    assert workloads.wide(10).deps[-1] == tuple(range(10))
    assert workloads.chain(3).deps == ((), (0,), (1,))
    assert workloads.fan_out(3).deps == ((), (0,), (0,), (0,), (1, 2, 3))


def test_the_map_workload_and_its_static_twin_run_the_same_number_of_tasks() -> None:
    from flowweaver import SequentialExecutor

    mapped = systems.build_map_workflow(5, workloads.noop)
    static = systems.build_fan_out_workflow(5, workloads.noop)
    SequentialExecutor().execute(mapped)
    SequentialExecutor().execute(static)
    assert len(mapped.get_task("t1").items) == 5
    assert len(static.tasks) == 5 + 2
    assert mapped.get_task("t2").status is static.get_task("t6").status


def test_only_picks_matching_systems_with_their_floors() -> None:
    every = systems.all_systems()
    sections, picked = run.choose("aio.AsyncExecutor [trio]", False, every)
    assert sections == ["executors"]
    assert [s.name for s in picked] == [
        "aio.AsyncExecutor [trio]",
        systems.ASYNC_TASKS,
        systems.ASYNC_WORKERS,
    ]
    sections, picked = run.choose("memory,fixed", False, every)
    assert sections == ["memory", "fixed"]
    assert picked == every
    with pytest.raises(SystemExit, match="no section or system matches"):
        run.choose("no-such-thing", False, every)


def test_verdicts_read_both_directions_of_a_target() -> None:
    assert report.Target("a", 1.9, "", 4, 2).verdict() == "met (aim met too)"
    assert report.Target("a", 3.0, "", 4, 2).verdict() == "met"
    assert report.Target("a", 4.1, "", 4, 2).verdict() == "**NOT MET**"
    assert report.Target("d", 25, "", 5, 20, at_least=True).verdict() == "met (aim met too)"
    assert report.Target("d", 4, "", 5, 20, at_least=True).verdict() == "**NOT MET**"
    assert report.Target("a", None, "", 4, 2).verdict() == "not measured"


def test_ratio_uses_the_faster_async_floor_form() -> None:
    res = report.Results(command="t", started=report.now(), systems=systems.all_systems())
    for name, seconds in (
        ("aio.AsyncExecutor [asyncio]", 0.006),
        (systems.ASYNC_TASKS, 0.004),
        (systems.ASYNC_WORKERS, 0.002),
    ):
        res.cells[(name, "layered", 1000)] = Cell(name, "layered", 1000, 1000, [seconds])
    assert report.ratio_to_floor(res, "aio.AsyncExecutor [asyncio]", "layered", 1000) == 3.0


def test_prefect_section_says_why_when_prefect_is_missing(tmp_path: Path) -> None:
    if systems.installed("prefect"):
        pytest.skip("prefect is installed here; its section runs in nox -s bench_prefect")
    out = tmp_path / "prefect.md"
    res = run.main(["--smoke", "--only", "prefect", "--output", str(out)])
    assert "not installed" in res.prefect["error"]
    text = out.read_text(encoding="utf-8")
    assert "## Prefect 3 (optional session)" in text
    assert "## The targets of issue 4" not in text  # nothing of them was measured


def test_peers_section_runs_flowweaver_and_names_the_peers_it_could_not_run(
    tmp_path: Path,
) -> None:
    # Without the peers (they are installed by nox -s bench_peers only) FlowWeaver's
    # modes still run and the report says which peers are missing; with them, every
    # mode of every peer runs each workload to the end.
    out = tmp_path / "peers.md"
    res = run.main(["--smoke", "--only", "peers", "--output", str(out)])
    found = res.peers
    assert found is not None
    text = out.read_text(encoding="utf-8")
    assert text.count(peers.HEADING) == 1
    assert "## The targets of issue 4" not in text
    assert found.modes[0].name == peers.BASELINE
    for mode in found.modes:
        for wl in peers.WORKLOADS:
            cell = found.cells[(mode.name, wl)]
            assert cell.error is None, (mode.name, wl, cell.error)
            assert (cell.us_per_task() or 0) > 0
            assert found.ratio(mode.name, wl) is not None
        assert f"| {mode.name} |" in text
    for system, (module, _, _) in peers.PEERS.items():
        if importlib.util.find_spec(module) is None:
            assert "not installed" in found.missing[system]
            assert f"- {system}: not installed" in text
        else:
            assert system in found.versions


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.timeout(300)
# One workload, with parameters: each run under valgrind costs 30 s of CI; the tool's
# other workloads differ only in the DAG they build.
@pytest.mark.parametrize(("workload", "extra"), [("chain", ["--params"])])
def test_instruction_counts_run_under_valgrind_and_measure_the_engine(
    capsys: pytest.CaptureFixture[str], workload: str, extra: list[str]
) -> None:
    # The per-task count is the difference of two whole runs: it must be positive and of
    # the order of a task's engine work (tens of thousands of instructions), not noise.
    instructions.main(["--n", "100", "--workload", workload, *extra])
    out = capsys.readouterr().out
    assert out.split()[2] == workload
    assert out.split()[5] == ("params" if extra else "-")
    value = int(out.split()[3].replace(",", ""))
    assert 5_000 < value < 1_000_000, out
