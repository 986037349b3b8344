"""Random DAGs with random failures end the same under every executor.

Each example is a DAG of up to 25 tasks, each depending on random earlier ones; some are
``async def``, some have a (generous) timeout, some raise on their first attempts and
have enough retries to succeed later, some fail for good, some skip on purpose, some
have a trigger rule. Some are mapped over their first upstream task (a list of a drawn
length, or a mapped task's result), with items that fail, retry or skip on their own,
either ``on_item_failure``, and a ``max_concurrent``. Every executor must leave the
statuses, results, attempts, failed and skipped tasks, items' included, that a plain
model of the rules predicts (``tests.helpers.expected_outcome``), so they also agree with
each other.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowweaver import WorkflowExecutionError
from flowweaver.aio import AsyncExecutor, SequentialExecutor, ThreadedExecutor
from tests.helpers import NodeSpec, build_dag, expected_outcome, observed_outcome

KINDS = ["sync", "async", "sync_timed", "async_timed"]


# The default rule three times as often as each other one, as in real workflows.
TRIGGERS = ["all_success"] * 3 + ["all_done", "none_failed", "one_failed", "one_success"]
# A mapped task may not have a one_* rule (it could start before its source ended).
MAP_TRIGGERS = ["all_success"] * 3 + ["all_done", "none_failed"]
FAILURES = [0, 0, 0, 1, 2, 9]
SKIPS = [False, False, False, True]


@st.composite
def dags(draw: st.DrawFn, rules: bool = True, maps: bool = True) -> list[NodeSpec]:
    n = draw(st.integers(min_value=1, max_value=25))
    specs: list[NodeSpec] = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 4))) if i else []
        failures = draw(st.sampled_from(FAILURES))
        retries = draw(st.integers(0, 2))
        kind = draw(st.sampled_from(KINDS))
        if maps and deps and draw(st.integers(0, 3)) == 0:
            # few upstream tasks, so that maps run more often than their rules skip them
            deps = deps[: draw(st.integers(1, 2))]
            earlier = [j for j, spec in enumerate(specs) if spec.items is not None]
            if earlier and draw(st.booleans()):  # a map over a map, often
                deps[0] = draw(st.sampled_from(earlier))
            specs.append(draw(mapped(specs, tuple(deps), kind, retries, rules)))
            continue
        trigger = draw(st.sampled_from(TRIGGERS)) if rules else "all_success"
        skip = rules and draw(st.sampled_from(SKIPS))
        specs.append(NodeSpec(tuple(deps), kind, failures, retries, trigger, skip))
    return specs


@st.composite
def mapped(
    draw: st.DrawFn,
    specs: list[NodeSpec],
    deps: tuple[int, ...],
    kind: str,
    retries: int,
    rules: bool,
) -> NodeSpec:
    """A task mapped over ``deps[0]``, which becomes a map's source if it is not one yet
    (``specs`` changes; half the time it then always completes: rule all_done, no skip,
    enough retries, so that most maps get to expand): an item's spec per key that source
    can give."""
    source = specs[deps[0]]
    if source.items is not None:  # a map over a map: keys are its items' keys
        size = len(source.items)
    elif source.size is not None:
        size = source.size
    else:
        size = draw(st.integers(0, 4))
        source = replace(source, size=size)
        if draw(st.booleans()):
            failures = min(source.failures, source.retries)
            source = replace(source, failures=failures, trigger="all_done", skip=False)
        specs[deps[0]] = source
    skips = st.sampled_from(SKIPS) if rules else st.just(False)
    items = draw(
        st.lists(st.tuples(st.sampled_from(FAILURES), skips), min_size=size, max_size=size)
    )
    return NodeSpec(
        deps,
        kind,
        0,
        retries,
        draw(st.sampled_from(MAP_TRIGGERS)) if rules else "all_success",
        False,
        tuple(items),
        draw(st.sampled_from(["fail", "skip"])),
        draw(st.sampled_from([None, 1, 2])),
    )


@pytest.mark.anyio
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=dags(), workers=st.integers(1, 4), concurrent=st.integers(1, 6))
async def test_random_dags_end_the_same_under_every_executor(
    specs: list[NodeSpec], workers: int, concurrent: int
) -> None:
    expected = expected_outcome(specs, engine=True)
    executors: list[Any] = [
        SequentialExecutor(),
        ThreadedExecutor(max_workers=workers),
        AsyncExecutor(max_concurrent=concurrent),
    ]
    for executor in executors:
        wf = build_dag(specs)
        error: WorkflowExecutionError | None = None
        try:
            await executor.execute(wf)
        except WorkflowExecutionError as exc:
            error = exc
        assert (error is None) == (not expected.failed)
        got = observed_outcome(wf, error)
        label = type(executor).__name__
        assert got.statuses == expected.statuses, label
        assert got.results == expected.results, label
        assert got.attempts == expected.attempts, label
        assert got.failed == expected.failed, label
        assert got.skipped == expected.skipped, label
        assert got.errors == expected.errors, label
        assert got.failed_items == expected.failed_items, label
        if error is not None:
            assert got.first_failed in expected.failed
            assert len(error.failed_tasks) == len(expected.failed)
