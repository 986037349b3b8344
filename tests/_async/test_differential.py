"""Random DAGs with random failures end the same under every executor.

Each example is a DAG of up to 25 tasks, each depending on random earlier ones; some are
``async def``, some have a (generous) timeout, some raise on their first attempts and
have enough retries to succeed later, some fail for good. Every executor must leave the
statuses, results, attempts, failed and skipped tasks that a plain model of the rules
predicts (``tests.helpers.expected_outcome``), so they also agree with each other.
"""

from __future__ import annotations

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


@st.composite
def dags(draw: st.DrawFn, rules: bool = True) -> list[NodeSpec]:
    n = draw(st.integers(min_value=1, max_value=25))
    specs = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 4))) if i else []
        failures = draw(st.sampled_from([0, 0, 0, 1, 2, 9]))
        retries = draw(st.integers(0, 2))
        trigger = draw(st.sampled_from(TRIGGERS)) if rules else "all_success"
        skip = rules and draw(st.sampled_from([False, False, False, True]))
        specs.append(
            NodeSpec(tuple(deps), draw(st.sampled_from(KINDS)), failures, retries, trigger, skip)
        )
    return specs


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
    expected = expected_outcome(specs)
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
        if error is not None:
            assert got.first_failed in expected.failed
            assert len(error.failed_tasks) == len(expected.failed)
