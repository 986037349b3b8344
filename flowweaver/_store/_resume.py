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

The items of a mapped task ``P`` (``P[key]``, one per element of the result it maps over)
are judged when ``P`` expands, each against its own record (:func:`item_stands`): it
stands when it is ``COMPLETED`` or skipped on purpose, of this workflow, of ``P``'s
version and fingerprint, and was computed from the same element and the same results of
``P``'s *other* upstream tasks. Its ``inputs`` are therefore the tokens of ``P``'s upstream
tasks except the source, then ``#`` and the element's hash (:func:`element_digest`)::

    "3f0c9a1b2c4d5e6f,#9d41c0a77e21f0b3"

The source's token is left out on purpose: a source that runs again and returns the same
list (or a longer one) must not make every item stale; the hash says whether an item's
element is still the same. So a resumed map runs only the items that failed, were never
saved, or whose element changed; keys that are new run, keys that are gone are dropped.
Keys are the elements' indices unless ``map_key`` gives them, so without it an element
inserted in front shifts every later element to another key (whose hash then differs:
those items run again); with ``map_key`` the order does not matter.

A record without ``inputs`` (a user's store of five methods keeps no tokens and no hash)
cannot show which element it was computed from: it stands only when every upstream task
of ``P`` was restored in this run rather than run again, so the list is the saved one.
"""

from __future__ import annotations

import hashlib
import json
import pickle
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
        fingerprint = fingerprints[i] if fingerprints is not None else None
        if not _outcome_stands(rec, workflow, versions[i], fingerprint):
            continue
        if any(j not in out for j in ups):
            continue
        if rec.inputs is not None and ups:
            consumed = rec.inputs.split(",")
            if any(out[j].token is not None and out[j].token not in consumed for j in ups):
                continue
        out[i] = rec
    return out


# One encoder for every element: json.dumps with options builds a new one per call, which
# cost more than the encoding itself for small elements.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def element_digest(value: Any) -> str | None:
    """A short hash of a map element, the same in every process and Python version.

    Canonical JSON (sorted keys) when the element can be written so, which covers plain
    data and avoids pickle's traps (a set of str pickles in another order in another
    process, hash randomisation); else pickle, protocol 4. None when neither can encode
    it: such an element's item is never restored, it runs again each time, which is
    safe where a guess is not. JSON does not tell a tuple from a list, or ``{1: x}`` from
    ``{"1": x}``: an item is restored across that change only.
    """
    try:
        data = b"j" + _CANONICAL(value).encode()
    except Exception:  # not JSON (TypeError, ValueError, RecursionError...)
        try:
            data = b"p" + pickle.dumps(value, protocol=4)
        except Exception:
            return None
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def item_inputs(others: str, digest: str | None) -> str:
    """An item's ``inputs``: ``others`` (the tokens of its mapped task's upstream tasks
    except the source, comma-joined) and ``#`` with its element's hash, if it has one."""
    if digest is None:
        return others  # no "#": it never stands
    return f"{others},#{digest}" if others else f"#{digest}"


def item_stands(
    rec: TaskRecord,
    workflow: str,
    version: str | None,
    fingerprint: str | None,
    others: Sequence[str | None],
    digest: str | None,
    unchanged: bool,
) -> bool:
    """Whether an item's saved record may stand in for running it (see the module doc).

    :param fingerprint: the mapped task's code fingerprint; None when they are off.
    :param others: the tokens of the mapped task's upstream tasks except the source.
    :param digest: the hash of the item's element now (None: it has none).
    :param unchanged: every upstream task of the mapped task was restored in this run;
        decides for a record without ``inputs`` (a user's store).
    """
    if not _outcome_stands(rec, workflow, version, fingerprint):
        return False
    if rec.inputs is None:
        return unchanged
    if digest is None:
        return False
    consumed = rec.inputs.split(",")
    if "#" + digest not in consumed:
        return False
    return all(token is not None and token in consumed for token in others)


def _outcome_stands(
    rec: TaskRecord, workflow: str, version: str | None, fingerprint: str | None
) -> bool:
    """The checks a task's and an item's record share: an outcome that may be restored
    (completed, or skipped on purpose: that record, unlike a skip by a rule, carries a
    token), of this workflow, made by this version (and code, when ``fingerprint`` is
    given: fingerprints are on)."""
    status = rec.status
    if status is not TaskStatus.COMPLETED and (
        status is not TaskStatus.SKIPPED or rec.token is None
    ):
        return False  # failed, or skipped by a rule: it is decided or run again
    if rec.workflow is not None and rec.workflow != workflow:
        return False
    if rec.version != version:
        return False
    return fingerprint is None or rec.fingerprint == fingerprint


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
