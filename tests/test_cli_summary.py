"""The end of ``flowweaver run``: the summary table of a big run, the live display's
bounds, the failures' tracebacks and the final line (in this process, with real runs)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

import flowweaver
from flowweaver import Task, Workflow
from flowweaver._cli._output import Output
from flowweaver._cli._progress import LiveProgress, RunState
from flowweaver._cli._summary import finish_line, show_failures, summarise
from flowweaver._events import RunStarted, TaskCompleted, TaskFailed, TaskRetrying, TaskStarted


@contextmanager
def _isolated(runner: CliRunner) -> Iterator[tuple[Any, Any]]:
    """``(stdout, stderr)`` buffers of click's isolation: click 8.2 yields three streams;
    8.1 (the lowest bound) two, stderr None when it is mixed into stdout."""
    with runner.isolation() as streams:
        out = _Kept(streams[0])
        err = _Kept(streams[1]) if streams[1] is not None else out
        try:
            yield out, err
        finally:
            out.keep()
            err.keep()


class _Kept:
    """A stream of click's isolation whose value outlives it (8.1 closes them on exit)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.value: bytes | None = None

    def keep(self) -> None:
        if self.value is None:
            self.value = self.stream.getvalue()

    def getvalue(self) -> bytes:
        return self.value if self.value is not None else self.stream.getvalue()  # type: ignore[no-any-return]


def noop(**kw: object) -> None:
    return None


def boom(**kw: object) -> None:
    raise ValueError("bad input")


def flaky() -> Callable[..., None]:
    tries = [0]

    def run(**kw: object) -> None:
        tries[0] += 1
        if tries[0] == 1:
            raise TimeoutError("slow")

    return run


def run(wf: Workflow) -> RunState:
    mapped = {t.name: t for t in wf.tasks if t.map_over is not None}
    state = RunState(wf.name, len(wf.tasks), mapped)
    try:
        flowweaver.SequentialExecutor(observer=state.apply).execute(wf)
    except flowweaver.WorkflowExecutionError:
        pass
    return state


def table(wf: Workflow, state: RunState, show_all: bool = False) -> str:
    runner = CliRunner()
    with _isolated(runner) as (out, _err):
        summarise(Output(False), wf.tasks, state, show_all=show_all)
    return out.getvalue().decode()


def rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("task "))
    found = {}
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith("and "):
            break
        name, *cells = re.split(r"\s{2,}", line.strip())
        found[name] = cells
    return found


def big_flow() -> Workflow:
    wf = Workflow("big")
    wf.add_task(Task("extract", boom))
    wf.add_task(Task("retried", flaky(), retries=1))
    wf.add_task(Task("below", noop), depends_on=["extract"])
    for i in range(200):
        wf.add_task(Task(f"t{i}", noop))
    return wf


def test_a_big_runs_table_shows_failed_retried_and_the_slowest_and_counts_the_rest() -> None:
    wf = big_flow()
    text = table(wf, run(wf))
    shown = rows(text)
    assert shown["extract"][:2] == ["FAILED", "1"]
    assert shown["retried"][:2] == ["COMPLETED", "2"]
    assert "below" not in shown  # skipped: counted
    assert len(shown) in (6, 7)  # the failed, the retried, the five slowest (it may be one)
    assert "203 tasks; shown: 1 failed, 1 retried, the 5 slowest\n" in text
    assert re.search(
        r"^and 19\d more: 19\d completed, 1 skipped \(--all shows every task\)$", text, re.M
    )


def test_all_shows_every_row_and_a_small_run_always_does() -> None:
    wf = big_flow()
    state = run(wf)
    assert len(rows(table(wf, state, show_all=True))) == 203
    small = Workflow("small")
    for i in range(20):
        small.add_task(Task(f"s{i}", noop))
    text = table(small, run(small))
    assert len(rows(text)) == 20
    assert "shown:" not in text
    assert "more" not in text


def test_each_kind_of_row_is_capped() -> None:
    wf = Workflow("broken")
    for i in range(50):
        wf.add_task(Task(f"b{i}", boom))
    text = table(wf, run(wf))
    assert len([r for r in rows(text).values() if r[0] == "FAILED"]) == 20
    assert "50 tasks; shown: 20 of 50 failed\n" in text
    assert "and 30 more failed (--all shows every task)" in text


def test_a_mapped_task_is_one_row_with_its_item_counts() -> None:
    def source() -> list[int]:
        return list(range(40))

    def load(source: int) -> int:
        if source % 10 == 0:
            raise ValueError("bad")
        return source

    wf = Workflow("maps")
    wf.add_task(Task("source", source))
    wf.add_task(Task("load", load, map_over="source", on_item_failure="skip"))
    for i in range(30):
        wf.add_task(Task(f"t{i}", noop))
    text = table(wf, run(wf))
    shown = rows(text)
    assert shown["load"] == ["COMPLETED", "1", shown["load"][2], "36/40 done, 4 failed"]
    assert not any(name.startswith("load[") for name in shown)
    assert "1 mapped" in text
    assert "load: 36 of 40 items completed, 4 failed: load[0], load[10]," in text


def test_tracebacks_of_at_most_five_failed_tasks_unless_verbose() -> None:
    wf = Workflow("broken")
    for i in range(8):
        wf.add_task(Task(f"b{i}", boom))
    run(wf)
    runner = CliRunner()
    with _isolated(runner) as (_out, err):
        show_failures(wf.tasks)
    text = err.getvalue().decode()
    assert text.count("Traceback (most recent call last)") == 5
    assert "(and 3 more failed tasks: --verbose prints every traceback)" in text
    with _isolated(runner) as (_out, err):
        show_failures(wf.tasks, every=True)
    assert err.getvalue().decode().count("Traceback (most recent call last)") == 8


def test_the_final_line_names_at_most_five_failed_tasks() -> None:
    wf = Workflow("broken")
    for i in range(8):
        wf.add_task(Task(f"b{i}", boom))
    state = run(wf)
    runner = CliRunner()
    with _isolated(runner) as (out, _err):
        finish_line(Output(False), wf, wf.tasks, state, "failed", None)
    assert "(failed: b0, b1, b2, b3, b4 and 3 more)." in out.getvalue().decode()


# -- the live display -----------------------------------------------------------------------


def screen(progress: LiveProgress) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(progress.__rich__())
    return console.export_text()


def test_the_live_display_draws_a_bounded_number_of_rows_at_100000_tasks() -> None:
    console = Console(width=100, record=True, color_system=None)
    state = RunState("huge", 100_000)
    progress = LiveProgress(state, console)
    progress(RunStarted("huge", 1000.0, 100_000))
    for i in range(500):  # the oldest first: they have run longest
        progress(TaskStarted("huge", 1000.0 + i, f"t{i}", 1))
    text = screen(progress)
    running = re.findall(r"▶ (t\d+)", text)
    assert running == [f"t{i}" for i in range(8)]
    assert "… and 492 more" in text
    assert "0/100,000" in text
    assert "500 running" in text
    assert len(text.splitlines()) == 11


def test_the_live_display_prints_the_first_failures_and_retries_then_counts_them() -> None:
    console = Console(width=200, record=True, color_system=None)
    state = RunState("w", 100)
    progress = LiveProgress(state, console)
    progress(RunStarted("w", 1000.0, 100))
    for i in range(30):
        progress(TaskRetrying("w", 1001.0, f"t{i}", 1, 0.0, TimeoutError("slow")))
        progress(TaskFailed("w", 1002.0, f"t{i}", 2, 1.0, ValueError("bad")))
        progress(TaskFailed("w", 1002.0, f"m[{i}]", 1, 1.0, ValueError("bad"), item=i))
    printed = console.export_text()
    assert printed.count("retrying   t") == 10
    assert printed.count("FAILED     t") == 10
    assert printed.count("FAILED     m[") == 5
    assert "30 failed" in screen(progress)


@pytest.mark.parametrize("verbose", [False, True])
def test_verbose_on_a_terminal_prints_every_event_above_the_display(verbose: bool) -> None:
    console = Console(width=200, record=True, color_system=None)
    progress = LiveProgress(RunState("w", 3), console, verbose=verbose)
    wf = Workflow("w")
    for i in range(3):
        wf.add_task(Task(f"t{i}", noop))
    flowweaver.SequentialExecutor(observer=progress).execute(wf)
    printed = console.export_text()
    assert printed.count("started    t") == (3 if verbose else 0)


def test_the_live_display_shows_a_retried_task_waiting_then_on_its_next_attempt() -> None:
    console = Console(width=100, record=True, color_system=None)
    state = RunState("w", 2)
    progress = LiveProgress(state, console)
    progress(RunStarted("w", 1000.0, 2))
    progress(TaskStarted("w", 1000.0, "flaky", 1))
    progress(TaskRetrying("w", 1001.0, "flaky", 1, 5.0, TimeoutError("slow")))
    assert "▶ flaky" in screen(progress)
    assert "(waiting to retry)" in screen(progress)
    progress(TaskStarted("w", 1006.0, "flaky", 2))
    assert "(attempt 2)" in screen(progress)
    assert state.running == {"flaky": 1000.0}  # running since its first attempt began
    assert state.retried == ["flaky"]
    progress(TaskCompleted("w", 1007.0, "flaky", 2, 7.0))
    assert (state.running, state.again, state.waiting, state.completed) == ({}, {}, set(), 1)
