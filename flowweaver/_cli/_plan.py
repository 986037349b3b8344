"""``flowweaver plan``: what ``flowweaver run`` with the same options would do, and why.

It runs nothing and writes nothing: the state store is opened only when it exists (a
missing one is not made, as ``run`` would make it; every task would run then), and
``executor.plan`` only reads its records.
"""

from __future__ import annotations

import json

import flowweaver

from .._errors import WorkflowValidationError
from .._explain import Plan
from .._store._api import StateStoreError
from ._errors import OK, BadInput
from ._load import load_valid_workflow
from ._output import Output, stdout_is_terminal
from ._params import Selection
from ._stores import CliStore, store_if_any

ACTION_STYLES = {"run": "yellow", "run?": "cyan", "restore": "green", "skip": "dim"}

UNLESS_UNCHANGED_NOTE = (
    "run?: decided during the run: restored after all when the upstream tasks that run "
    "return what they returned before (or its cache_key is unchanged)."
)


def plan(
    target: str, selection: Selection, store_arg: str | None, *, no_store: bool, fresh: bool
) -> int:
    """Print the plan of the workflow ``target`` names; returns the exit code (0).

    :raises BadInput: (exit code 2) for a bad file, name, store, parameter or selection,
        as ``run`` does for them.
    """
    path, workflow = load_valid_workflow(target)
    store, where = _plan_store(store_arg, no_store)
    executor = flowweaver.SequentialExecutor(state_store=store, fresh=fresh)
    try:
        the_plan = executor.plan(workflow, **selection.options())
    except WorkflowValidationError as exc:
        raise BadInput(f"cannot plan workflow {workflow.name!r} in {path}: {exc}") from exc
    except StateStoreError as exc:
        raise BadInput(str(exc)) from exc
    render_plan(Output(stdout_is_terminal()), the_plan, where)
    return OK


def _plan_store(store_arg: str | None, no_store: bool) -> tuple[CliStore | None, str]:
    """The store to read (None: no records), and a few words on it for the heading."""
    if no_store:
        return None, "no state store (--no-store)"
    store, path = store_if_any(store_arg)
    # `run` would make a missing store; a plan makes nothing: no records, every task runs
    return store, (f"state store {path}" if store is not None else f"no state store at {path} yet")


def describe_params(params: dict[str, object]) -> str:
    """``date="2026-11-30", limit=10`` (as JSON, the way ``-p`` takes them)."""
    return ", ".join(f"{name}={_shown(value)}" for name, value in params.items())


def _shown(value: object) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def render_plan(out: Output, plan: Plan, where: str) -> None:
    """The heading, a table of task, action and reason, and the count line.

    A "run" decided during the run (``unless_unchanged``) is shown as ``run?``, with a
    line under the table saying what that means.
    """
    params = f" with {describe_params(plan.params)}" if plan.params else ""
    out.line(f"Plan for {plan.workflow}{params}, {where}:", style="bold")
    out.line()
    rows = []
    for planned in plan.values():
        action = "run?" if planned.action == "run" and planned.unless_unchanged else planned.action
        rows.append([planned.name, action, planned.reason])
    out.table(["task", "action", "reason"], rows, status_column=1, styles=ACTION_STYLES)
    out.line()
    counts = plan.counts()
    out.line(f"{counts['run']} run, {counts['restore']} restore, {counts['skip']} skip")
    if any(p.unless_unchanged for p in plan.values() if p.action == "run"):
        out.line(UNLESS_UNCHANGED_NOTE, style="dim")
