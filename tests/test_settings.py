"""The task options are one list: TaskSettings; the typed signatures follow it."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from flowweaver import Task, WorkflowValidationError, task
from flowweaver._settings import OPTIONS, DecoratorOptions, TaskOptions, TaskSettings


def test_the_typed_keywords_name_every_option_once() -> None:
    names = {f.name for f in fields(TaskSettings)}
    assert set(DecoratorOptions.__annotations__) == names
    # Task takes name, retries, timeout and callbacks positionally (the reference's order)
    assert set(TaskOptions.__annotations__) == names - {"name", "retries", "timeout", "callbacks"}


def test_the_runtime_signatures_list_every_option_with_its_default() -> None:
    task_params = inspect.signature(Task).parameters
    deco_params = inspect.signature(task).parameters
    defaults = TaskSettings()
    for option in OPTIONS:
        expected = None if option == "callbacks" else getattr(defaults, option)
        assert task_params[option].default == expected, option
        assert deco_params[option].default == expected, option
        assert deco_params[option].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(task_params)[:5] == ["name", "func", "retries", "timeout", "callbacks"]


def test_a_task_copies_every_option_from_its_settings() -> None:
    t = Task("t", lambda: None, 2, 5.0, [print], retry_delay=1.5, version="3")
    for option in OPTIONS:
        expected = getattr(t.settings, option)
        got = getattr(t, option)
        assert (tuple(got) if option == "callbacks" else got) == expected, option
    assert t.settings.name == "t"


def test_a_decorated_function_gives_its_settings_to_each_task_made_from_it() -> None:
    @task(retries=3, timeout=2, version="v")
    def f() -> None: ...

    t = Task.from_callable(f)
    assert t.settings == TaskSettings(name="f", retries=3, timeout=2, version="v")


@pytest.mark.parametrize("make", [lambda: Task("t", print, colour=1), lambda: task(colour=1)])
def test_an_unknown_option_is_named_with_the_known_ones(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkflowValidationError, match=r"unknown option 'colour'.*retry_delay"):
        make()


@pytest.mark.parametrize("rule", ["one_failed", "one_success"])
def test_a_mapped_task_refuses_a_rule_that_could_start_it_before_its_source(rule: str) -> None:
    from flowweaver import Workflow

    def proc(src: int) -> int:
        return src

    with pytest.raises(WorkflowValidationError, match="needs the result it maps over"):
        Task("proc", proc, map_over="src", trigger=rule)  # type: ignore[arg-type]
    wf = Workflow("w")
    with pytest.raises(WorkflowValidationError, match=f"cannot be '{rule}'"):
        wf.add_task(Task("proc", proc, map_over="src"), trigger=rule)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"tags": "db"}, "write tags=['db'] for one tag"),
        ({"tags": 3}, "tags must be a list of tag names, got 3"),
        ({"tags": ["db", ""]}, "every tag must be a non-empty str, got ''"),
        ({"tags": ["db", 1]}, "every tag must be a non-empty str, got 1"),
        ({"isolation": "fork"}, "isolation must be 'process', 'thread' or None"),
    ],
)
def test_bad_resource_settings_name_the_task_and_the_value(
    options: dict[str, object], says: str
) -> None:
    from flowweaver import WorkflowValidationError

    with pytest.raises(WorkflowValidationError, match="task 't'") as err:
        Task("t", lambda: None, **options)  # type: ignore[arg-type]
    assert says in str(err.value)


def test_tags_are_kept_in_order_once_each() -> None:
    assert Task("t", lambda: None, tags=("b", "a", "b")).tags == ("b", "a")

    @task(tags=["api"], isolation="thread")
    def f() -> None: ...

    settings = f.__flowweaver__  # type: ignore[attr-defined]
    assert (settings.tags, settings.isolation) == (("api",), "thread")
