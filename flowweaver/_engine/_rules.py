"""Trigger rules: which upstream outcomes let a node run. Pure functions, no state.

See the scheduler's module doc for how a ruled node is counted and decided.
"""

from __future__ import annotations

#: Trigger rules (``flowweaver._outcomes.TRIGGER_RULES`` names them in this order).
ALL_SUCCESS = 0
ALL_DONE = 1
NONE_FAILED = 2
ONE_FAILED = 3
ONE_SUCCESS = 4

#: A verdict of :func:`decide`.
WAIT = 0
RUN = 1
SKIP = 2
SKIP_BY_FAILURE = 3  # skipped, and the rules below count it as a failure


def decide(rule: int, ok: int, failed: int, skipped: int, total: int) -> int:
    """The verdict on a node with ``total`` upstream nodes, of which ``ok`` completed,
    ``failed`` failed (or were skipped because of a failure) and ``skipped`` were skipped.

    ``ONE_FAILED`` and ``ONE_SUCCESS`` run as soon as their condition holds, even while
    other upstream nodes have not ended; a node with no upstream node at all runs under
    every rule but those two, which can never be met for it.
    """
    left = total - ok - failed - skipped
    if rule == ALL_SUCCESS:
        # A failure decides at once; a skip waits for the rest, since a failure among
        # them would make this a skip by failure (the verdict must not depend on which
        # upstream node happened to end first).
        if failed:
            return SKIP_BY_FAILURE
        if left:
            return WAIT
        return SKIP if skipped else RUN
    if rule == ALL_DONE:
        return WAIT if left else RUN
    if rule == NONE_FAILED:
        if failed:
            return SKIP_BY_FAILURE
        return WAIT if left else RUN
    if rule == ONE_FAILED:
        if failed:
            return RUN
        return WAIT if left else SKIP
    # ONE_SUCCESS
    if ok:
        return RUN
    if left:
        return WAIT
    return SKIP_BY_FAILURE if failed else SKIP
