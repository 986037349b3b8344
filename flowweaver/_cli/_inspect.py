"""``flowweaver status`` and ``flowweaver reset``: reading and deleting saved task states.

Neither ever creates a store: both need one that exists. Unknown workflow or task names
are bad usage (exit 2) and delete nothing, since a typo is the likely cause; the message
lists what the store does hold.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime

import click

from .._store._api import StateStoreError, TaskRecord
from ._errors import DECLINED, OK, BadInput
from ._output import Output, one_line, stdout_is_terminal
from ._stores import CliStore, existing_store, read_records, workflows_of


def _format_time(moment: datetime) -> str:
    # Saved times are UTC; people read their own clock.
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _unknown(kind: str, name: str, known: Sequence[str], where: str) -> BadInput:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(known) if known else "none"
    return BadInput(f"{where} has no saved {kind} {name!r}; {hint}saved {kind}s: {listed}")


def status(store_arg: str | None, workflow: str | None) -> int:
    """Print the saved tasks (of ``workflow``): status, time saved and error."""
    store, path = existing_store(store_arg)
    every = read_records(store, path, None)
    if not every:
        click.echo(f"{path} holds no saved tasks.")
        return OK
    if workflow is not None:
        names = workflows_of(every)
        if workflow not in names:
            raise _unknown("workflow", workflow, names, str(path))
        records = read_records(store, path, workflow)
    else:
        records = every
    out = Output(stdout_is_terminal())
    for name in workflows_of(records):
        mine = [r for r in records if (r.workflow or "?") == name]
        rows = [
            [r.task_name, r.status.value, _format_time(r.timestamp), one_line(r.error or "")]
            for r in mine
        ]
        counts = _counts(mine)
        out.table(
            ["task", "status", "saved at", "error"],
            rows,
            title=f"workflow {name}: {counts}",
            status_column=1,
        )
        out.line()
    return OK


def task_logs(store_arg: str | None, task_name: str, workflow: str | None) -> int:
    """Print the lines saved with ``task_name``'s record, one per line (so a pipe can
    grep them).

    :raises BadInput: for an unknown workflow or task, a name saved for several
        workflows without ``workflow``, or a record without captured lines.
    """
    store, path = existing_store(store_arg)
    every = read_records(store, path, None)
    if workflow is not None and workflow not in workflows_of(every):
        raise _unknown("workflow", workflow, workflows_of(every), str(path))
    scope = [r for r in every if workflow is None or (r.workflow or "?") == workflow]
    matches = [r for r in scope if r.task_name == task_name]
    if not matches:
        where = f"{path} (workflow {workflow!r})" if workflow else str(path)
        raise _unknown("task", task_name, sorted({r.task_name for r in scope}), where)
    if len(matches) > 1:
        owners = ", ".join(workflows_of(matches))
        raise BadInput(
            f"task {task_name!r} is saved for several workflows ({owners}); pick one with "
            "--workflow NAME"
        )
    record = matches[0]
    if record.logs is None:
        raise BadInput(
            f"task {task_name!r} in {path} has no captured lines: the run that saved it "
            "did not capture them (flowweaver run does; in Python, pass capture_logs=True "
            "to the executor)"
        )
    if not record.logs:
        click.echo(f"(task {task_name!r} logged and printed nothing)", err=True)
    for line in record.logs:
        click.echo(line)
    return OK


def _counts(records: Sequence[TaskRecord]) -> str:
    by_status: dict[str, int] = {}
    for r in records:
        by_status[r.status.value] = by_status.get(r.status.value, 0) + 1
    return ", ".join(f"{n} {s.lower()}" for s, n in sorted(by_status.items()))


def reset(store_arg: str | None, workflow: str | None, tasks: Sequence[str], yes: bool) -> int:
    """Delete saved task states, after asking unless ``yes``.

    No ``workflow`` and no ``tasks``: everything in the store. ``tasks`` without
    ``workflow``: each name must belong to one workflow only.
    """
    store, path = existing_store(store_arg)
    every = read_records(store, path, None)
    if not every:
        click.echo(f"Nothing to delete: {path} holds no saved tasks.")
        return OK
    names = workflows_of(every)
    if workflow is not None and workflow not in names:
        raise _unknown("workflow", workflow, names, str(path))
    scope = [r for r in every if workflow is None or (r.workflow or "?") == workflow]

    targets: list[TaskRecord] = []
    for task_name in dict.fromkeys(tasks):  # each once, in the order given
        matches = [r for r in scope if r.task_name == task_name]
        if not matches:
            where = f"{path} (workflow {workflow!r})" if workflow else str(path)
            known = sorted({r.task_name for r in scope})
            raise _unknown("task", task_name, known, where)
        owners = workflows_of(matches)
        if len(owners) > 1:
            raise BadInput(
                f"task {task_name!r} is saved for several workflows ({', '.join(owners)}); "
                "pick one with --workflow NAME"
            )
        targets.extend(matches)

    if tasks:
        listed = ", ".join(r.task_name for r in targets)
        owner = workflows_of(targets)[0]
        question = (
            f"Delete the saved state of {len(targets)} task(s) of workflow {owner!r} "
            f"({listed}) from {path}?"
        )
    elif workflow is not None:
        question = f"Delete all {len(scope)} saved task(s) of workflow {workflow!r} from {path}?"
    else:
        question = (
            f"Delete all {len(every)} saved task(s) of {len(names)} workflow(s) "
            f"({', '.join(names)}) from {path}?"
        )
    if not yes and not click.confirm(question, default=False):
        click.echo("Nothing deleted.")
        return DECLINED

    _delete(store, path, workflow, tasks, targets)
    count = len(targets) if tasks else len(scope)
    click.echo(
        f"Deleted {count} saved task state(s) from {path}; the next run runs those tasks "
        "(and the tasks downstream of them) again."
    )
    return OK


def _delete(
    store: CliStore,
    path: object,
    workflow: str | None,
    tasks: Sequence[str],
    targets: Sequence[TaskRecord],
) -> None:
    try:
        if tasks:
            for r in targets:
                store.delete_task_state(r.task_name, workflow=r.workflow)
        else:
            store.clear_all_states(workflow=workflow)
    except StateStoreError as exc:
        raise BadInput(f"could not delete from {path}: {exc}") from exc
