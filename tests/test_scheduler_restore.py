"""``Scheduler.restore_all`` (a resume restores every saved task in one call) against the
node-by-node ``restorable``/``restore`` it stands for, on random DAGs (no loop)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowweaver._engine._rules import ALL_DONE, ALL_SUCCESS, NONE_FAILED, ONE_FAILED, ONE_SUCCESS
from flowweaver._engine._scheduler import DONE, HELD, READY, SKIPPED, WAITING, Scheduler

RULES = [ALL_SUCCESS] * 4 + [ALL_DONE, NONE_FAILED, ONE_FAILED, ONE_SUCCESS]
Resume = tuple[list[tuple[int, ...]], dict[int, int], list[tuple[int, bool]]]


@st.composite
def resumes(
    draw: st.DrawFn,
) -> tuple[list[tuple[int, ...]], dict[int, int], list[tuple[int, bool]]]:
    """A DAG, its rules, and the saved nodes a resume offers, upstream nodes first (in
    index order, as a topological order of a DAG whose edges point forwards): some skipped
    on purpose, some whose upstream nodes are not saved (those must be left alone)."""
    n = draw(st.integers(1, 30))
    upstream = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 4), unique=True)) if i else []
        upstream.append(tuple(deps))
    rules = {i: r for i in range(n) if (r := draw(st.sampled_from(RULES))) != ALL_SUCCESS}
    saved = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    skipped = draw(st.lists(st.sampled_from([False, False, False, True]), min_size=n, max_size=n))
    return upstream, rules, [(i, skipped[i]) for i in range(n) if saved[i]]


def _state(s: Scheduler) -> dict[str, Any]:
    return {
        "state": list(s.state),
        "pending": list(s._pending),
        "unsettled": s.unsettled,
        "has_ready": s.has_ready,
        "skips": [(k.node, k.rule) for k in s.skips],
    }


@settings(max_examples=400, deadline=None)
@given(resume=resumes(), concurrency=st.integers(1, 4))
def test_restore_all_is_restore_node_by_node(resume: Resume, concurrency: int) -> None:
    upstream, rules, offered = resume
    one_by_one, at_once = Scheduler(concurrency), Scheduler(concurrency)
    for s in (one_by_one, at_once):
        s.add_graph(upstream, [0] * len(upstream), rules)
    expected = []
    for i, skipped in offered:
        if one_by_one.restorable(i):
            one_by_one.restore(i, skipped)
            expected.append(i)

    assert at_once.restore_all(offered) == expected
    assert _state(at_once) == _state(one_by_one)
    # What runs next, and after it, is the same too (the ready queue's stale entries of
    # restored nodes are dropped when reached).
    while True:
        handed = one_by_one.admit()
        assert at_once.admit() == handed
        if not handed:
            break
        for i in handed:
            assert one_by_one.completed(i) == at_once.completed(i)
    assert _state(at_once) == _state(one_by_one)


def test_a_chain_restored_at_once_leaves_only_what_follows_it_ready() -> None:
    s = Scheduler(4)
    s.add_graph([(), (0,), (1,), (2,)], [0] * 4)
    assert s.restore_all([(0, False), (1, False), (3, False)]) == [0, 1]  # 3 waits for 2
    assert [s.state[i] for i in range(4)] == [DONE, DONE, READY, WAITING]
    assert s.unsettled == 2
    assert s.admit() == [2]


def test_a_node_skipped_on_purpose_is_restored_skipped_and_decides_its_dependents() -> None:
    s = Scheduler(4)
    s.add_graph([(), (0,), (0,)], [0] * 3, {2: ALL_DONE})
    assert s.restore_all([(0, True)]) == [0]
    assert s.state[0] == SKIPPED
    assert s.state[1] == SKIPPED  # all_success: skipped with its upstream node
    assert s.admit() == [2]  # all_done runs
    assert HELD not in s.state
