"""The scheduler alone against the model of the rules, on random DAGs (no loop, no threads).

The same random DAGs as the executors' differential test (``tests/_async/
test_differential.py``), driven straight through the scheduler: attempts end in a random
order, records become durable at random moments, and the concurrency bound is checked at
every step. The ends must be the model's (``tests.helpers.expected_outcome``).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from flowweaver._engine._scheduler import (
    PUBLIC_STATUS,
    RETRYING,
    RUNNING,
    SKIPPED,
    Failure,
    Scheduler,
)
from flowweaver._outcomes import TRIGGER_RULES
from tests.helpers import NodeSpec, expected_outcome

# The default rule three times as often as each other one, as in real workflows.
TRIGGERS = ["all_success"] * 3 + ["all_done", "none_failed", "one_failed", "one_success"]


@st.composite
def dags(draw: st.DrawFn, rules: bool = True) -> list[NodeSpec]:
    n = draw(st.integers(min_value=1, max_value=30))
    specs = []
    for i in range(n):
        # no repeats: add_graph takes upstream lists as Graph gives them
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 4), unique=True)) if i else []
        failures = draw(st.sampled_from([0, 0, 0, 1, 2, 9]))
        retries = draw(st.integers(0, 2))
        trigger = draw(st.sampled_from(TRIGGERS)) if rules else "all_success"
        skip = rules and draw(st.sampled_from([False, False, False, True]))
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
    if grow:
        # Nodes added one by one, some of them while the run is under way.
        split = rng.randint(0, len(specs))
        for spec in specs[:split]:
            s.add(spec.deps, spec.retries, TRIGGER_RULES.index(spec.trigger))
    else:
        split = len(specs)
        rules = {
            i: TRIGGER_RULES.index(spec.trigger)
            for i, spec in enumerate(specs)
            if spec.trigger != "all_success"
        }
        s.add_graph([spec.deps for spec in specs], [spec.retries for spec in specs], rules)
    failed: list[int] = []
    in_flight: list[int] = []
    holding: list[int] = []
    steps = 0
    while s.unsettled or split < len(specs):
        steps += 1
        assert steps < 10_000
        if split < len(specs) and rng.random() < 0.3:
            spec = specs[split]
            split += 1
            i = s.add(spec.deps, spec.retries, TRIGGER_RULES.index(spec.trigger))
        in_flight.extend(s.admit())
        assert s.in_flight <= concurrency
        assert sum(1 for st_ in s.state if st_ in (RUNNING, RETRYING)) == s.in_flight
        if holding and (not in_flight or rng.random() < 0.5):
            s.durable(holding.pop(rng.randrange(len(holding))))
            continue
        if not in_flight:
            continue
        i = in_flight.pop(rng.randrange(len(in_flight)))
        spec = specs[i]
        if s.attempts[i] <= spec.failures:
            decision = s.attempt_failed(i)
            if isinstance(decision, Failure):
                failed.append(i)
            else:
                s.retry(i)
                in_flight.append(i)
        elif spec.skip:
            s.skip(i)
        else:
            s.completed(i, durable=not held)
            if held:
                holding.append(i)
    expected = expected_outcome(specs)
    for i in range(len(specs)):
        name = f"n{i}"
        assert PUBLIC_STATUS[s.state[i]].value == expected.statuses[name], name
        if expected.statuses[name] != "SKIPPED":
            assert s.attempts[i] == expected.attempts[name], name
    assert {f"n{i}" for i in failed} == expected.failed
    # every skip was reported once, with its reason, and nothing else was
    reported = [why.node for why in s.take_skips()]
    assert len(reported) == len(set(reported))
    on_purpose = {i for i, spec in enumerate(specs) if spec.skip and s.attempts[i]}
    assert set(reported) == {i for i in range(len(specs)) if s.state[i] == SKIPPED} - on_purpose
