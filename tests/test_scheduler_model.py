"""The scheduler alone against the model of the rules, on random DAGs (no loop, no threads).

The same random DAGs as the executors' differential test (``tests/_async/
test_differential.py``), plus maps, driven straight through the scheduler the way the
driver drives it: attempts end in a random order, records become durable at random
moments, mapped nodes expand when handed out and are ended once gathered, and the
scheduler's counters are checked at every step. The ends, items' included, must be the
model's (``tests.helpers.expected_outcome``).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from flowweaver._engine._scheduler import (
    DONE,
    FAILED,
    HELD,
    PUBLIC_STATUS,
    SKIPPED,
    Failure,
    Scheduler,
)
from flowweaver._outcomes import TRIGGER_RULES
from tests.helpers import NodeSpec, expected_outcome, scheduler_faults

# The default rule three times as often as each other one, as in real workflows.
TRIGGERS = ["all_success"] * 3 + ["all_done", "none_failed", "one_failed", "one_success"]
# A mapped node waits for what it maps over: a ONE_* rule could hand it out before its
# source ended (what it would then map over depends on timing, see the report of issue 11).
MAP_TRIGGERS = ["all_success"] * 3 + ["all_done", "none_failed"]
FAILURES = [0, 0, 0, 1, 2, 9]
SKIPS = [False, False, False, True]


@st.composite
def dags(draw: st.DrawFn, rules: bool = True, maps: bool = True) -> list[NodeSpec]:
    n = draw(st.integers(min_value=1, max_value=30))
    specs = []
    for i in range(n):
        # no repeats: add_graph takes upstream lists as Graph gives them
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 4), unique=True)) if i else []
        failures = draw(st.sampled_from(FAILURES))
        retries = draw(st.integers(0, 2))
        if maps and deps and draw(st.integers(0, 3)) == 0:
            items = draw(
                st.lists(st.tuples(st.sampled_from(FAILURES), st.sampled_from(SKIPS)), max_size=6)
            )
            trigger = draw(st.sampled_from(MAP_TRIGGERS)) if rules else "all_success"
            policy = draw(st.sampled_from(["fail", "skip"]))
            limit = draw(st.sampled_from([None, 1, 2, 3]))
            specs.append(
                NodeSpec(
                    tuple(deps), "sync", 0, retries, trigger, False, tuple(items), policy, limit
                )
            )
            continue
        trigger = draw(st.sampled_from(TRIGGERS)) if rules else "all_success"
        skip = rules and draw(st.sampled_from(SKIPS))
        specs.append(NodeSpec(tuple(deps), "sync", failures, retries, trigger, skip))
    return specs


@settings(max_examples=300, deadline=None)
@given(
    specs=dags(),
    concurrency=st.integers(1, 5),
    held=st.booleans(),
    seed=st.integers(0, 2**32),
    grow=st.booleans(),
)
def test_random_dags_end_as_the_model_says(
    specs: list[NodeSpec], concurrency: int, held: bool, seed: int, grow: bool
) -> None:
    rng = random.Random(seed)
    s = Scheduler(concurrency)
    # Node ids: spec k is node[k]; an item is (spec, element). Items take ids as they are
    # added, so with grow, nodes added later get ids after them.
    node: list[int] = []
    spec_of: dict[int, int] = {}
    item_of: dict[int, tuple[int, int]] = {}

    def add(k: int) -> None:
        spec = specs[k]
        i = s.add([node[j] for j in spec.deps], spec.retries, TRIGGER_RULES.index(spec.trigger))
        node.append(i)
        spec_of[i] = k

    if grow:
        # Nodes added one by one, some of them while the run is under way.
        split = rng.randint(0, len(specs))
        for k in range(split):
            add(k)
    else:
        split = len(specs)
        rules = {
            i: TRIGGER_RULES.index(spec.trigger)
            for i, spec in enumerate(specs)
            if spec.trigger != "all_success"
        }
        s.add_graph([spec.deps for spec in specs], [spec.retries for spec in specs], rules)
        node = list(range(len(specs)))
        spec_of = {i: i for i in node}
    failed: list[int] = []
    on_purpose: set[int] = set()
    in_flight: list[int] = []
    holding: list[int] = []

    def gather() -> None:
        """The driver's _gather: end each mapped node whose items all ended."""
        for p in s.take_gathered():
            spec = specs[spec_of[p]]
            states = [s.state[k] for k in s.items(p)]
            assert all(x in (DONE, FAILED, SKIPPED) for x in states)
            if FAILED in states and spec.on_item_failure == "fail":
                decision = s.fail_map(p)
                assert not decision.stop
                failed.append(p)
            elif held:
                s.finish_map(p, durable=False)
                holding.append(p)
            else:
                s.finish_map(p)

    steps = 0
    while s.unsettled or split < len(specs):
        steps += 1
        assert steps < 10_000
        if split < len(specs) and rng.random() < 0.3:
            add(split)
            split += 1
        for i in s.admit():
            k = spec_of.get(i)
            spec = specs[k] if k is not None else None
            if spec is None or spec.items is None:
                in_flight.append(i)
            elif s.state[node[spec.deps[0]]] != DONE:
                s.skip(i)  # nothing to map over
                on_purpose.add(i)
            else:
                items = s.expand(i, len(spec.items), spec.retries, spec.limit)
                item_of.update((item, (k, e)) for e, item in enumerate(items))
        gather()
        assert scheduler_faults(s) == []
        if holding and (not in_flight or rng.random() < 0.5):
            s.durable(holding.pop(rng.randrange(len(holding))))
            gather()
            continue
        if not in_flight:
            continue
        i = in_flight.pop(rng.randrange(len(in_flight)))
        if i in item_of:
            k, e = item_of[i]
            failures, skip = specs[k].items[e]  # type: ignore[index]
        else:
            failures, skip = specs[spec_of[i]].failures, specs[spec_of[i]].skip
        if s.attempts[i] <= failures:
            decision = s.attempt_failed(i)
            if isinstance(decision, Failure):
                assert not decision.stop
                if i not in item_of:  # an item's failure is its mapped node's to report
                    failed.append(i)
            else:
                s.retry(i)  # handed out again by admit
        elif skip:
            s.skip(i)
            on_purpose.add(i)
        else:
            s.completed(i, durable=not held)
            if held:
                holding.append(i)
        gather()
    assert scheduler_faults(s) == []
    expected = expected_outcome(specs)
    names = {i: f"n{k}" for k, i in enumerate(node)}
    names.update((i, f"n{k}[{e}]") for i, (k, e) in item_of.items())
    assert {names[i]: PUBLIC_STATUS[x].value for i, x in enumerate(s.state)} == expected.statuses
    for i, name in names.items():
        if expected.statuses[name] != "SKIPPED" or i in on_purpose:
            assert s.attempts[i] == expected.attempts[name], name
    assert {names[i] for i in failed} == expected.failed
    assert HELD not in s.state
    # every skip was reported once, with its reason, and nothing else was
    reported = [why.node for why in s.take_skips()]
    assert len(reported) == len(set(reported))
    assert set(reported) == {i for i, x in enumerate(s.state) if x == SKIPPED} - on_purpose
