"""How a state store turns a task's result into stored data and back.

A serializer is any object with ``dumps(value) -> str | bytes`` and ``loads(data) ->
value`` (the ``json`` and ``pickle`` modules themselves qualify). Stores take one with the
keyword-only ``serializer=`` argument.

:class:`JSONSerializer` is the default. It stores exactly what JSON holds (dicts with
string keys, lists, strings, numbers, booleans, ``None``) so that a restored result equals
the one the task returned. Anything else is refused when the task completes, naming the
task and the type, rather than coming back changed on the next run: a tuple would come
back as a list, an ``int`` dict key as a string, a ``set`` or a ``datetime`` not at all.

:class:`PickleSerializer` stores any picklable object. Loading a pickle can run arbitrary
code: use it only on store files that nobody else can write, never on one you were sent.
"""

from __future__ import annotations

import json
import math
import pickle
from typing import Any, Protocol, runtime_checkable

from .._errors import WorkflowValidationError, describe_exception
from ._api import StateSerializationError


@runtime_checkable
class Serializer(Protocol):
    """What a store needs from a serializer."""

    def dumps(self, value: Any) -> str | bytes:
        """The stored form of ``value``; raises if it cannot be stored."""

    def loads(self, data: Any) -> Any:
        """The value back from what ``dumps`` returned."""


class NotJSONError(ValueError):
    """A value that JSON would not give back unchanged (the message says which part)."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_encode_str = json.encoder.encode_basestring  # what _ENCODER does to a str, in C
_JSON_TYPES = "dict (with str keys), list, str, int, float, bool and None"


class JSONSerializer:
    """Results as JSON (the default): only values that come back equal are accepted.

    ``dumps`` raises ``ValueError`` naming the offending part of the value (``the tuple
    at ['rows'][0]``) for anything JSON would not give back unchanged, including NaN and
    infinities, which are not JSON.
    """

    def dumps(self, value: Any) -> str:
        """The JSON text of ``value``.

        :raises ValueError: when ``value`` would not come back equal from JSON.
        """
        return json_copy(value)[0]

    def loads(self, data: str | bytes) -> Any:
        """The value of JSON text."""
        return json.loads(data)

    def __repr__(self) -> str:
        return "JSONSerializer()"


class PickleSerializer:
    """Results pickled: any picklable object round-trips.

    Only ever on explicit request (``serializer=PickleSerializer()``). **Unsafe with
    untrusted files**: unpickling runs code chosen by whoever wrote the store, so never
    load a store that someone else could have written.

    :param protocol: the pickle protocol (default: ``pickle.DEFAULT_PROTOCOL``).
    """

    def __init__(self, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        """The pickle of ``value``; raises what ``pickle`` raises for unpicklable ones."""
        return pickle.dumps(value, protocol=self.protocol)

    def loads(self, data: bytes) -> Any:
        """The unpickled value (runs code from the data: trusted stores only)."""
        return pickle.loads(data)

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


def check_serializer(serializer: object) -> Serializer:
    """``serializer``, or a new :class:`JSONSerializer` for ``None``.

    :raises WorkflowValidationError: when it has no callable ``dumps`` and ``loads``.
    """
    if serializer is None:
        return JSONSerializer()
    if not (
        callable(getattr(serializer, "dumps", None))
        and callable(getattr(serializer, "loads", None))
    ):
        raise WorkflowValidationError(
            f"serializer must have dumps() and loads() methods, got {serializer!r}; "
            "use JSONSerializer(), PickleSerializer() or an object of your own with both"
        )
    return serializer  # type: ignore[return-value]  # checked just above


def encode(serializer: Serializer, task_name: str, value: Any) -> str | bytes:
    """``serializer.dumps(value)``, its failure reported against the task.

    :raises StateSerializationError: naming the task and the type of ``value``.
    """
    try:
        data = serializer.dumps(value)
    except Exception as exc:  # whatever the value or the serializer raises: the task's failure
        raise StateSerializationError(task_name, value, _reason(exc)) from exc
    if not isinstance(data, (str, bytes)):
        raise StateSerializationError(
            task_name,
            value,
            f"{serializer!r}.dumps returned a {type(data).__name__}, not str or bytes",
        )
    return data


def encode_json_copy(task_name: str, value: Any) -> Any:
    """A fresh copy of ``value`` as JSON gives it back, once it is known to be equal.

    The copy is what a JSON store keeps: later changes to the task's own object cannot
    alter what gets written.

    :raises StateSerializationError: naming the task and the type of ``value``.
    """
    try:
        return json_copy(value)[1]
    except NotJSONError as exc:
        raise StateSerializationError(task_name, value, str(exc)) from exc


def json_copy(value: Any) -> tuple[str, Any]:
    """``(text, copy)``: the JSON text of ``value`` and the value read back from it.

    The fast path is C: encode, decode, compare. Only when that fails is the value walked
    to say which part of it is at fault.

    :raises NotJSONError: (a ``ValueError``) when ``value`` would not come back equal
        from JSON, and whenever the value itself fails on the way (an ``int`` too long to
        write out, an ``__eq__`` that raises...): a task's result never fails the run.
    """
    try:
        return _json_copy(value)
    except NotJSONError:
        raise
    except Exception as exc:
        reason = f"turning it into JSON and back raised {describe_exception(exc)}"
        raise NotJSONError(reason) from None


def _json_copy(value: Any) -> tuple[str, Any]:
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        # Immutable and always equal after a round trip (but for a str's lone
        # surrogate, checked below): the value is its own copy. Most results of small
        # tasks are these, and decoding and comparing them would double their cost.
        if value is None:
            return "null", None
        if kind is bool:
            return ("true" if value else "false"), value
        if kind is int:
            return int.__repr__(value), value
        text = _encode_str(value)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise NotJSONError(_explain(value) or "it cannot be written as UTF-8") from None
        return text, value
    try:
        text = _ENCODER.encode(value)
        if not text.isascii():
            text.encode("utf-8")  # a lone surrogate cannot be written to a UTF-8 file
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotJSONError(_explain(value) or f"{type(exc).__name__}: {exc}") from None
    copy = json.loads(text)
    if copy != value:
        raise NotJSONError(
            _explain(value) or f"it would not come back equal from JSON; JSON holds {_JSON_TYPES}"
        )
    return text, copy


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NotJSONError):
        return str(exc)
    return describe_exception(exc)


def _explain(value: Any) -> str | None:
    """Which part of ``value`` JSON would not give back unchanged, in words (or None)."""
    try:
        found = _find(value, "")
    except RecursionError:
        return "it is nested too deeply (or contains itself)"
    return None if found is None else f"{found}; JSON holds {_JSON_TYPES}"


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def _find(value: Any, where: str) -> str | None:
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return None
    if kind is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"the str{_at(where)} has a lone surrogate, which UTF-8 cannot hold"
        return None
    if kind is float:
        return None if math.isfinite(value) else f"the float {value!r}{_at(where)} is not JSON"
    if kind is list:
        for index, item in enumerate(value):
            found = _find(item, f"{where}[{index}]")
            if found is not None:
                return found
        return None
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                name = type(key).__name__
                return f"the {name} key {key!r}{_at(where)} would come back as a str"
            found = _find(item, f"{where}[{key!r}]")
            if found is not None:
                return found
        return None
    if kind is tuple:
        return f"the tuple{_at(where)} would come back as a list"
    for base in (bool, str, int, float, list, dict):
        if isinstance(value, base):
            return f"the {kind.__name__}{_at(where)} would come back as a plain {base.__name__}"
    return f"the {kind.__name__}{_at(where)} is not JSON"
