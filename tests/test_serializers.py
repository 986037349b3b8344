"""Serializers: JSON keeps exactly what JSON holds; pickle only on request."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from flowweaver import JSONSerializer, PickleSerializer, StateSerializationError
from flowweaver._store._serializers import NotJSONError, encode, encode_json_copy, json_copy


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        -0.0,
        "text",
        "ünï 任务 🚀",
        [],
        {},
        {"a": [1, {"b": None}], "c": "d"},
        [[[]]],
    ],
)
def test_json_round_trips_what_json_holds(value: Any) -> None:
    text, copy = json_copy(value)
    assert copy == value
    assert json.loads(text) == value
    assert JSONSerializer().loads(JSONSerializer().dumps(value)) == value


def test_the_json_copy_is_independent_of_the_original() -> None:
    value = {"rows": [1, 2]}
    copy = encode_json_copy("t", value)
    value["rows"].append(3)
    assert copy == {"rows": [1, 2]}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ((1, 2), "the tuple would come back as a list"),
        ({"rows": [1, (2, 3)]}, r"the tuple at \['rows'\]\[1\] would come back as a list"),
        ({1: "a"}, "the int key 1 would come back as a str"),
        ({"a": {True: 1}}, r"the bool key True at \['a'\] would come back as a str"),
        ({"x"}, "the set is not JSON"),
        ([b"raw"], r"the bytes at \[0\] is not JSON"),
        ({"when": datetime(2024, 1, 1, tzinfo=timezone.utc)}, "the datetime at .* is not JSON"),
        (Decimal("1.5"), "the Decimal is not JSON"),
        (Colour.RED, "the Colour is not JSON"),
        (float("nan"), "the float nan is not JSON"),
        ([float("inf")], r"the float inf at \[0\] is not JSON"),
        ("\ud800", "lone surrogate"),
        (OrderedDict(a=(1,)), "the OrderedDict would come back as a plain dict"),
    ],
)
def test_json_refuses_what_would_not_come_back_equal_and_says_where(
    value: Any, reason: str
) -> None:
    with pytest.raises(NotJSONError, match=reason):
        json_copy(value)
    with pytest.raises(ValueError, match=reason):
        JSONSerializer().dumps(value)


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(NotJSONError, match=r"contains itself|Circular"):
        json_copy(loop)


def test_subclasses_that_come_back_equal_are_accepted() -> None:
    assert json_copy(Level.LOW)[1] == 1
    assert json_copy(OrderedDict(a=1))[1] == {"a": 1}


def test_a_refused_result_names_the_task_and_the_type() -> None:
    with pytest.raises(StateSerializationError) as info:
        encode_json_copy("load_users", {"ids": {1, 2}})
    err = info.value
    assert err.task_name == "load_users"
    assert err.value_type == "dict"
    assert "'load_users'" in str(err)
    assert "the set at ['ids'] is not JSON" in str(err)
    assert "serializer" in str(err)  # says what to do


def test_pickle_round_trips_what_json_cannot() -> None:
    value = {"pair": (1, 2), "tags": {"x"}, "when": datetime(2024, 1, 1), "n": Decimal("1.5")}
    serializer = PickleSerializer()
    data = serializer.dumps(value)
    assert isinstance(data, bytes)
    assert serializer.loads(data) == value


def test_pickle_failures_name_the_task_and_the_type() -> None:
    with pytest.raises(StateSerializationError, match=r"'t'.*function.*PicklingError|'t'.*lambda"):
        encode(PickleSerializer(), "t", lambda: 1)


def test_a_custom_serializer_failure_names_the_task() -> None:
    class Picky:
        def dumps(self, value: Any) -> str:
            raise TypeError("only strings")

        def loads(self, data: Any) -> Any:
            return data

    with pytest.raises(StateSerializationError, match=r"'t'.*int.*TypeError: only strings"):
        encode(Picky(), "t", 3)


def test_a_serializer_must_return_text_or_bytes() -> None:
    class Lazy:
        def dumps(self, value: Any) -> Any:
            return value

        def loads(self, data: Any) -> Any:
            return data

    with pytest.raises(StateSerializationError, match=r"'t'.*returned a dict, not str or bytes"):
        encode(Lazy(), "t", {"a": 1})


def test_reprs_name_the_serializers() -> None:
    assert repr(JSONSerializer()) == "JSONSerializer()"
    assert repr(PickleSerializer(protocol=4)) == "PickleSerializer(protocol=4)"
