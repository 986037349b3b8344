"""What a run takes besides the file: ``-p name=value``, ``--target`` and ``--from``.

Shared by ``run`` and ``plan``, so a plan is always made with exactly the options the run
it explains would get. A value is decoded as JSON when it parses (``-p limit=10`` is the
int 10, ``-p flag=true`` a bool, ``-p ids=[1,2]`` a list, ``-p name='"10"'`` the string
``"10"``), else kept as the string it is (``-p date=2026-11-30``): dates and names need no
quoting, and a quoted JSON string is the way to pass a string that would parse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from .._engine._select import select
from .._executor import RunOptions
from .._task import Task
from .._workflow import Workflow

F = TypeVar("F", bound=Callable[..., Any])


def _no_constant(name: str) -> Any:
    # Python's json takes NaN and Infinity, which are not JSON: a value that spells one
    # stays the word, as any other word does.
    raise ValueError(name)


def decode_value(text: str) -> Any:
    """``"10"`` -> 10, ``"true"`` -> True, ``"null"`` -> None, ``"2026-11-30"`` -> itself."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def parse_params(
    ctx: click.Context | None, param: click.Parameter | None, given: Sequence[str]
) -> dict[str, Any]:
    """The ``-p`` values as a dict (a click callback).

    :raises click.BadParameter: (exit code 2) for a value without ``=``, an empty name, or
        a name given twice; the message names the value.
    """
    params: dict[str, Any] = {}
    for item in given:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise click.BadParameter(
                f"{item!r} has no '='; write -p NAME=VALUE (for example -p date=2026-11-30)",
                ctx,
                param,
            )
        if not name:
            raise click.BadParameter(
                f"{item!r} has no name before '='; write -p NAME=VALUE", ctx, param
            )
        if name in params:
            raise click.BadParameter(
                f"parameter {name!r} is given twice ({name}={json.dumps(params[name])} and "
                f"{item}); give it once",
                ctx,
                param,
            )
        params[name] = decode_value(value)
    return params


@dataclass
class Selection:
    """The run options of ``run`` and ``plan``: parameters and the part of the DAG."""

    params: dict[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    from_tasks: tuple[str, ...] = ()

    def options(self) -> RunOptions:
        """The keywords for ``execute`` and ``plan``: None for what was not given."""
        return {
            "params": self.params or None,
            "targets": list(self.targets) or None,
            "from_tasks": list(self.from_tasks) or None,
        }

    def tasks_in(self, workflow: Workflow) -> list[Task]:
        """The tasks a run with this selection is given to run or restore, in the
        workflow's order. The others stay PENDING and get no event: those outside it, and
        those upstream of ``--from`` whose saved results it takes.

        :raises WorkflowValidationError: for a name the workflow does not have.
        """
        chosen = select(workflow, self.targets or None, self.from_tasks or None)
        if chosen is None:
            return workflow.tasks
        names = set(chosen.names) - chosen.given
        return [t for t in workflow.tasks if t.name in names]


def selection_options(command: F) -> F:
    """``-p``, ``--target`` and ``--from``, as ``run`` and ``plan`` both take them."""
    command = click.option(
        "--from",
        "from_tasks",
        metavar="NAME",
        multiple=True,
        help="Run this task and everything downstream of it (repeat for more); the "
        "results it needs from upstream come from the state store.",
    )(command)
    command = click.option(
        "--target",
        "targets",
        metavar="NAME",
        multiple=True,
        help="Run only this task and what it needs upstream, restoring what it can "
        "(repeat for more).",
    )(command)
    return click.option(
        "--param",
        "-p",
        "params",
        metavar="NAME=VALUE",
        multiple=True,
        callback=parse_params,
        help="A run parameter, passed to every task that takes an argument of that "
        "name (repeat for more). VALUE is JSON when it parses (10, true, [1,2], "
        "'\"quoted\"'), else text (-p date=2026-11-30).",
    )(command)
