"""``flowweaver history`` and ``flowweaver status --run ID``: the runs a store recorded.

Both look at a store that exists (the same ``[STORE]`` argument and default as
``status``) and never change it. A run recorded ``RUNNING`` whose process is gone is shown
``INTERRUPTED``, as the store reports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import click

from .._store._api import RunRecord, StateStoreError
from ._errors import OK, BadInput
from ._inspect import _format_time as format_time
from ._inspect import _unknown as unknown
from ._output import Output, format_duration, stdout_is_terminal
from ._stores import CliStore, existing_store

#: How many runs ``history`` lists without ``--limit``.
DEFAULT_LIMIT = 20


def history(store_arg: str | None, workflow: str | None, limit: int | None) -> int:
    """Print the recorded runs (of ``workflow``), newest first, at most ``limit``."""
    store, path = existing_store(store_arg)
    shown = DEFAULT_LIMIT if limit is None else limit
    runs = _runs(store, path, workflow, shown + 1)
    if not runs:
        if workflow is not None:
            known = sorted({r.workflow for r in _runs(store, path, None, None)})
            if known:
                raise unknown("workflow", workflow, known, f"the run history of {path}")
        click.echo(f"{path} has no run history yet; `flowweaver run` records each run.")
        return OK
    rows = [
        [
            r.run_id,
            r.workflow,
            format_time(r.started),
            _duration(r),
            r.status,
            format_counts(r.counts),
        ]
        for r in runs[:shown]
    ]
    out = Output(stdout_is_terminal())
    out.table(["run", "workflow", "started", "duration", "status", "tasks"], rows, status_column=4)
    if len(runs) > shown:
        out.line(f"Older runs not shown: pass --limit N to see more than {shown}.")
    return OK


def show_run(store_arg: str | None, run_id: str, workflow: str | None) -> int:
    """Print one run: parameters, times, status, counts, what ran and why, what was
    restored. ``run_id`` may be a unique prefix of the id."""
    store, path = existing_store(store_arg)
    run = _find(store, path, run_id, workflow)
    out = Output(stdout_is_terminal())
    out.line(f"run {run.run_id} of workflow {run.workflow}: {run.status}")
    ended = format_time(run.ended) if run.ended is not None else "-"
    out.line(f"started {format_time(run.started)}, ended {ended}, took {_duration(run)}")
    if run.pid is not None:
        out.line(f"process {run.pid} on {run.host or '?'}")
    out.line(f"parameters: {_params(run.params)}")
    out.line(f"tasks: {format_counts(run.counts) or '-'}")
    out.line()
    rows = [[name, "ran", why] for name, why in run.ran.items()]
    rows += [[name, "restored", "saved result stands"] for name in run.restored]
    if rows:
        out.table(["task", "action", "why"], rows)
    else:
        out.line("No task ran or was restored.")
    return OK


def format_counts(counts: Mapping[str, int]) -> str:
    """``"3 completed, 1 restored"``: the counts that are not zero."""
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n)


def _params(params: Mapping[str, object]) -> str:
    if not params:
        return "none"
    return " ".join(
        f"{k}={json.dumps(v, ensure_ascii=False, default=repr)}" for k, v in params.items()
    )


def _duration(run: RunRecord) -> str:
    if run.ended is None:
        return "-"
    return format_duration((run.ended - run.started).total_seconds())


def _runs(
    store: CliStore, path: object, workflow: str | None, limit: int | None
) -> list[RunRecord]:
    try:
        return store.runs(workflow=workflow, limit=limit)
    except StateStoreError as exc:
        raise BadInput(str(exc)) from exc


def _find(store: CliStore, path: object, run_id: str, workflow: str | None) -> RunRecord:
    if not run_id:
        raise BadInput("--run needs a run id; `flowweaver history` lists them")
    try:
        run = store.get_run(run_id)
    except StateStoreError as exc:
        raise BadInput(str(exc)) from exc
    if run is None:
        # A prefix, as people copy the first characters of an id (as with git).
        runs = _runs(store, path, workflow, None)
        matches = [r for r in runs if r.run_id.startswith(run_id)]
        if len(matches) > 1:
            ids = ", ".join(r.run_id for r in matches[:5])
            raise BadInput(f"{run_id!r} starts several run ids in {path} ({ids}); give more of it")
        run = matches[0] if matches else None
    if run is None or (workflow is not None and run.workflow != workflow):
        of = f" of workflow {workflow!r}" if workflow is not None else ""
        raise BadInput(
            f"{path} has no run {run_id!r}{of}; `flowweaver history` lists the runs it recorded"
        )
    return run
