"""Partial runs: ``targets`` (those tasks and what they need upstream), ``from_tasks``
(those tasks and everything downstream, upstream results taken from the store), both, and
``wf.subset``. Tasks outside the selection stay ``PENDING``, get no event and are not
saved; ``RunStarted.total`` counts the selection. Every executor form, asyncio and trio,
without a store and with each built-in store.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    RunFinished,
    RunStarted,
    SequentialExecutor,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
)
from tests.helpers import EventLog
from tests.run_helpers import BUILT_IN, Runner, store_files

STORES = ["none", *(name for name, _ in BUILT_IN)]
ALL = {"a", "b", "c", "d", "e", "f"}


class Chain:
    """``a -> b -> c -> d``, ``a -> e``, and ``f`` alone. Each returns its name joined to
    what it received; ``c`` adds how often it ran, so that each run of it differs."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.c_runs = 0
        self.fail: set[str] = set()

    def take(self) -> set[str]:
        with self.lock:
            calls, self.calls = self.calls, []
        return set(calls)

    def step(self, name: str) -> Any:
        def run(**upstream: Any) -> str:
            with self.lock:
                self.calls.append(name)
                if name == "c":
                    self.c_runs += 1
            if name in self.fail:
                raise ValueError(f"{name} broke")
            got = "+".join(str(upstream[k]) for k in sorted(upstream))
            suffix = str(self.c_runs) if name == "c" else ""
            return f"{name}{suffix}({got})"

        return run

    def workflow(self) -> Workflow:
        wf = Workflow("part")
        for name, deps in [
            ("a", []),
            ("b", ["a"]),
            ("c", ["b"]),
            ("d", ["c"]),
            ("e", ["a"]),
            ("f", []),
        ]:
            wf.add_task(Task(name, self.step(name)), depends_on=deps)
        return wf


def statuses(wf: Workflow) -> dict[str, TaskStatus]:
    return {t.name: t.status for t in wf.tasks}


def reported(log: EventLog) -> set[str]:
    """The tasks any event was about."""
    return {e.task for e in log.events if hasattr(e, "task")}


def saved(store: Any) -> set[str]:
    return set() if store is None else set(store.list_all_tasks("part"))


def only(wf: Workflow, done: set[str]) -> None:
    """``done`` completed, the others still ``PENDING`` with no result."""
    assert statuses(wf) == {
        name: TaskStatus.COMPLETED if name in done else TaskStatus.PENDING for name in ALL
    }
    assert all(t.result is None for t in wf.tasks if t.name not in done)


# -- targets ---------------------------------------------------------------------------------


def test_targets_run_what_they_need_and_leave_the_rest_alone(
    runner: Runner,
) -> None:
    ch = Chain()
    log = EventLog()
    wf = ch.workflow()
    runner.run(wf, targets=["c"], observer=log)
    assert ch.take() == {"a", "b", "c"}
    only(wf, {"a", "b", "c"})
    c = wf.get_task("c")
    assert c is not None
    assert c.result == "c1(b(a()))"
    assert reported(log) == {"a", "b", "c"}
    assert [e.total for e in log.of(RunStarted)] == [3]
    assert [e.status for e in log.of(RunFinished)] == ["COMPLETED"]
    if runner.store is not None:
        assert saved(runner.store) == {"a", "b", "c"}


def test_several_targets_share_their_upstream(
    runner: Runner,
) -> None:
    ch = Chain()
    log = EventLog()
    wf = ch.workflow()
    runner.run(wf, targets=("e", "b", "f"), observer=log)
    assert ch.take() == {"a", "b", "e", "f"}
    only(wf, {"a", "b", "e", "f"})
    assert [e.total for e in log.of(RunStarted)] == [4]


def test_targets_restore_what_they_can(stored: Runner) -> None:
    run = stored.run
    store = stored.store
    ch = Chain()
    run(ch.workflow(), targets=["c"])
    ch.take()
    wf = ch.workflow()
    run(wf)  # the whole workflow: what the partial run saved is restored
    assert ch.take() == {"d", "e", "f"}
    d = wf.get_task("d")
    assert d is not None
    assert d.result == "d(c1(b(a())))"
    store.delete_task_state("b", workflow="part")
    log = EventLog()
    wf = ch.workflow()
    run(wf, targets=["d"], observer=log)
    # b ran again and returned what it did: c and d stand (a was restored)
    assert ch.take() == {"b"}
    only(wf, {"a", "b", "c", "d"})
    assert reported(log) == {"a", "b", "c", "d"}


# -- from_tasks ------------------------------------------------------------------------------


def test_from_tasks_take_saved_upstream_results_from_the_store(
    stored: Runner,
) -> None:
    run = stored.run
    store = stored.store
    ch = Chain()
    run(ch.workflow(), targets=["b", "f"])
    ch.take()
    log = EventLog()
    wf = ch.workflow()
    run(wf, from_tasks=["c"], observer=log)
    assert ch.take() == {"c", "d"}  # a and b are not run again
    d = wf.get_task("d")
    assert d is not None
    assert d.result == "d(c1(b(a())))"  # c received b's saved result
    assert statuses(wf)["c"] is TaskStatus.COMPLETED
    assert statuses(wf)["d"] is TaskStatus.COMPLETED
    assert {statuses(wf)[n] for n in ("a", "b", "e", "f")} == {TaskStatus.PENDING}
    assert reported(log) == {"c", "d"}  # the upstream results taken are not reported
    assert [e.total for e in log.of(RunStarted)] == [2]
    assert saved(store) == {"a", "b", "c", "d", "f"}


def test_from_tasks_run_the_named_tasks_even_when_their_saved_results_stand(
    stored: Runner,
) -> None:
    # `--from transform` after editing transform: the user asks for it to run again
    run = stored.run
    ch = Chain()
    run(ch.workflow())
    ch.take()
    wf = ch.workflow()
    run(wf, from_tasks=["c"])
    assert ch.take() == {"c", "d"}  # c's new result differs: d runs too
    d = wf.get_task("d")
    assert d is not None
    assert d.result == "d(c2(b(a())))"


def test_from_a_task_without_upstream_needs_no_store(
    runner: Runner,
) -> None:
    ch = Chain()
    log = EventLog()
    wf = ch.workflow()
    runner.run(wf, from_tasks=["a"], observer=log)
    assert ch.take() == {"a", "b", "c", "d", "e"}
    only(wf, {"a", "b", "c", "d", "e"})
    assert [e.total for e in log.of(RunStarted)] == [5]


def test_from_tasks_without_the_upstream_results_saved_is_refused_before_anything_runs(
    runner: Runner,
) -> None:
    ch = Chain()
    log = EventLog()
    with pytest.raises(WorkflowValidationError, match=r"'b'") as info:
        runner.run(ch.workflow(), from_tasks=["c"], observer=log)
    assert "'a'" not in str(info.value)  # c needs b's result only
    assert ch.take() == set()
    assert log.events == []
    assert saved(runner.store) == set()  # known once the store is read: nothing saved


def test_a_failed_upstream_record_is_no_result_for_from_tasks(
    stored: Runner,
) -> None:
    run = stored.run
    ch = Chain()
    ch.fail = {"b"}
    with pytest.raises(WorkflowExecutionError):
        run(ch.workflow())
    ch.fail = set()
    ch.take()
    log = EventLog()
    with pytest.raises(WorkflowValidationError, match=r"'b'"):
        run(ch.workflow(), from_tasks=["d", "c"], observer=log)
    assert ch.take() == set()
    assert log.events == []


# -- both, and unknown names -----------------------------------------------------------------


def test_targets_and_from_tasks_together_run_what_lies_between(
    stored: Runner,
) -> None:
    run = stored.run
    store = stored.store
    ch = Chain()
    run(ch.workflow(), targets=["a"])
    ch.take()
    log = EventLog()
    wf = ch.workflow()
    run(wf, from_tasks=["b"], targets=["c"], observer=log)
    assert ch.take() == {"b", "c"}
    assert reported(log) == {"b", "c"}
    assert [e.total for e in log.of(RunStarted)] == [2]
    assert {n for n, s in statuses(wf).items() if s is TaskStatus.PENDING} == {"a", "d", "e", "f"}
    assert saved(store) == {"a", "b", "c"}


def test_a_from_task_outside_the_targets_upstream_is_left_out(runner: Runner) -> None:
    # targets=["a"], from_tasks=["a", "f"]: f is not upstream of a, so not in the run
    ch = Chain()
    log = EventLog()
    wf = ch.workflow()
    runner.run(wf, targets=["a"], from_tasks=["a", "f"], observer=log)
    assert ch.take() == {"a"}
    only(wf, {"a"})
    assert [e.total for e in log.of(RunStarted)] == [1]
    plan = runner.plan(ch.workflow(), targets=["a"], from_tasks=["a", "f"])
    assert {n: p.action for n, p in plan.items()} == {
        "a": "run",
        **dict.fromkeys(["b", "c", "d", "e", "f"], "skip"),
    }


@pytest.mark.parametrize(
    ("selection", "names"),
    [
        ({"targets": ["nope"]}, ["nope"]),
        ({"from_tasks": ["nope"]}, ["nope"]),
        ({"targets": ["c", "zz"], "from_tasks": ["b"]}, ["zz"]),
    ],
    ids=["target", "from", "both"],
)
def test_unknown_names_are_refused_naming_them(
    runner: Runner,
    tmp_path: Path,
    selection: dict[str, Any],
    names: list[str],
) -> None:
    ch = Chain()
    log = EventLog()
    with pytest.raises(WorkflowValidationError) as info:
        runner.run(ch.workflow(), observer=log, **selection)
    for name in names:
        assert f"'{name}'" in str(info.value)
    assert ch.take() == set()
    assert log.events == []
    assert store_files(tmp_path) == {}


# -- Workflow.subset -------------------------------------------------------------------------


def test_a_subset_is_a_workflow_of_the_same_tasks_that_runs_the_same(
    runner: Runner,
) -> None:
    ch = Chain()
    wf = ch.workflow()
    sub = wf.subset(targets=["c"])
    assert isinstance(sub, Workflow)
    assert sub is not wf
    assert sub.name == wf.name
    assert {t.name for t in sub.tasks} == {"a", "b", "c"}
    assert all(t is wf.get_task(t.name) for t in sub.tasks)
    assert len(wf.tasks) == 6  # the workflow itself is unchanged
    log = EventLog()
    runner.run(sub, observer=log)
    assert ch.take() == {"a", "b", "c"}
    c = sub.get_task("c")
    assert c is not None
    assert c.result == "c1(b(a()))"
    assert [e.total for e in log.of(RunStarted)] == [3]


def test_a_subset_from_tasks_takes_saved_upstream_results(
    stored: Runner,
) -> None:
    run = stored.run
    ch = Chain()
    run(ch.workflow(), targets=["b"])
    ch.take()
    wf = ch.workflow()
    sub = wf.subset(from_tasks=["c"], targets=["c"])
    log = EventLog()
    run(sub, observer=log)
    assert ch.take() == {"c"}
    c = wf.get_task("c")
    assert c is not None
    assert c.result == "c1(b(a()))"
    assert reported(log) == {"c"}


def test_a_subset_of_unknown_tasks_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match="'nope'"):
        Chain().workflow().subset(targets=["nope"])
    with pytest.raises(WorkflowValidationError, match="'nope'"):
        Chain().workflow().subset(from_tasks=["nope"])


# -- maps and trigger rules inside a selection -----------------------------------------------


def mapped(ran: list[int]) -> Workflow:
    """``src`` -> ``proc`` (mapped over it) -> ``total``, and ``side`` alone."""

    def proc(src: int) -> int:
        ran.append(src)
        return src * 2

    wf = Workflow("mapped")
    wf.add_task(Task("src", lambda: [1, 2, 3]))
    wf.add_task(Task("proc", proc), map_over="src")
    wf.add_task(Task("total", lambda proc: sum(proc)), depends_on=["proc"])
    wf.add_task(Task("side", lambda: "side"))
    return wf


def test_a_map_inside_a_selection_runs_its_items(
    runner: Runner,
) -> None:
    ran: list[int] = []
    wf = mapped(ran)
    log = EventLog()
    runner.run(wf, targets=["proc"], observer=log)
    assert sorted(ran) == [1, 2, 3]
    assert statuses(wf) == {
        "src": TaskStatus.COMPLETED,
        "proc": TaskStatus.COMPLETED,
        "total": TaskStatus.PENDING,
        "side": TaskStatus.PENDING,
    }
    assert reported(log) <= {"src", "proc", "proc[0]", "proc[1]", "proc[2]"}
    if runner.store is None:
        return
    ran.clear()
    wf = mapped(ran)
    runner.run(wf, from_tasks=["total"])
    assert ran == []
    total = wf.get_task("total")
    assert total is not None
    assert total.result == 12


def test_trigger_rules_inside_a_selection_and_none_outside_it(
    runner: Runner,
) -> None:
    def broken() -> None:
        raise ValueError("a broke")

    wf = Workflow("rules")
    wf.add_task(Task("a", broken))
    wf.add_task(Task("b", lambda: "b"), depends_on=["a"])
    wf.add_task(Task("handler", lambda: "handled", trigger="one_failed"), depends_on=["a"])
    wf.add_task(Task("cleanup", lambda: "clean", trigger="all_done"), depends_on=["a"])
    log = EventLog()
    with pytest.raises(WorkflowExecutionError) as info:
        runner.run(wf, targets=["cleanup"], observer=log)
    assert info.value.failed_task == "a"
    assert info.value.skipped_tasks == []
    assert statuses(wf) == {
        "a": TaskStatus.FAILED,
        "b": TaskStatus.PENDING,
        "handler": TaskStatus.PENDING,
        "cleanup": TaskStatus.COMPLETED,
    }
    assert reported(log) == {"a", "cleanup"}


def test_workflow_execute_takes_a_selection() -> None:
    # the simplest form a script uses: Workflow.execute with options
    ch = Chain()
    wf = ch.workflow()
    wf.execute(SequentialExecutor(), targets=["e"])
    assert ch.take() == {"a", "e"}
    with pytest.raises(WorkflowValidationError, match="'zz'"):
        wf.execute(SequentialExecutor(), targets=["zz"])
