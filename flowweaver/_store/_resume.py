"""Which saved results a run may restore instead of running the task again. No I/O.

A saved ``COMPLETED`` record, or the ``SKIPPED`` record of a task that raised ``Skip``
(it has a token; a skip by a trigger rule has none), is restored only when it is not
stale (a skip by a rule is never restored: the run decides it again, and the engine
restores a task only once every upstream task has ended, see ``_engine._restore``):

* it belongs to this workflow (records of a user's store, which cannot tell, are taken
  by name as the reference says);
* the task's ``version`` equals the saved one (``None`` only matches ``None``);
* with code fingerprints on, the function's fingerprint equals the saved one;
* every upstream task is restored too: a task one of whose upstream tasks runs again in
  this run runs again as well;
* the upstream results it was computed from are the ones restored now: each record keeps
  the *token* of the run that produced it and the tokens of the upstream results it
  consumed. Tokens are never reused, so a dependent saved before its upstream task ran
  again (say in a run interrupted between the two) is seen to be stale.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from .._engine._graph import Graph
from .._status import TaskStatus
from ._api import TaskRecord


def restorable(
    graph: Graph,
    workflow: str,
    records: Mapping[str, TaskRecord],
    versions: Sequence[str | None],
    fingerprints: Sequence[str | None] | None,
) -> dict[int, TaskRecord]:
    """Map each task index that may be restored to its record (see the module doc)."""
    names = graph.names
    out: dict[int, TaskRecord] = {}
    for i in graph.topological_order():
        rec = records.get(names[i])
        if rec is None:
            continue
        ups = graph.upstream[i]
        if rec.status is TaskStatus.SKIPPED and rec.token is None:
            # Skipped by a trigger rule: the run decides it again from its upstream
            # outcomes; listed (when they are all restored) so that its downstream may be.
            if all(j in out for j in ups):
                out[i] = rec
            continue
        # A task skipped on purpose (it raised Skip) is restored like a completed one; its
        # record, unlike a skip by a rule, carries a token.
        if rec.status is not TaskStatus.COMPLETED and rec.status is not TaskStatus.SKIPPED:
            continue
        if rec.workflow is not None and rec.workflow != workflow:
            continue
        if rec.version != versions[i]:
            continue
        if fingerprints is not None and rec.fingerprint != fingerprints[i]:
            continue
        if any(j not in out for j in ups):
            continue
        if rec.inputs is not None and ups:
            consumed = rec.inputs.split(",")
            if any(out[j].token is not None and out[j].token not in consumed for j in ups):
                continue
        out[i] = rec
    return out


def code_fingerprint(func: Callable[..., Any]) -> str:
    """A short hash of a function's code: its bytecode, constants, names and defaults.

    Nested functions and lambdas are included through their code objects. A change of
    comments or formatting alone does not change it; a change of behaviour does (within
    what bytecode shows: code the function calls elsewhere is not included).
    """
    h = hashlib.sha256()
    _feed(h, _unwrap(func))
    return h.hexdigest()[:16]


def _unwrap(func: Any) -> Any:
    while True:
        if isinstance(func, partial):
            func = func.func
        elif hasattr(func, "__wrapped__"):
            func = func.__wrapped__
        else:
            return func


def _feed(h: Any, func: Any) -> None:
    code = getattr(func, "__code__", None)
    if code is None:
        call = getattr(type(func), "__call__", None)  # noqa: B004 - we want its code
        code = getattr(call, "__code__", None)
    if code is None:
        h.update(repr(getattr(func, "__qualname__", type(func).__qualname__)).encode())
        return
    _feed_code(h, code)
    for default in getattr(func, "__defaults__", None) or ():
        h.update(repr(default).encode())


def _feed_code(h: Any, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        else:
            h.update(repr(const).encode())
