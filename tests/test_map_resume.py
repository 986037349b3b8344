"""A map resumes item by item: each item's record is keyed by its key and stands while its
element (by hash), its task's version and code and its other upstream results are the same.

Run 1 saves, run 2 (a new Workflow object of the same name) runs only the items whose
record does not stand. Every store (built-in and a user's five methods), blocking and
awaited, asyncio and trio. The SIGKILL test is in test_map_crash.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

import flowweaver.aio
from flowweaver import (
    JSONStateStore,
    SequentialExecutor,
    Skip,
    SQLiteStateStore,
    StateStoreError,
    Task,
    TaskRecord,
    TaskRestored,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
)
from flowweaver._store._resume import TaskFacts, element_digest, item_inputs, item_stands
from tests.helpers import EventLog
from tests.run_helpers import Runner
from tests.store_helpers import NOW
from tests.test_store_resume import STORES
from tests.test_store_sessions import DictStore

Run = Callable[..., None]


def runner(store: Any, executor_cls: type, awaited: bool, backend: str) -> Run:
    """``run(wf, **settings)``, keywords reaching the executor (``fresh=...``...)."""
    return Runner(store, executor_cls, awaited, backend).run


@pytest.fixture(params=STORES, ids=[name for name, _ in STORES])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return request.param[1](tmp_path)


# The built-in stores and a user's, each in its blocking form: the scenario tests.
KINDS = [
    ("json", lambda p: JSONStateStore(p / "state.json")),
    ("sqlite", lambda p: SQLiteStateStore(p / "state.db")),
    ("user", lambda p: DictStore()),
]


@pytest.fixture(params=[name for name, _ in KINDS])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Any:
    return dict(KINDS)[kind](tmp_path)


class Map:
    """``src`` (returns ``elements``) -> ``proc`` (mapped over it, and reading ``other``)
    -> ``total``; ``ran`` lists the elements ``proc`` ran on, in every run."""

    def __init__(self) -> None:
        self.ran: list[Any] = []
        self.fail: set[Any] = set()
        self.skip: set[Any] = set()
        self.interrupt: Any = None

    def workflow(
        self,
        elements: Sequence[Any],
        *,
        src_version: str | None = None,
        other_version: str | None = None,
        version: str | None = None,
        map_key: Callable[[Any], str] | None = None,
        on_item_failure: str = "fail",
        times: int = 10,
    ) -> Workflow:
        def src() -> list[Any]:
            return list(elements)

        def other() -> int:
            return times

        def proc(src: Any, other: int) -> Any:
            self.ran.append(src)
            if src == self.interrupt:
                raise KeyboardInterrupt
            if src in self.fail:
                raise ValueError(f"bad {src}")
            if src in self.skip:
                raise Skip(f"nothing for {src}")
            return src * other

        def total(proc: list[Any]) -> Any:
            return sum(proc)

        wf = Workflow("maps")
        wf.add_task(Task("src", src, version=src_version))
        wf.add_task(Task("other", other, version=other_version))
        wf.add_task(
            Task("proc", proc, version=version),
            depends_on=["other"],
            map_over="src",
            map_key=map_key,
            on_item_failure=on_item_failure,
        )
        wf.add_task(Task("total", total), depends_on=["proc"])
        return wf

    def take(self) -> list[Any]:
        ran, self.ran = self.ran, []
        return ran


def result(wf: Workflow, name: str = "proc") -> Any:
    t = wf.get_task(name)
    assert t is not None
    return t.result


def by_key(e: Any) -> str:
    return str(e["id"])


# -- every store, every form ------------------------------------------------------------


def test_only_the_failed_items_run_again(
    any_store: Any, form: tuple[type, bool], backend: str
) -> None:
    run = runner(any_store, *form, backend)
    m = Map()
    m.fail = {3, 5}
    with pytest.raises(WorkflowExecutionError):
        run(m.workflow(range(8)))
    assert sorted(m.take()) == list(range(8))
    m.fail = set()
    wf = m.workflow(range(8))
    run(wf)
    assert sorted(m.take()) == [3, 5]  # a FAILED item record blocks nothing
    assert result(wf) == [e * 10 for e in range(8)]
    assert result(wf, "total") == 280
    run(m.workflow(range(8)))
    assert m.take() == []  # the map is restored whole now


def test_an_interrupted_map_runs_only_the_items_not_saved(any_store: Any, backend: str) -> None:
    run = runner(any_store, SequentialExecutor, False, backend)
    m = Map()
    m.interrupt = 6
    with pytest.raises(KeyboardInterrupt):
        run(m.workflow(range(10)))
    assert m.take() == list(range(7))  # one at a time: 0..5 completed, 6 interrupted
    m.interrupt = None
    wf = m.workflow(range(10))
    run(wf)
    assert m.take() == [6, 7, 8, 9]
    assert result(wf) == [e * 10 for e in range(10)]


def test_an_awaited_map_cancelled_by_its_caller_runs_only_the_items_not_saved(
    any_store: Any, backend: str
) -> None:
    started = []

    async def main() -> None:
        with anyio.CancelScope() as scope:

            async def proc(src: int) -> int:
                started.append(src)
                if src == 4:
                    scope.cancel()  # the caller gives up: items 0..3 are saved
                    await anyio.sleep(1)
                return src

            wf = Workflow("maps")
            wf.add_task(Task("src", lambda: list(range(10))))
            wf.add_task(Task("proc", proc), map_over="src")
            await flowweaver.aio.SequentialExecutor(state_store=any_store).execute(wf)

    anyio.run(main, backend=backend)
    assert started[:5] == [0, 1, 2, 3, 4]
    started.clear()
    wf = Workflow("maps")
    wf.add_task(Task("src", lambda: list(range(10))))
    wf.add_task(Task("proc", lambda src: started.append(src) or src), map_over="src")
    runner(any_store, flowweaver.aio.SequentialExecutor, True, backend)(wf)
    assert started == list(range(started[0], 10))
    assert started[0] in (4, 5)  # 4 when the cancellation came before its record
    assert result(wf) == list(range(10))


# -- what stands, what runs again (each store, blocking) -------------------------------------


def test_a_rerun_source_with_the_same_list_restores_the_map_whole(store: Any, kind: str) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    run(m.workflow([1, 2, 3]))
    m.take()
    log = EventLog()
    wf = m.workflow([1, 2, 3], src_version="2")  # src runs again, returns the same list
    run(wf, observer=log)
    if kind == "user":
        # A user's store keeps no element hash: a source that ran again may have given
        # other elements, so every item runs again rather than risk a stale result.
        assert m.take() == [1, 2, 3]
        return
    # The map receives what it was saved with: it stands whole (early cut-off), without
    # expanding into items.
    assert m.take() == []
    assert [e.task for e in log.of(TaskRestored)] == ["other", "proc", "total"]
    proc = wf.get_task("proc")
    assert proc is not None
    assert proc.status is TaskStatus.COMPLETED
    assert proc.result == [10, 20, 30]
    assert result(wf, "total") == 60


def test_a_source_whose_list_changed_restores_the_items_that_did_not(store: Any, kind: str) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    run(m.workflow([1, 2, 3]))
    m.take()
    log = EventLog()
    wf = m.workflow([1, 2, 4], src_version="2")
    run(wf, observer=log)
    if kind == "user":
        assert m.take() == [1, 2, 4]
        return
    assert m.take() == [4]
    restored = [e for e in log.of(TaskRestored) if e.item is not None]
    assert [(e.task, e.item) for e in restored] == [("proc[0]", 0), ("proc[1]", 1)]
    proc = wf.get_task("proc")
    assert proc is not None
    assert [(t.name, t.status, t.result) for t in proc.items] == [
        ("proc[0]", TaskStatus.COMPLETED, 10),
        ("proc[1]", TaskStatus.COMPLETED, 20),
        ("proc[2]", TaskStatus.COMPLETED, 40),
    ]
    assert result(wf, "total") == 70


@pytest.mark.parametrize("kind", ["json", "sqlite"], indirect=True)
def test_a_longer_list_runs_only_the_new_items(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    run(m.workflow([1, 2, 3]))
    m.take()
    wf = m.workflow([1, 2, 3, 4, 5], src_version="2")
    run(wf)
    assert m.take() == [4, 5]
    assert result(wf) == [10, 20, 30, 40, 50]
    wf = m.workflow([1, 2], src_version="3")  # shorter: what is left is restored
    run(wf)
    assert m.take() == []
    assert result(wf) == [10, 20]


@pytest.mark.parametrize("kind", ["json", "sqlite"], indirect=True)
def test_with_map_key_a_changed_element_runs_and_a_new_order_runs_nothing(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    a, b, c = {"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}
    ran: list[str] = []

    def items(wf: Workflow) -> list[str]:
        proc = wf.get_task("proc")
        assert proc is not None
        return [t.name for t in proc.items]

    def build(elements: list[dict[str, Any]], version: str) -> Workflow:
        wf = Workflow("maps")
        wf.add_task(Task("src", lambda: elements, version=version))

        def proc(src: dict[str, Any]) -> int:
            ran.append(src["id"])
            return int(src["n"]) * 10

        wf.add_task(Task("proc", proc), map_over="src", map_key=by_key)
        return wf

    run(build([a, b, c], "1"))
    assert ran == ["a", "b", "c"]
    ran.clear()
    wf = build([c, a, b], "2")  # another order: every key's element is the same
    run(wf)
    assert ran == []
    assert result(wf) == [30, 10, 20]
    assert items(wf) == ["proc[c]", "proc[a]", "proc[b]"]
    wf = build([c, {"id": "a", "n": 5}, b, {"id": "d", "n": 4}], "3")
    run(wf)
    assert ran == ["a", "d"]  # a changed under its key, d is new
    assert result(wf) == [30, 50, 20, 40]


@pytest.mark.parametrize("kind", ["json", "sqlite"], indirect=True)
def test_without_map_key_keys_are_indices_so_moved_elements_run_again(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    run(m.workflow([1, 2, 3, 4]))
    m.take()
    wf = m.workflow([4, 2, 3, 1], src_version="2")  # proc[0] and proc[3] got new elements
    run(wf)
    assert m.take() == [4, 1]
    assert result(wf) == [40, 20, 30, 10]
    wf = m.workflow([0, 4, 2, 3, 1], src_version="3")  # one in front shifts every key
    run(wf)
    assert m.take() == [0, 4, 2, 3, 1]


def test_a_new_version_runs_every_item_again(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    run(m.workflow([1, 2, 3], version="1"))
    m.take()
    run(m.workflow([1, 2, 3], version="2", src_version="2"))
    assert m.take() == [1, 2, 3]
    run(m.workflow([1, 2, 3], version="2", src_version="3"))
    assert m.take() == ([] if not isinstance(store, DictStore) else [1, 2, 3])


@pytest.mark.parametrize("kind", ["json", "sqlite"], indirect=True)
def test_changed_code_runs_every_item_again_with_fingerprints_on(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    ran: list[int] = []

    def build(func: Callable[[int], int], version: str) -> Workflow:
        wf = Workflow("maps")
        wf.add_task(Task("src", lambda: [1, 2, 3], version=version))
        wf.add_task(Task("proc", func), map_over="src")
        return wf

    def double(src: int) -> int:
        ran.append(src)
        return src * 2

    def triple(src: int) -> int:
        ran.append(src)
        return src * 3

    run(build(double, "1"), fingerprint_code=True)
    run(build(double, "2"), fingerprint_code=True)
    assert ran == [1, 2, 3]  # same code: the second run restored every item
    wf = build(triple, "3")
    run(wf, fingerprint_code=True)
    assert ran == [1, 2, 3, 1, 2, 3]
    assert result(wf) == [3, 6, 9]


def test_a_rerun_non_source_upstream_task_runs_every_item_again(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    run(m.workflow([1, 2, 3]))
    m.take()
    wf = m.workflow([1, 2, 3], other_version="2")  # same value, computed again
    run(wf)
    # The map received what it was saved with: it stands (a user's store keeps no
    # inputs to tell: everything below the task that ran runs again there).
    assert m.take() == ([1, 2, 3] if isinstance(store, DictStore) else [])
    wf = m.workflow([1, 2, 3], other_version="3", times=100)
    run(wf)
    assert m.take() == [1, 2, 3]
    assert result(wf) == [100, 200, 300]


def test_a_fresh_run_runs_every_item(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    run(m.workflow([1, 2, 3]))
    m.take()
    run(m.workflow([1, 2, 3]), fresh=True)
    assert m.take() == [1, 2, 3]
    run(m.workflow([1, 2, 3], src_version="2"))
    assert m.take() == ([1, 2, 3] if isinstance(store, DictStore) else [])


def test_items_left_out_with_on_item_failure_skip_run_again_once_the_map_is_redone(
    store: Any,
) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    m.fail = {2}
    wf = m.workflow([1, 2, 3], on_item_failure="skip")
    run(wf)
    assert result(wf) == [10, 30]
    m.take()
    m.fail = set()
    wf = m.workflow([1, 2, 3], on_item_failure="skip")
    run(wf)
    assert m.take() == []  # the map completed: restored whole, as any completed task
    assert result(wf) == [10, 30]
    wf = m.workflow([1, 3, 2], on_item_failure="skip", src_version="2")
    run(wf)
    # A new list expands the map again: the item left out runs, the others stand.
    assert m.take() == ([1, 3, 2] if isinstance(store, DictStore) else [3, 2])
    assert result(wf) == [10, 30, 20]


def test_an_item_that_skipped_itself_is_restored_skipped(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    m = Map()
    m.skip = {2}
    wf = m.workflow([1, 2, 3])
    run(wf)
    assert m.take() == [1, 2, 3]
    assert result(wf) == [10, 30]
    log = EventLog()
    wf = m.workflow([1, 2, 3, 4], src_version="2")
    run(wf, observer=log)
    if isinstance(store, DictStore):
        assert m.take() == [1, 2, 3, 4]
        return
    assert m.take() == [4]
    assert result(wf) == [10, 30, 40]
    item = wf.get_task("proc[1]")
    assert item is not None
    assert item.status is TaskStatus.SKIPPED
    assert ("proc[1]", 1) in [(e.task, e.item) for e in log.of(TaskRestored)]


def test_an_element_without_a_hash_never_stands() -> None:
    # Reachable with a serializer of one's own: the source's result was saved, yet an
    # element is neither JSON nor picklable. Its item runs again rather than guess.
    assert element_digest(lambda: 1) is None
    rec = TaskRecord("p[0]", TaskStatus.COMPLETED, 1, None, NOW, "wf", token="t", inputs="")
    assert not item_stands(rec, "wf", TaskFacts(None), NOW, [], None, unchanged=True)
    assert item_inputs("", None) == ""
    digest = element_digest(1)
    rec.inputs = item_inputs("", digest)
    assert item_stands(rec, "wf", TaskFacts(None), NOW, [], digest, unchanged=False)


def test_which_item_records_stand() -> None:
    digest = element_digest({"id": 1})
    inputs = item_inputs("tok-other", digest)
    assert inputs == f"tok-other,#{digest}"

    def stands(**changes: Any) -> bool:
        status = TaskStatus.COMPLETED
        rec = TaskRecord("p[0]", status, 1, None, NOW, "wf", "v1", "fp", "tok", inputs)
        for name, value in changes.items():
            setattr(rec, name, value)
        facts = TaskFacts("v1", "fp")
        return item_stands(rec, "wf", facts, NOW, ["tok-other"], digest, unchanged=False)

    assert stands()
    assert stands(status=TaskStatus.SKIPPED)  # skipped on purpose: it has a token
    assert not stands(status=TaskStatus.SKIPPED, token=None)  # skipped by a rule
    assert not stands(status=TaskStatus.FAILED)
    assert not stands(workflow="other")
    assert stands(workflow=None)  # ownerless: taken by name
    assert not stands(version="v2")
    assert not stands(fingerprint="changed")
    assert not stands(inputs=item_inputs("tok-older", digest))
    assert not stands(inputs=item_inputs("tok-other", element_digest({"id": 2})))
    assert not stands(inputs=None)  # no hash to compare, and the upstream was not restored


def test_element_hashes_do_not_depend_on_dict_order_and_tell_types_apart() -> None:
    assert element_digest({"a": 1, "b": [1, 2]}) == element_digest({"b": [1, 2], "a": 1})
    assert element_digest(1) != element_digest("1")
    assert element_digest(1) != element_digest(1.0)
    assert element_digest({1, 2}) is not None  # not JSON: pickled


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_element_hashes_are_the_same_in_another_process() -> None:
    elements = [1, "ü", None, [1.5, True], {"z": {"y": [1, 2]}, "a": "b"}, (1, 2), 10**30]
    code = (
        "import json, sys\n"
        "from flowweaver._store._resume import element_digest\n"
        "print(json.dumps([element_digest(e) for e in eval(sys.argv[1])]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, repr(elements)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=True,
    ).stdout
    assert json.loads(out) == [element_digest(e) for e in elements]


def test_a_json_store_refuses_a_map_whose_items_belong_to_another_workflow(
    tmp_path: Path,
) -> None:
    store = JSONStateStore(tmp_path / "state.json")
    first = Workflow("orders")
    first.add_task(Task("src", lambda: [1, 2]))
    first.add_task(Task("proc", lambda src: src), map_over="src")
    SequentialExecutor(state_store=store).execute(first)
    store.delete_task_state("proc")  # what is left of orders' map: its items
    ran: list[int] = []
    second = Workflow("users")
    second.add_task(Task("list", lambda: ran.append(1) or [1]))
    second.add_task(Task("proc", lambda list: list), map_over="list")
    # Only proc's items are shared: the clash is seen before anything runs.
    with pytest.raises(StateStoreError, match=r"'proc\[0\]'.*'orders'.*'users'"):
        SequentialExecutor(state_store=store).execute(second)
    assert ran == []


def test_a_map_over_a_restored_map_keeps_its_keys(store: Any) -> None:
    run = runner(store, SequentialExecutor, False, "asyncio")
    ran: list[str] = []
    fail = {"B"}

    def build() -> Workflow:
        wf = Workflow("maps")
        wf.add_task(Task("src", lambda: ["a", "b", "x", "c"]))

        def upper(src: str) -> str:
            if src == "x":
                raise ValueError("no x")
            return src.upper()

        def twice(upper: str) -> str:
            ran.append(upper)
            if upper in fail:
                raise ValueError(upper)
            return upper * 2

        wf.add_task(Task("upper", upper), map_over="src", map_key=str, on_item_failure="skip")
        wf.add_task(Task("twice", twice), map_over="upper")  # its items take upper's keys
        return wf

    with pytest.raises(WorkflowExecutionError):
        run(build())
    assert ran == ["A", "B", "C"]
    fail.clear()
    wf = build()
    run(wf)  # upper is restored whole: twice still knows its items as a, b and c
    assert ran == ["A", "B", "C", "B"]
    twice = wf.get_task("twice")
    assert twice is not None
    assert [t.name for t in twice.items] == ["twice[a]", "twice[b]", "twice[c]"]
    assert twice.result == ["AA", "BB", "CC"]
