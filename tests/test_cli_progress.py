"""What ``flowweaver run`` prints in a log or a pipe while a run goes (``PlainProgress``).

Most cases drive the display with real runs in this process (an executor with the display
as its observer, lines collected in a list); the progress line's clock is injected, so no
test waits for it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import flowweaver
from flowweaver import Task, Workflow
from flowweaver._cli._progress import PlainProgress, RunState
from flowweaver._events import RunStarted, TaskCompleted, TaskStarted
from tests._cli_helpers import InProcess, write

EXECUTORS: dict[str, Callable[..., flowweaver.SequentialExecutor]] = {
    "sequential": flowweaver.SequentialExecutor,
    "threaded": flowweaver.ThreadedExecutor,
    "async": flowweaver.ConcurrentExecutor,
}


def noop(**kw: object) -> None:
    return None


def boom(**kw: object) -> None:
    raise ConnectionError("database unreachable")


def layered(layers: int, width: int, roots: dict[str, Callable[..., object]]) -> Workflow:
    """``roots`` first, then ``layers`` layers of ``width`` no-op tasks: the first layer
    hangs below the roots in turn (task i below root i % len(roots)), each next task below
    the one above it."""
    wf = Workflow("big")
    names = list(roots)
    for name, fn in roots.items():
        wf.add_task(Task(name, fn))
    for layer in range(layers):
        for i in range(width):
            up = [names[i % len(names)]] if layer == 0 else [f"t{layer - 1}_{i}"]
            wf.add_task(Task(f"t{layer}_{i}", noop), depends_on=up)
    return wf


def run_plain(
    wf: Workflow,
    executor: str = "sequential",
    backend: str = "asyncio",
    **options: object,
) -> list[str]:
    """Run ``wf`` with a PlainProgress observer; the lines it wrote."""
    lines: list[str] = []
    mapped = {t.name: t for t in wf.tasks if t.map_over is not None}
    state = RunState(wf.name, len(wf.tasks), mapped)
    progress = PlainProgress(state, write=lines.append, interval=0, **options)  # type: ignore[arg-type]
    with progress:
        try:
            EXECUTORS[executor](observer=progress, backend=backend).execute(wf)
        except flowweaver.WorkflowExecutionError:
            pass
    return lines


def verbs(lines: list[str]) -> list[str]:
    return [m.group(1) for text in lines if (m := re.match(r"\[\s*[\d.]+s\] (\S+)", text))]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_a_clean_run_of_3000_tasks_prints_its_start_and_its_end(
    executor: str, backend: str
) -> None:
    lines = run_plain(layered(30, 100, {"root": noop}), executor, backend)
    assert verbs(lines) == ["run", "finished"]
    assert lines[0].endswith("run        big: 3,001 tasks")
    assert re.search(r"finished   big: COMPLETED in ", lines[1])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_skips_are_one_line_per_failed_task_they_come_from(executor: str, backend: str) -> None:
    wf = layered(20, 100, {"extract": boom, "load": boom, "fine": noop})
    lines = run_plain(wf, executor, backend)
    skips = sorted(text.split("skipped    ", 1)[1] for text in lines if "skipped    " in text)
    # 34 and 33 first-layer tasks hang below the two failures, 20 layers deep
    assert [re.sub(r": .*", "", s) for s in skips] == [
        "660 tasks below 'load' (it failed)",
        "680 tasks below 'extract' (it failed)",
    ]
    assert re.search(r"below 'extract' \(it failed\): t0_0, t0_3, t0_6 and 677 more$", skips[1])
    failed = [text for text in lines if "FAILED     " in text]
    assert len(failed) == 2
    assert all("ConnectionError: database unreachable" in text for text in failed)
    assert len(lines) == 6  # run, 2 failures, 2 skip lines, finished


def test_a_single_skip_keeps_its_own_line_with_its_reason() -> None:
    wf = Workflow("one")
    wf.add_task(Task("extract", boom))
    wf.add_task(Task("load", noop), depends_on=["extract"])
    lines = run_plain(wf)
    assert any(text.endswith("skipped    load (upstream task 'extract' failed)") for text in lines)


def test_skips_on_purpose_print_up_to_ten_lines_then_are_counted() -> None:
    def nothing_new(**kw: object) -> None:
        raise flowweaver.Skip("no new rows")

    wf = Workflow("quiet")
    for i in range(25):
        wf.add_task(Task(f"check{i}", nothing_new))
    lines = run_plain(wf)
    skipped = [t.split("skipped    ", 1)[1] for t in lines if "skipped    " in t]
    assert skipped[:2] == ["check0 (no new rows)", "check1 (no new rows)"]
    assert skipped[10:] == [
        "(more skips are counted, not printed (the summary counts them))",
        "and 15 more tasks (not shown above)",
    ]


def test_skip_groups_print_up_to_ten_lines_then_count_their_tasks() -> None:
    roots = {f"r{i}": boom for i in range(30)}
    lines = run_plain(layered(2, 30, roots))  # two tasks below each failure
    skipped = [t.split("skipped    ", 1)[1] for t in lines if "skipped    " in t]
    assert skipped[0] == "2 tasks below 'r0' (it failed): t0_0, t1_0"
    assert len(skipped) == 12
    assert skipped[-1] == "and 40 more tasks (not shown above)"


def test_skip_lines_come_before_what_happens_after_the_skips() -> None:
    wf = Workflow("order")
    wf.add_task(Task("extract", boom))
    wf.add_task(Task("a", noop), depends_on=["extract"])
    wf.add_task(Task("b", noop), depends_on=["extract"])
    wf.add_task(Task("later", boom), depends_on=["other"])
    wf.add_task(Task("other", noop))
    lines = run_plain(wf)
    assert verbs(lines) == ["run", "FAILED", "skipped", "FAILED", "finished"]
    assert "2 tasks below 'extract' (it failed): a, b" in lines[2]


def test_retries_print_up_to_ten_lines_then_are_counted() -> None:
    def flaky_once() -> Callable[..., None]:
        tries = [0]

        def flaky(**kw: object) -> None:
            tries[0] += 1
            if tries[0] == 1:
                raise TimeoutError("slow network")

        return flaky

    wf = Workflow("flaky")
    for i in range(25):
        wf.add_task(Task(f"f{i}", flaky_once(), retries=1))
    lines = run_plain(wf)
    retrying = [text for text in lines if "retrying" in text]
    assert len(retrying) == 12  # ten, the note that the rest are counted, the count
    assert "f0 (attempt 1 failed: TimeoutError: slow network)" in retrying[0]
    assert retrying[10].endswith("(more retries are counted, not printed (--verbose prints each))")
    assert retrying[11].endswith("retrying   and 15 more retries (not shown above)")
    assert verbs(lines)[-1] == "finished"


def test_failures_print_up_to_ten_lines_then_are_counted() -> None:
    wf = Workflow("broken")
    for i in range(30):
        wf.add_task(Task(f"b{i}", boom))
    lines = run_plain(wf)
    failed = [text for text in lines if "FAILED     " in text]
    assert len(failed) == 12
    assert failed[-1].endswith("FAILED     and 20 more tasks (not shown above)")


def test_restored_tasks_are_one_count_line(tmp_path: Path) -> None:
    store = flowweaver.SQLiteStateStore(tmp_path / "s.db")

    def run(verbose: bool = False) -> list[str]:
        lines: list[str] = []
        wf = layered(10, 30, {"root": noop})
        progress = PlainProgress(
            RunState("big", 301), write=lines.append, interval=0, verbose=verbose
        )
        flowweaver.SequentialExecutor(observer=progress, state_store=store).execute(wf)
        return lines

    run()
    again = run()
    assert verbs(again) == ["run", "restored", "finished"]
    assert again[1].endswith("restored   301 tasks (saved results): root, t0_0, t0_1 and 298 more")
    assert verbs(run(verbose=True)).count("restored") == 301


def map_flow(bad: int, mode: str = "fail") -> Workflow:
    def source() -> list[int]:
        return list(range(100))

    def load(source: int) -> int:
        if source < bad:
            raise ValueError(f"row {source} is bad")
        return source

    wf = Workflow("maps")
    wf.add_task(Task("source", source))
    wf.add_task(Task("load", load, map_over="source", on_item_failure=mode))
    return wf


def test_a_maps_items_are_counted_and_only_failed_ones_print_capped() -> None:
    lines = run_plain(map_flow(bad=42))
    items = [text for text in lines if "FAILED     load[" in text]
    assert len(items) == 5  # the first five failed items, no started or completed item
    assert all("FAILED     load[" in text and "ValueError: row" in text for text in items)
    assert any(text.endswith("FAILED     and 37 more items of 'load' failed") for text in lines)
    # the map itself: one line with its items counted
    end = next(text for text in lines if "FAILED     load after" in text)
    assert end.endswith("(58 items done, 42 failed)")
    assert len(lines) < 12


def test_a_map_that_completes_is_one_line_with_its_item_counts() -> None:
    lines = run_plain(map_flow(bad=0))
    assert re.search(r"completed  load \([\d.]+ m?s\): 100 items done, 0 failed$", lines[1])
    assert len(lines) == 3


def test_verbose_prints_a_line_per_event() -> None:
    lines = run_plain(layered(3, 10, {"root": noop}), verbose=True)
    assert verbs(lines).count("started") == 31
    assert verbs(lines).count("completed") == 31


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_progress_line_counts_done_running_failed_skipped_and_the_rate() -> None:
    clock = Clock(1000.0)
    lines: list[str] = []
    state = RunState("w", 3000)
    progress = PlainProgress(state, write=lines.append, interval=0, clock=clock)
    progress.tick()  # not begun: nothing to say
    assert lines == []
    progress(RunStarted("w", 1000.0, 3000))
    for i in range(1200):
        progress(TaskStarted("w", 1000.0, f"t{i}", 1))
        progress(TaskCompleted("w", 1001.0, f"t{i}", 1, 0.01))
    progress(TaskStarted("w", 1001.0, "slow", 1))
    clock.now = 1005.0
    progress.tick()
    assert lines[-1] == (
        "[   5.00s] progress   1,200/3,000 done · 1 running · 0 failed · 0 skipped · 240 tasks/s"
    )
    # the rate is since the last line; a task running long is named
    for i in range(1200, 1300):
        progress(TaskStarted("w", 1006.0, f"t{i}", 1))
        progress(TaskCompleted("w", 1006.0, f"t{i}", 1, 0.01))
    clock.now = 1015.0
    progress.tick()
    assert lines[-1].endswith("· 10 tasks/s · longest running: slow (0:14)")


def test_no_progress_line_after_the_run_ended() -> None:
    lines = run_plain(layered(1, 5, {"root": noop}))
    progress = PlainProgress(RunState("big", 6), write=lines.append, interval=0)
    progress(RunStarted("big", time.time(), 6))
    progress.state.finished = object()  # type: ignore[assignment]
    count = len(lines)
    progress.tick()
    assert len(lines) == count


def test_the_ticker_writes_progress_lines_while_a_long_task_runs() -> None:
    release = threading.Event()
    lines: list[str] = []

    def slow() -> None:
        while sum("progress" in text for text in lines) < 2:
            time.sleep(0.01)
        release.set()

    wf = Workflow("slow")
    wf.add_task(Task("slow", slow))
    progress = PlainProgress(RunState("slow", 1), write=lines.append, interval=0.02)
    with progress:
        flowweaver.SequentialExecutor(observer=progress).execute(wf)
    assert release.is_set()
    ticks = [text for text in lines if "progress   0/1 done · 1 running" in text]
    assert len(ticks) >= 2
    assert verbs(lines)[-1] == "finished"  # none after the end
    assert progress._ticker is not None
    assert not progress._ticker.is_alive()


def test_no_ticker_with_interval_zero_or_verbose() -> None:
    for progress in (
        PlainProgress(RunState("w", 1), interval=0),
        PlainProgress(RunState("w", 1), interval=1, verbose=True),
    ):
        with progress:
            assert progress._ticker is None


# -- the command ---------------------------------------------------------------------------

BIG = """
    from flowweaver import Task, Workflow

    def noop(**kw):
        return None

    def slow(**kw):
        import time
        time.sleep(0.05)

    workflow = Workflow("big")
    for layer in range(30):
        for i in range(100):
            deps = [] if layer == 0 else [f"t{layer - 1}_{i}", f"t{layer - 1}_{(i * 7 + 3) % 100}"]
            workflow.add_task(Task(f"t{layer}_{i}", slow if (layer, i) == (3, 3) else noop),
                              depends_on=deps)
"""


@pytest.fixture
def flowweaver_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    write(tmp_path, "big.py", BIG)
    monkeypatch.chdir(tmp_path)
    command = InProcess(tmp_path)
    yield command
    command.forget()


def test_a_clean_3000_task_run_prints_under_30_lines(flowweaver_in: InProcess) -> None:
    """It printed 9,008 before: a line per start and completion, a row per task."""
    result = flowweaver_in("run", "big.py", "--no-store")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) < 30, result.output
    assert re.search(r"^t3_3\s+COMPLETED\s+1\s+\d+ ms$", result.output, re.M)  # the slowest
    assert "and 2,995 more completed (--all shows every task)" in lines
    assert lines[-1] == "big: COMPLETED in " + lines[-1].split(" in ", 1)[1]
    assert re.search(r": 3,000 completed, 0 failed, 0 skipped\.$", lines[-1])


def test_verbose_and_all_bring_back_every_line_and_row(flowweaver_in: InProcess) -> None:
    result = flowweaver_in("run", "big.py", "--no-store", "--verbose", "--all")
    assert result.exit_code == 0, result.output
    assert result.output.count("started    t") == 3000
    assert len(re.findall(r"^t\d+_\d+\s+COMPLETED\s+1\s", result.output, re.M)) == 3000


def test_the_progress_interval_comes_from_the_option_or_the_environment(
    flowweaver_in: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path,
        "waits.py",
        """
        import time
        from flowweaver import Task, Workflow

        workflow = Workflow("waits")
        workflow.add_task(Task("wait", lambda: time.sleep(0.3)))
        """,
    )
    by_option = flowweaver_in("run", "waits.py", "--no-store", "--progress-interval", "0.05")
    assert by_option.exit_code == 0, by_option.output
    assert "progress   0/1 done · 1 running" in by_option.output
    monkeypatch.setenv("FLOWWEAVER_PROGRESS_INTERVAL", "0.05")
    by_env = flowweaver_in("run", "waits.py", "--no-store")
    assert "progress   0/1 done · 1 running" in by_env.output
    none = flowweaver_in("run", "waits.py", "--no-store", "--progress-interval", "0")
    assert "progress" not in none.output
    bad = flowweaver_in("run", "waits.py", "--no-store", "--progress-interval", "-1")
    assert bad.exit_code == 2
    assert "--progress-interval" in bad.output
