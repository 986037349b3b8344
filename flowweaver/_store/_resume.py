"""Which saved results a run may restore instead of running the task again. No I/O.

A saved ``COMPLETED`` record, or the ``SKIPPED`` record of a task that raised ``Skip``
(it has a token; a skip by a trigger rule has none: the run decides it again), stands in
for running the task while (:func:`stale_reason`):

* it belongs to this workflow (records of a user's store, which cannot tell, are taken
  by name as the reference says);
* the task's ``version`` equals the saved one (``None`` only matches ``None``); with code
  fingerprints on, the function's fingerprint too; it is younger than ``cache_ttl``;
* it was saved with the run parameters the task takes now, and
* it was computed from what the task receives now. A record's *token* is a hash of the
  task's name and its stored result (:func:`result_token`); its ``inputs`` are the tokens
  of the upstream results it was computed from, then a ``$`` entry per run parameter the
  task takes (:func:`param_entry`), comma-joined::

      "3f0c9a1b2c4d5e6f,9d41c0a77e21f0b3,$41d0c3e9a7b21f00"

  A task with a ``cache_key`` keeps only the key's ``=`` entry instead (:func:`key_entry`).

A task whose upstream tasks are all restored is decided at the start (:func:`judge`). One
whose upstream task runs is decided when it becomes ready (:func:`inputs_unchanged`): an
upstream task that ran again and returned an equal value has the same token, so the task
is still restored (early cut-off); a changed value runs it. Tokens written before content
tokens (a run's id) keep working: they match while nothing upstream runs again.

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
import uuid
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from .._engine._graph import Graph
from .._status import TaskStatus
from ._api import TaskRecord

# Module constants: reading an Enum member off its class costs a metaclass lookup, and
# these are compared once or twice per saved task of a resume.
_COMPLETED = TaskStatus.COMPLETED
_SKIPPED = TaskStatus.SKIPPED


@dataclass(slots=True)
class TaskFacts:
    """What the checks of one task's record need to know of the task now.

    :ivar version: its ``version``.
    :ivar fingerprint: its code fingerprint; None when fingerprints are off.
    :ivar ttl: its ``cache_ttl`` in seconds, or None.
    :ivar keyed: it has a ``cache_key``: the key, known once the task is ready, decides
        instead of its inputs.
    :ivar params: the ``$`` entries of the run parameters it takes, by parameter name.
    """

    version: str | None
    fingerprint: str | None = None
    ttl: float | None = None
    keyed: bool = False
    params: dict[str, str] = field(default_factory=dict)
    #: nothing but the version to check (most tasks): :func:`judge` checks such a task's
    #: record without calling :func:`stale_reason`.
    plain: bool = field(init=False)

    def __post_init__(self) -> None:
        self.plain = (
            self.fingerprint is None and self.ttl is None and not (self.keyed or self.params)
        )


@dataclass(slots=True)
class Judged:
    """What a run does with each saved record (see :func:`judge`).

    :ivar restore: tasks restored at the start, upstream tasks first.
    :ivar later: tasks whose record stands by its own checks but whose upstream tasks
        run (or whose ``cache_key`` decides): restored when they become ready if what
        they receive then is what they were saved with (:func:`inputs_unchanged`).
    :ivar reasons: why each task that is not restored at the start runs (for ``later``:
        what it waits on).
    """

    restore: dict[int, TaskRecord] = field(default_factory=dict)
    later: dict[int, TaskRecord] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    #: the reason of a task not in ``reasons`` (a store with no records: one for all).
    default: str = "no saved result"

    def reason(self, i: int) -> str:
        return self.reasons.get(i, self.default)


def judge(
    graph: Graph,
    workflow: str,
    records: Mapping[str, TaskRecord],
    facts: Sequence[TaskFacts],
    now: datetime,
    *,
    fresh: bool = False,
    forced: Container[int] = (),
    given: Mapping[int, TaskRecord] | None = None,
) -> Judged:
    """Decide, for every task, whether its saved record is restored (see the module doc).

    :param forced: tasks that run whatever they have saved (``from_tasks``).
    :param given: tasks outside a selection, restored as saved whatever the checks say
        (``from_tasks``); listed in ``restore`` too.
    """
    names = graph.names
    out = Judged()
    restore, later, reasons = out.restore, out.later, out.reasons
    # Index order when it is topological: no order to work out per resume.
    for i in range(len(names)) if graph.forward else graph.topological_order():
        if given and i in given:
            restore[i] = given[i]
            continue
        if fresh:
            reasons[i] = "fresh run"
            continue
        rec = records.get(names[i])
        if rec is None:
            reasons[i] = "no saved result"
            continue
        if i in forced:
            reasons[i] = "selected with from_tasks"
            continue
        ups = graph.upstream[i]
        waits = None  # the first upstream task not restored (loops: no generator per task)
        for j in ups:
            if j not in restore:
                waits = j
                break
        if rec.status is _SKIPPED and rec.token is None:
            # Skipped by a trigger rule: the run decides it again from its upstream
            # outcomes; listed (when they are all restored) so that its downstream may be.
            if waits is None:
                restore[i] = rec
            else:
                reasons[i] = f"upstream `{names[waits]}` will run"
            continue
        f = facts[i]
        if (
            f.plain
            and rec.status is _COMPLETED
            and rec.version == f.version
            and (rec.workflow is None or rec.workflow == workflow)
            and (rec.inputs is None or "$" not in rec.inputs)
        ):
            why = None  # what stale_reason finds for such a record, without the calls
        else:
            why = stale_reason(rec, workflow, f, now)
        if why is not None:
            reasons[i] = why
            continue
        if f.keyed:
            later[i] = rec
            reasons[i] = "its cache_key decides when it is ready"
            continue
        if waits is not None:
            later[i] = rec
            reasons[i] = f"upstream `{names[waits]}` will run"
            continue
        changed = _changed_upstream(ups, restore, rec.inputs)
        if changed is not None:
            reasons[i] = f"upstream `{names[changed]}` changed since it was saved"
            continue
        restore[i] = rec
    return out


def _changed_upstream(
    ups: Sequence[int], restore: Mapping[int, TaskRecord], inputs: str | None
) -> int | None:
    """The first restored upstream task whose token is not among ``inputs`` (None: none,
    or a record that keeps no inputs, which the upstream checks then decide alone)."""
    if inputs is None or not ups:
        return None
    consumed = inputs.split(",")
    for j in ups:
        token = restore[j].token
        if token is not None and token not in consumed:
            return j
    return None


def stale_reason(rec: TaskRecord, workflow: str, facts: TaskFacts, now: datetime) -> str | None:
    """Why a record cannot stand for its task whatever its upstream tasks do; None when
    it can: completed (or skipped on purpose), of this workflow, of this version and
    code, young enough, saved with the parameters the task takes now."""
    status = rec.status
    if status is not _COMPLETED and (status is not _SKIPPED or rec.token is None):
        return "the saved attempt failed" if status is TaskStatus.FAILED else "no saved result"
    if rec.workflow is not None and rec.workflow != workflow:
        return f"saved by workflow {rec.workflow!r}"
    if rec.version != facts.version:
        return f"version {_shown(facts.version)} != {_shown(rec.version)}"
    if facts.fingerprint is not None and rec.fingerprint != facts.fingerprint:
        return "code changed"
    if facts.ttl is not None:
        saved = rec.timestamp
        if saved.tzinfo is None:  # a user's store may keep local, naive times
            saved = saved.astimezone()
        if saved < now - timedelta(seconds=facts.ttl):
            return "older than cache_ttl"
    if facts.keyed:
        return None  # the key covers the parameters
    return _params_changed(rec.inputs, facts.params)


def _shown(version: str | None) -> str:
    return "none" if version is None else version


def _params_changed(inputs: str | None, params: Mapping[str, str]) -> str | None:
    """Why the parameters a record was saved with differ from ``params`` (the ``$``
    entries of those the task takes now), or None."""
    if inputs is None:
        # A user's store keeps no inputs: without parameters nothing can have changed.
        return "its store keeps no inputs, and it takes parameters" if params else None
    if not params and "$" not in inputs:
        return None  # the common case: no parameters then, none now
    saved = {e for e in inputs.split(",") if e.startswith("$")}
    for name, entry in params.items():
        if entry not in saved:
            return f"parameter `{name}` changed"
    if len(saved) > len(params):
        return "a parameter it was saved with is no longer given"
    return None


def inputs_unchanged(
    rec: TaskRecord, upstream: Sequence[tuple[str, str | None]], key: str | None
) -> str | None:
    """For a task decided when it is ready (:attr:`Judged.later`): None when its record
    stands for what it receives now, else why it runs.

    :param upstream: each upstream task's name and the token of what it passed on now
        (None: it failed or was skipped by a rule).
    :param key: the ``=`` entry of its ``cache_key`` now, for a task that has one.
    """
    if rec.inputs is None:
        return "its store keeps no inputs, and an upstream task ran"
    consumed = rec.inputs.split(",")
    if key is not None:
        return None if key in consumed else "cache_key changed"
    for name, token in upstream:
        if token is None or token not in consumed:
            return f"upstream `{name}` changed"
    return None


def result_token(name: str, encoded: Any, value: bool = False) -> str:
    """The token of a task's result: a hash of its name and its stored form, so that a
    task that runs again and returns an equal value gets the same token (and its
    dependents stand: early cut-off), while an equal value of another task does not.

    :param value: ``encoded`` is the value itself (the JSON store keeps its own copy of
        a plain value), not the text or bytes a serializer made of it: it is hashed as
        canonical JSON whatever its type, so that the string ``"1"`` and the number
        ``1`` (or ``"null"`` and None) never share a token.
    """
    if not value and isinstance(encoded, str):
        data = encoded.encode("utf-8", "surrogatepass")
    elif not value and isinstance(encoded, bytes):
        data = encoded
    elif encoded is None:  # what _CANONICAL writes for it, without the encoder's call
        data = b"null"
    else:  # a value, or what a store of one's own encodes into: as canonical JSON
        try:
            data = _CANONICAL(encoded).encode("utf-8", "surrogatepass")
        except Exception:
            return uuid.uuid4().hex[:16]  # matches nothing: its dependents run again
    # One call over the joined bytes: the same digest as updating with each part.
    key = name.encode("utf-8", "surrogatepass") + b"\0" + data
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def skip_token(name: str) -> str:
    """The token of a task skipped on purpose (its dependents receive ``SKIPPED``)."""
    return result_token(name, "\0skipped")


def param_entry(name: str, value: Any) -> str:
    """A run parameter's entry in the ``inputs`` of the tasks that take it."""
    digest = element_digest([name, value])
    # A value neither JSON nor pickle can write matches nothing: its tasks always run.
    return "$" + (digest if digest is not None else uuid.uuid4().hex[:16])


def key_entry(key: str) -> str:
    """A ``cache_key``'s entry: the task's whole ``inputs``."""
    return "=" + hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


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
    facts: TaskFacts,
    now: datetime,
    others: Sequence[str | None],
    digest: str | None,
    unchanged: bool,
) -> bool:
    """Whether an item's saved record may stand in for running it (see the module doc).

    :param facts: the mapped task's (its items take its version, code, ``cache_ttl`` and
        parameters).
    :param others: the tokens of the mapped task's upstream tasks except the source.
    :param digest: the hash of the item's element now (None: it has none).
    :param unchanged: every upstream task of the mapped task was restored in this run;
        decides for a record without ``inputs`` (a user's store).
    """
    if stale_reason(rec, workflow, facts, now) is not None:
        return False
    if rec.inputs is None:
        return unchanged
    if digest is None:
        return False
    consumed = rec.inputs.split(",")
    if "#" + digest not in consumed:
        return False
    return all(token is not None and token in consumed for token in others)


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
