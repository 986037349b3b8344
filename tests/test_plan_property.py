"""The plan and the run agree, on random DAGs: sync and async tasks, some with a
``cache_key``, run once, then changed at random (params changed, given or removed,
versions bumped, records deleted or older than ``cache_ttl``, a random ``targets`` /
``from_tasks`` selection), planned and run again. Every task planned ``restore`` is
restored, ``skip`` gets no start, ``run`` runs, and ``run`` with ``unless_unchanged`` runs
or is restored as a model of the run says (restored exactly when what it receives is
what it was saved with); the results are the model's: nothing stale is restored.
"""

from __future__ import annotations

import inspect
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowweaver import (
    Plan,
    Task,
    TaskRestored,
    TaskStarted,
    TaskStatus,
    Workflow,
    WorkflowValidationError,
)
from tests.helpers import EventLog
from tests.run_helpers import BUILT_IN, FORMS, Runner, age_records
from tests.test_plan import REMOVED, actions
from tests.test_store_sessions import AsyncDictStore, DictStore

PARAMS = ("p0", "p1", "p2")
_PRIME = (1 << 61) - 1


@dataclass(frozen=True)
class Node:
    """One task of a random DAG: ``n{i}``, taking its upstream results and ``takes``
    (each with a default of 0), returning a hash of them modulo ``modulus`` (a small one
    makes equal results, so early cut-off, frequent). A ``keyed`` task has a
    ``cache_key``: the sum of its keyword arguments modulo 3."""

    deps: tuple[int, ...]
    takes: tuple[str, ...]
    modulus: int
    is_async: bool
    keyed: bool = False


def node_value(i: int, node: Node, upstream: dict[str, int], params: dict[str, int]) -> int:
    acc = i * 7919 + 1
    for name in sorted(upstream):
        acc = (acc * 31 + upstream[name] + 1) % _PRIME
    for p in node.takes:
        acc = (acc * 37 + params.get(p, 0) + 1) % _PRIME
    return acc % node.modulus


def cache_key(**kwargs: int) -> str:
    return f"k{sum(kwargs.values()) % 3}"


class NodeCall:
    """A sync task function with exactly the keywords of its node (read from
    ``__signature__``), logging its calls."""

    def __init__(self, i: int, node: Node, calls: list[str]) -> None:
        self.i = i
        self.node = node
        self.calls = calls
        keywords = [f"n{j}" for j in node.deps] + list(node.takes)
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=0) for k in keywords]
        )

    def compute(self, kwargs: dict[str, Any]) -> int:
        self.calls.append(f"n{self.i}")
        upstream = {k: v for k, v in kwargs.items() if k.startswith("n")}
        params = {k: v for k, v in kwargs.items() if k.startswith("p")}
        return node_value(self.i, self.node, upstream, params)

    def __call__(self, **kwargs: Any) -> int:
        return self.compute(kwargs)


class AsyncNodeCall(NodeCall):
    async def __call__(self, **kwargs: Any) -> int:  # type: ignore[override]
        await anyio.lowlevel.checkpoint()
        return self.compute(kwargs)


def build(nodes: list[Node], versions: dict[int, str], calls: list[str]) -> Workflow:
    wf = Workflow("random_plan")
    for i, node in enumerate(nodes):
        func = (AsyncNodeCall if node.is_async else NodeCall)(i, node, calls)
        wf.add_task(
            Task(
                f"n{i}",
                func,
                version=versions.get(i, "1"),
                cache_key=cache_key if node.keyed else None,
                cache_ttl=3600,  # stale only where a test ages the record by hours
            ),
            depends_on=[f"n{j}" for j in node.deps],
        )
    return wf


@dataclass
class Model:
    """What a run leaves, worked out without running: each task's result, the key its
    ``cache_key`` gave (keyed tasks), and which tasks ran and which were restored."""

    values: dict[str, int]
    keys: dict[str, str]
    ran: set[str]
    restored: set[str]


def kwargs_of(node: Node, values: dict[str, int], params: dict[str, int]) -> dict[str, int]:
    """What a task receives: its upstream results and the params given that it takes."""
    out = {f"n{j}": values[f"n{j}"] for j in node.deps}
    out.update({p: params[p] for p in node.takes if p in params})
    return out


@dataclass(frozen=True)
class Part:
    """The part of a random DAG a run holds: ``selected`` tasks run or are restored,
    ``given`` ones (upstream of ``from_tasks``) pass on their saved results, ``forced``
    ones (``from_tasks``) run whatever they saved."""

    selected: frozenset[int]
    given: frozenset[int] = frozenset()
    forced: frozenset[int] = frozenset()


def part_of(nodes: list[Node], selection: dict[str, list[int]]) -> Part:
    """What ``targets`` / ``from_tasks`` (task indices) select, as the issue says."""
    down: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for j in node.deps:
            down[j].append(i)

    def closure(start: list[int], edges: Any) -> set[int]:
        seen, stack = set(start), list(start)
        while stack:
            for j in edges(stack.pop()):
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        return seen

    chosen = set(range(len(nodes)))
    if "targets" in selection:
        chosen &= closure(selection["targets"], lambda i: nodes[i].deps)
    start = selection.get("from_tasks", [])
    if start:
        chosen &= closure(start, lambda i: down[i])
    given = {j for i in chosen for j in nodes[i].deps if j not in chosen}
    return Part(frozenset(chosen), frozenset(given), frozenset(start))


def model_run(
    nodes: list[Node],
    params: dict[str, int],
    saved: Model | None,
    own: Any = None,
    part: Part | None = None,
) -> Model:
    """A run with ``params`` over what ``saved`` left (None: an empty store). ``own(i)``
    says why task ``i`` runs whatever it receives (a deleted record, a new version, a
    changed param, from_tasks); a keyed task's params are in its key instead. Only the
    tasks of ``part`` run or are restored; its given tasks pass on what they saved."""
    m = Model({}, {}, set(), set())
    for i, node in enumerate(nodes):
        name = f"n{i}"
        if part is not None and i not in part.selected:
            if i in part.given and saved is not None:
                m.values[name] = saved.values[name]
            continue
        kwargs = kwargs_of(node, m.values, params)
        key = cache_key(**kwargs)
        if saved is not None and not (own(i, node) if not node.keyed else own(i, None)):
            if node.keyed:
                stands = saved.keys[name] == key
            else:
                stands = all(m.values[f"n{j}"] == saved.values[f"n{j}"] for j in node.deps)
            if stands:
                m.values[name] = saved.values[name]
                m.keys[name] = saved.keys.get(name, key)
                m.restored.add(name)
                continue
        upstream = {k: v for k, v in kwargs.items() if k.startswith("n")}
        m.values[name] = node_value(i, node, upstream, params)
        m.keys[name] = key
        m.ran.add(name)
    return m


@st.composite
def random_dags(draw: st.DrawFn) -> list[Node]:
    n = draw(st.integers(1, 10))
    nodes = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 3), unique=True)) if i else []
        takes = draw(st.lists(st.sampled_from(PARAMS), max_size=2, unique=True))
        modulus = draw(st.sampled_from([2, 3, 1_000_003]))
        keyed = draw(st.integers(0, 4)) == 0
        nodes.append(Node(tuple(deps), tuple(takes), modulus, draw(st.booleans()), keyed))
    return nodes


def given_params(draw: st.DrawFn, nodes: list[Node]) -> dict[str, int]:
    """Params for some of those the tasks take (a param no task takes is an error)."""
    taken = sorted({p for node in nodes for p in node.takes})
    chosen = draw(st.lists(st.sampled_from(taken), unique=True)) if taken else []
    return {p: draw(st.integers(0, 2)) for p in chosen}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Node], dict[str, int], dict[str, int], Any]:
    nodes = draw(random_dags())
    first = given_params(draw, nodes)
    second = given_params(draw, nodes)
    indices = st.sets(st.integers(0, len(nodes) - 1), max_size=3)
    changes = {"bumped": draw(indices), "deleted": draw(indices), "aged": draw(indices)}
    picks = st.lists(st.integers(0, len(nodes) - 1), min_size=1, max_size=2, unique=True)
    kind = draw(st.sampled_from(["whole", "whole", "targets", "from_tasks", "both"]))
    selection = {}
    if kind in ("targets", "both"):
        selection["targets"] = draw(picks)
    if kind in ("from_tasks", "both"):
        selection["from_tasks"] = draw(picks)
    changes["selection"] = selection
    return nodes, first, second, changes


def own_reasons(
    i: int, node: Node | None, first: dict[str, int], second: dict[str, int], changes: Any
) -> list[str]:
    """What makes task ``i`` run whatever it receives (empty: nothing). ``node`` None: its
    params do not count (a keyed task's are in its key)."""
    found = []
    if i in changes["deleted"]:
        found.append("no saved result")
    if i in changes["bumped"]:
        found += ["version '2' != '1'", "version 2 != 1"]
    if i in changes["aged"]:
        found.append("older than cache_ttl")
    for p in node.takes if node is not None else ():
        if p in first and p not in second:
            found.append(REMOVED)
        elif first.get(p) != second.get(p):
            found.append(f"parameter `{p}` changed")
    return found


def check_plan(
    plan: Plan, nodes: list[Node], saved: Model, second: Any, own: Any, part: Part
) -> None:
    """The plan says what the rules say of each task."""
    known = {f"n{i}": saved.values[f"n{i}"] for i in range(len(nodes))}
    for i, node in enumerate(nodes):
        name = f"n{i}"
        if i not in part.selected:
            why = "taken from the store for the selection" if i in part.given else "not selected"
            assert (plan[name].action, plan[name].reason) == ("skip", why), name
            continue
        reasons = own(i, None if node.keyed else node)
        upstream_runs = [f"n{j}" for j in node.deps if plan[f"n{j}"].action == "run"]
        if reasons:
            assert actions(plan)[name] == ("run", False), name
            assert plan[name].reason in reasons, name
        elif upstream_runs:
            assert actions(plan)[name] == ("run", True), name
            why = {f"upstream `{u}` will run" for u in upstream_runs}
            if node.keyed:
                why.add("its cache_key decides when it is ready")
            assert plan[name].reason in why, name
        elif node.keyed:  # every upstream result is known: the plan asks the key
            same = cache_key(**kwargs_of(node, known, second)) == saved.keys[name]
            assert actions(plan)[name] == (("restore", False) if same else ("run", False)), name
        else:
            assert actions(plan)[name] == ("restore", False), name


def check_run(plan: Plan, log: EventLog, model: Model | None) -> None:
    """The run did what the plan said of each task, and what the model says (if any)."""
    ran = {e.task for e in log.of(TaskStarted)}
    restored = {e.task for e in log.of(TaskRestored)}
    if model is not None:
        assert (ran, restored) == (model.ran, model.restored)
    for name, planned in plan.items():
        did = (name in ran, name in restored)
        if planned.action == "restore":
            assert did == (False, True), name
        elif planned.action == "skip":
            assert did == (False, False), name
        elif not planned.unless_unchanged:
            assert did == (True, False), name
        else:
            assert did in ((True, False), (False, True)), name


# Both properties: 30 random scenarios each, no deadline (a run takes what it takes).
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    scenario=scenarios(),
    form=st.sampled_from(FORMS),
    backend=st.sampled_from(["asyncio", "trio"]),
    kind=st.sampled_from([name for name, _ in BUILT_IN]),
)
def test_the_run_does_what_the_plan_says_on_random_dags(
    scenario: Any, form: Any, backend: str, kind: str
) -> None:
    nodes, first, second, changes = scenario
    names = {k: [f"n{i}" for i in v] for k, v in changes["selection"].items()}
    part = part_of(nodes, changes["selection"])

    def own(i: int, node: Node | None) -> list[str]:
        forced = ["selected with from_tasks"] if i in part.forced else []
        return own_reasons(i, node, first, second, changes) + forced

    calls: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = dict(BUILT_IN)[kind](Path(tmp))
        runner = Runner(store, form[1], form[2], backend)
        runner.run(build(nodes, {}, calls), params=first)
        saved = model_run(nodes, first, None)
        for i in changes["deleted"]:
            store.delete_task_state(f"n{i}", workflow="random_plan")
        aged = [f"n{i}" for i in changes["aged"]]
        age_records(store, "random_plan", aged, timedelta(hours=2))
        versions = dict.fromkeys(changes["bumped"], "2")

        calls.clear()
        if not part.selected or part.given & changes["deleted"]:
            # nothing between the names, or an upstream result from_tasks needs is gone
            with pytest.raises(WorkflowValidationError):
                runner.plan(build(nodes, versions, calls), params=second, **names)
            with pytest.raises(WorkflowValidationError):
                runner.run(build(nodes, versions, calls), params=second, **names)
            assert calls == []
            return
        plan = runner.plan(build(nodes, versions, calls), params=second, **names)
        check_plan(plan, nodes, saved, second, own, part)

        log = EventLog()
        wf = build(nodes, versions, calls)
        runner.run(wf, params=second, observer=log, **names)
        model = model_run(nodes, second, saved, own, part)
        results = {t.name: t.result for t in wf.tasks if int(t.name[1:]) in part.selected}
        assert results == {n: v for n, v in model.values.items() if int(n[1:]) in part.selected}
        left = {t.name for t in wf.tasks if t.status is TaskStatus.PENDING}
        assert left == {f"n{i}" for i in range(len(nodes)) if i not in part.selected}
        assert sorted(calls) == sorted(e.task for e in log.of(TaskStarted))  # each once
        check_run(plan, log, model)
        if changes["selection"]:
            return

        # and a plan right after a whole run: everything stands
        plan = runner.plan(build(nodes, versions, calls), params=second)
        assert plan.counts() == {"run": 0, "restore": len(nodes), "skip": 0}


@PROPERTY
@given(
    scenario=scenarios(),
    form=st.sampled_from(FORMS),
    backend=st.sampled_from(["asyncio", "trio"]),
    store_cls=st.sampled_from([DictStore, AsyncDictStore]),
)
def test_the_run_does_what_the_plan_says_on_a_users_store(
    scenario: Any, form: Any, backend: str, store_cls: type
) -> None:
    # A user's store of five methods keeps no inputs: fewer results stand (no cut-off, a
    # task that takes params always runs), but the plan still says what the run does.
    nodes, first, second, changes = scenario
    names = {k: [f"n{i}" for i in v] for k, v in changes["selection"].items()}
    store = store_cls()
    runner = Runner(store, form[1], form[2], backend)
    calls: list[str] = []
    runner.run(build(nodes, {}, calls), params=first)
    for i in changes["deleted"]:
        store.states.pop(f"n{i}", None)
    versions = dict.fromkeys(changes["bumped"], "2")
    try:
        plan = runner.plan(build(nodes, versions, calls), params=second, **names)
    except WorkflowValidationError:
        with pytest.raises(WorkflowValidationError):
            runner.run(build(nodes, versions, calls), params=second, **names)
        return
    log = EventLog()
    runner.run(build(nodes, versions, calls), params=second, observer=log, **names)
    check_run(plan, log, None)
