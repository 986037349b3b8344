"""A run freezes the objects that exist when it starts, and gives them back at its end."""

from __future__ import annotations

import gc
import threading

import pytest

from flowweaver import SequentialExecutor, Task, ThreadedExecutor, Workflow


def seen_freeze_count(wf: Workflow) -> list[int]:
    seen: list[int] = []
    wf.add_task(Task("probe", lambda: seen.append(gc.get_freeze_count())))
    return seen


def test_a_run_freezes_what_exists_and_unfreezes_at_its_end() -> None:
    assert gc.get_freeze_count() == 0
    wf = Workflow("gc")
    seen = seen_freeze_count(wf)
    SequentialExecutor().execute(wf)
    assert seen[0] > 0  # the workflow's objects were out of the collector's way
    assert gc.get_freeze_count() == 0


def test_a_failed_run_unfreezes_too() -> None:
    wf = Workflow("gc_fail")
    wf.add_task(Task("boom", lambda: 1 / 0))
    with pytest.raises(Exception, match="division"):
        SequentialExecutor().execute(wf)
    assert gc.get_freeze_count() == 0


def test_overlapping_runs_unfreeze_only_when_the_last_ends() -> None:
    release = threading.Event()
    started = threading.Event()
    slow = Workflow("slow")

    def wait() -> None:
        started.set()
        release.wait(10)

    slow.add_task(Task("wait", wait))
    thread = threading.Thread(target=ThreadedExecutor().execute, args=(slow,))
    thread.start()
    assert started.wait(10)
    quick = Workflow("quick")
    quick.add_task(Task("x", lambda: 1))
    SequentialExecutor().execute(quick)
    assert gc.get_freeze_count() > 0  # the slow run is still going
    release.set()
    thread.join(10)
    assert gc.get_freeze_count() == 0


def test_a_program_that_froze_objects_itself_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    gc.freeze()
    try:
        monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
        monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
        wf = Workflow("theirs")
        wf.add_task(Task("x", lambda: 1))
        SequentialExecutor().execute(wf)
        assert calls == []  # their frozen objects stay frozen
    finally:
        monkeypatch.undo()
        gc.unfreeze()


@pytest.mark.parametrize("executor", [SequentialExecutor, ThreadedExecutor])
def test_the_items_of_a_map_are_frozen_with_the_rest_and_unfrozen_at_the_end(
    executor: type,
) -> None:
    # A map's items live as long as the run, like the workflow: once made, they are out
    # of the collector's way too (thousands of new objects would be scanned over and over).
    counts: list[int] = []

    def source() -> list[int]:
        counts.append(gc.get_freeze_count())
        return list(range(2000))

    def after(item: list[None]) -> None:
        counts.append(gc.get_freeze_count())

    wf = Workflow("gc_map")
    wf.add_task(Task("source", source))
    wf.add_task(Task("item", lambda source: None), map_over="source")
    wf.add_task(Task("after", after), depends_on=["item"])
    executor().execute(wf)
    before, later = counts
    assert later - before >= 2000  # every item (a task object each) was frozen
    assert gc.get_freeze_count() == 0
