"""flowweaver.progress(): on a terminal (rich, live), in a pipe (occasional lines), in a
notebook (a display handle, faked here; tests/test_notebook_kernel.py uses a real kernel),
wrapping another observer, under every executor form and both backends."""

from __future__ import annotations

import io
import sys
import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from rich.console import Console

import flowweaver
import flowweaver._live as live
import flowweaver._notebook as notebook
import flowweaver._tally as tally
from flowweaver import (
    RunEvent,
    RunFinished,
    RunStarted,
    SequentialExecutor,
    Skip,
    Task,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
)
from tests.run_helpers import FORM_IDS, form_named


def mixed(pause: float = 0.0) -> Workflow:
    """A retry, a failure with a skipped downstream task, a Skip and a map of three."""
    calls = {"flaky": 0}

    def flaky() -> list[int]:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ValueError("first attempt fails")
        time.sleep(pause)
        return [1, 2, 3]

    def bad() -> None:
        raise RuntimeError("boom <b>")

    def skipper() -> None:
        raise Skip("not today")

    wf = Workflow("mixed")
    wf.add_task(Task("flaky", flaky, retries=1))
    wf.add_task(Task("bad", bad))
    wf.add_task(Task("after", lambda bad: bad), depends_on=["bad"])
    wf.add_task(Task("skipper", skipper))
    wf.add_task(Task("square", lambda flaky: flaky * flaky), map_over="flaky")
    return wf


def run(executor: Any, wf: Workflow) -> None:
    try:
        executor.execute(wf)
    except WorkflowExecutionError:
        pass


def pipe_console() -> Console:
    return Console(file=io.StringIO(), width=200)


def output(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_in_a_pipe_it_prints_the_start_failures_retries_and_the_end_only() -> None:
    console = pipe_console()
    run(SequentialExecutor(observer=flowweaver.progress(console=console)), mixed())
    lines = output(console).splitlines()
    assert lines[0] == "mixed: started, 5 tasks"
    assert lines[1] == "mixed: flaky attempt 1 failed: ValueError: first attempt fails"
    assert lines[2] == "mixed: bad FAILED after 1 attempt: RuntimeError: boom <b>"
    assert lines[3].startswith("mixed: FAILED 5/5 tasks · 1 failed · 2 skipped · 1 retry · ")
    assert lines[4:] == ["  square: 3 items done"]
    assert "\x1b[" not in output(console)


def test_in_a_pipe_the_lines_of_failures_are_bounded_and_counts_come_every_interval() -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    wf = Workflow("many")
    for i in range(50):
        wf.add_task(Task(f"t{i}", boom))
    console = pipe_console()
    run(SequentialExecutor(observer=flowweaver.progress(console=console)), wf)
    text = output(console)
    assert text.count("FAILED after") == tally.MAX_LINES
    assert text.count("further failures are counted, not listed") == 1
    assert text.splitlines()[-1].startswith("many: FAILED 50/50 tasks · 50 failed")

    console = pipe_console()
    wf = Workflow("slow")
    for i in range(3):
        wf.add_task(Task(f"t{i}", lambda: time.sleep(0.05)))
    run(SequentialExecutor(observer=flowweaver.progress(console=console, interval=0.01)), wf)
    counts = [line for line in output(console).splitlines() if " tasks · " in line]
    assert len(counts) >= 3  # a count line at events 0.01 s apart, and the end


def test_with_no_console_and_stderr_not_a_terminal_it_writes_lines_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run(SequentialExecutor(observer=flowweaver.progress()), mixed())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("mixed: started, 5 tasks\n")
    assert "mixed: FAILED 5/5 tasks" in captured.err


def test_on_a_terminal_it_draws_a_live_display_and_prints_failures_above_it() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    progress = flowweaver.progress(console=console, refresh_per_second=50)
    run(ThreadedExecutor(4, observer=progress), mixed(pause=0.5))  # many redraws, even loaded
    text = output(console)
    assert "━" in text  # the bar, drawn while the run was on
    assert "▶ flaky" in text  # a running task, with its attempt
    assert "(attempt 2)" in text
    assert "\x1b[?25l" in text
    assert text.rstrip().endswith("square: 3 items done")
    assert "mixed: bad FAILED after 1 attempt: RuntimeError: boom <b>" in text
    assert "mixed: FAILED 5/5 tasks" in text
    # rich's Live.stop() tells its refresh thread to stop but does not join it: give the
    # thread a moment to end, as a loaded machine may need
    deadline = time.monotonic() + 5
    while any(type(t).__name__ == "_RefreshThread" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "rich's refresh thread outlived the run"
        time.sleep(0.01)


def test_on_a_terminal_without_rich_it_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    monkeypatch.delitem(sys.modules, "flowweaver._live_term", raising=False)
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "rich", None)
    with pytest.raises(ImportError, match=r'pip install "flowweaver\[cli\]"'):
        flowweaver.progress()


def test_it_passes_every_event_on_to_the_observer_it_wraps() -> None:
    seen: list[RunEvent] = []
    alone: list[RunEvent] = []
    run(SequentialExecutor(observer=alone.append), mixed())
    progress = flowweaver.progress(seen.append, console=pipe_console())
    run(SequentialExecutor(observer=progress), mixed())
    assert [type(e) for e in seen] == [type(e) for e in alone]

    class Watcher:
        def __init__(self) -> None:
            self.events: list[RunEvent] = []

        def on_event(self, event: RunEvent) -> None:
            self.events.append(event)

    watcher = Watcher()
    run(SequentialExecutor(observer=flowweaver.progress(watcher, console=pipe_console())), mixed())
    assert len(watcher.events) == len(alone)


@pytest.mark.anyio
async def test_it_wraps_an_async_observer_and_watches_an_awaited_run() -> None:
    seen: list[RunEvent] = []

    async def observer(event: RunEvent) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event)

    console = pipe_console()
    progress = flowweaver.progress(observer, console=console)
    try:
        await flowweaver.aio.AsyncExecutor(observer=progress).execute(mixed())
    except WorkflowExecutionError:
        pass
    assert isinstance(seen[0], RunStarted)
    assert isinstance(seen[-1], RunFinished)
    assert "mixed: FAILED 5/5 tasks" in output(console)


def test_an_error_in_the_wrapped_observer_is_logged_and_the_display_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: RunEvent) -> None:
        raise RuntimeError("observer bug")

    console = pipe_console()
    run(SequentialExecutor(observer=flowweaver.progress(broken, console=console)), mixed())
    assert "mixed: FAILED 5/5 tasks" in output(console)
    assert "observer bug" in caplog.text


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(WorkflowValidationError, match="observer must be a callable"):
        flowweaver.progress(42)
    for bad in (0, -1, float("nan"), "4", True):
        with pytest.raises(WorkflowValidationError, match="refresh_per_second must be"):
            flowweaver.progress(refresh_per_second=bad)
        with pytest.raises(WorkflowValidationError, match="interval must be"):
            flowweaver.progress(interval=bad)


def test_one_progress_watches_two_runs_at_once_each_on_its_own() -> None:
    console = pipe_console()
    progress = flowweaver.progress(console=console)
    gate = threading.Barrier(2, timeout=10)

    def both_started() -> None:
        gate.wait()

    def workflow(name: str) -> Workflow:
        wf = Workflow(name)
        wf.add_task(Task("meet", both_started))
        wf.add_task(Task(f"{name}-only", lambda: None))
        return wf

    threads = [
        threading.Thread(target=SequentialExecutor(observer=progress).execute, args=(workflow(n),))
        for n in ("one", "two")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    lines = output(console).splitlines()
    assert sorted(line.split(" · ")[0] for line in lines if "COMPLETED" in line) == [
        "one: COMPLETED 2/2 tasks",
        "two: COMPLETED 2/2 tasks",
    ]
    assert progress.runs == {}


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_every_executor_form_and_backend_reports_the_same_counts(
    form_id: str, backend: str
) -> None:
    cls, awaited = form_named(form_id)
    console = pipe_console()
    progress = flowweaver.progress(console=console)
    executor = cls(observer=progress) if awaited else cls(observer=progress, backend=backend)
    wf = mixed()
    try:
        if awaited:
            anyio.run(executor.execute, wf, backend=backend)
        else:
            executor.execute(wf)
    except WorkflowExecutionError:
        pass
    last = [line for line in output(console).splitlines() if line.startswith("mixed: FAILED")]
    assert len(last) == 1
    assert last[0].startswith("mixed: FAILED 5/5 tasks · 1 failed · 2 skipped · 1 retry")


class FakeHandle:
    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundles = [bundle]

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        assert raw
        self.bundles.append(bundle)


def test_in_a_notebook_one_output_per_run_is_updated_in_place_until_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handles: list[FakeHandle] = []

    def display(obj: dict[str, str], raw: bool = False, display_id: bool = False) -> FakeHandle:
        assert raw
        assert display_id
        handles.append(FakeHandle(obj))
        return handles[-1]

    monkeypatch.setattr(live, "in_kernel", lambda: True)
    monkeypatch.setattr(notebook, "display", display)
    progress = flowweaver.progress(refresh_per_second=50)
    run(SequentialExecutor(observer=progress), mixed(pause=0.3))
    (handle,) = handles
    assert len(handle.bundles) >= 4  # the first, redraws while flaky slept, the last
    assert "RUNNING" in handle.bundles[0]["text/html"]
    last = handle.bundles[-1]
    assert set(last) == {"text/plain", "text/html"}
    assert last["text/plain"].startswith("mixed: FAILED 5/5 tasks · 1 failed · 2 skipped")
    assert "▦ square: 3 items done" in last["text/plain"]
    assert "✗ bad: RuntimeError: boom &lt;b&gt;" in last["text/html"]
    assert ">FAILED</span>" in last["text/html"]
    count = len(handle.bundles)
    time.sleep(0.2)  # ten ticks: none redraws a finished run
    assert len(handle.bundles) == count
    assert not any(t.name == "flowweaver-progress" for t in threading.enumerate())
