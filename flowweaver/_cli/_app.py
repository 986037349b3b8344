"""The click command group: options, help texts and exit codes; the work is elsewhere.

click rather than typer: the command is four subcommands with a handful of options, which
click states plainly in decorators; typer is a layer over click (so it would bring click
anyway) plus its own dependencies, and its type-hint magic buys nothing here. click also
exits with code 2 on bad usage by itself, which is the code this command promises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .. import __version__
from .._errors import WorkflowValidationError
from ._errors import INTERRUPTED, BadInput
from ._history import history as show_history
from ._history import show_run
from ._inspect import reset as reset_store
from ._inspect import status as show_status
from ._inspect import task_logs as show_logs
from ._load import load_workflow
from ._params import Selection, selection_options
from ._plan import plan as plan_workflow
from ._progress import DEFAULT_INTERVAL
from ._run import EXECUTORS, RunOptions
from ._run import run as run_workflow
from ._summary import ALL_ROWS_UP_TO


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowweaver")
def cli() -> None:
    """FlowWeaver: run a workflow file, watch it, stop it, resume it, inspect what happened.

    \b
    flowweaver run pipeline.py           run (again: resume) the Workflow in pipeline.py
    flowweaver run pipeline.py -p date=2026-11-30   ... with a run parameter
    flowweaver plan pipeline.py          what a run would run or restore, and why
    flowweaver status                    what the last runs saved
    flowweaver history                   the runs recorded, newest first
    flowweaver graph pipeline.py         the DAG as a Mermaid flowchart
    flowweaver reset --task load         forget a saved task so it runs again
    """


F = TypeVar("F", bound=Callable[..., Any])


def store_options(command: F) -> F:
    """``--store``, ``--no-store`` and ``--fresh``, as ``run`` and ``plan`` both take them."""
    command = click.option(
        "--fresh", is_flag=True, help="Ignore saved results: run every task (and save anew)."
    )(command)
    command = click.option("--no-store", is_flag=True, help="Save nothing and restore nothing.")(
        command
    )
    return click.option(
        "--store",
        "store",
        metavar="PATH",
        default=None,
        help="The state store: a .db (SQLite) or .json file. "
        "Default: .flowweaver/state.db in the current folder.",
    )(command)


@cli.command(short_help="Run (or resume) the Workflow in a Python file.")
@click.argument("target", metavar="FILE[:NAME]")
@click.option(
    "--executor",
    "-e",
    type=click.Choice(EXECUTORS),
    default="threaded",
    show_default=True,
    help="sequential: one task at a time; threaded: sync tasks on worker threads; "
    "async: many tasks at once on the event loop (best for async def tasks); "
    "process: sync tasks in worker processes (CPU-bound work; timeouts kill).",
)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    default=None,
    help="The most tasks at once (threaded: default 4; async: default 50; "
    "process: default the number of CPUs).",
)
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="TAG=N",
    help="At most N tasks tagged TAG at once, e.g. --limit db=2 (repeatable).",
)
@click.option(
    "--rate",
    "rates",
    multiple=True,
    metavar="TAG=RATE",
    help="At most RATE starts of tasks tagged TAG, e.g. --rate api=10/s or api=600/min "
    "(repeatable).",
)
@store_options
@click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    show_default=True,
    help="The event loop the run starts (trio must be installed).",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="At the first failure, cancel what is running and skip the rest.",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Print every event (each start, completion, restore, skip, item) and every "
    "failed task's traceback.",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"A summary row per task (a run of more than {ALL_ROWS_UP_TO} tasks shows the "
    "failed, retried and slowest ones and counts the rest).",
)
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=0),
    default=DEFAULT_INTERVAL,
    show_default=True,
    envvar="FLOWWEAVER_PROGRESS_INTERVAL",
    metavar="SECONDS",
    help="In a log or a pipe, a progress line this often (0: none). "
    "Env: FLOWWEAVER_PROGRESS_INTERVAL.",
)
@selection_options
def run(
    target: str,
    executor: str,
    workers: int | None,
    limits: tuple[str, ...],
    rates: tuple[str, ...],
    store: str | None,
    no_store: bool,
    fresh: bool,
    backend: str,
    fail_fast: bool,
    verbose: bool,
    show_all: bool,
    progress_interval: float,
    params: dict[str, Any],
    targets: tuple[str, ...],
    from_tasks: tuple[str, ...],
) -> None:
    """Run the Workflow defined in FILE (NAME picks one when FILE has several).

    FILE is imported as a module named after it, with its folder on sys.path, so its
    `if __name__ == "__main__":` block does not run. NAME is the variable holding the
    Workflow or the Workflow's name.

    Completed tasks are saved in the state store; running the same command again
    restores them instead of running them (also after a failure or Ctrl-C), so it
    resumes where the last run stopped. A saved result is restored only while what the
    task receives is unchanged: a new -p value re-runs the tasks that take it, and what
    depends on their changed results.

    --target runs only those tasks and what they need; --from runs those tasks and what
    depends on them, taking what they need from upstream from the state store. The other
    tasks are left alone.

    On a terminal a live display shows the run. In a log or a pipe it prints what needs
    reading: retries, failures, skips (a line per cause), restored tasks (counted), and
    a progress line every few seconds; --verbose prints every event.

    Exit codes: 0 all tasks completed, 1 a task failed, 2 bad usage, 130 interrupted
    (Ctrl-C), 143 terminated (SIGTERM); after 130 and 143 the next run resumes.
    """
    _check_store_options(store, no_store)
    options = RunOptions(
        target=target,
        executor=executor,
        workers=workers,
        store=store,
        no_store=no_store,
        fresh=fresh,
        backend=backend,
        fail_fast=fail_fast,
        selection=Selection(params, targets, from_tasks),
        limits=limits,
        rates=rates,
        verbose=verbose,
        show_all=show_all,
        progress_interval=progress_interval,
    )
    try:
        code = run_workflow(options)
    except KeyboardInterrupt:  # while importing the file, before the run began
        click.echo("\nInterrupted.", err=True)
        code = INTERRUPTED
    raise SystemExit(code)


def _check_store_options(store: str | None, no_store: bool) -> None:
    if store is not None and no_store:
        raise click.UsageError("--store and --no-store cannot be used together")


@cli.command(short_help="Show what a run would run or restore, and why; runs nothing.")
@click.argument("target", metavar="FILE[:NAME]")
@store_options
@selection_options
def plan(
    target: str,
    store: str | None,
    no_store: bool,
    fresh: bool,
    params: dict[str, Any],
    targets: tuple[str, ...],
    from_tasks: tuple[str, ...],
) -> None:
    """Show what `flowweaver run` with the same options would do with each task of the
    Workflow in FILE: run it, restore its saved result, or skip it, and why.

    Nothing runs and the state store is only read (a store that does not exist yet is
    not made: every task would run). "run?" marks a task decided during the run: it is
    restored after all when the upstream tasks that run return what they did before.

    Exit codes: 0 the plan was shown, 2 bad usage (a bad file, parameter or task name).
    """
    _check_store_options(store, no_store)
    selection = Selection(params, targets, from_tasks)
    raise SystemExit(plan_workflow(target, selection, store, no_store=no_store, fresh=fresh))


@cli.command(short_help="Show the task states saved in a state store.")
@click.argument("store", metavar="[STORE]", required=False)
@click.option("--workflow", "-W", metavar="NAME", help="Only this workflow's tasks.")
@click.option(
    "--run",
    "run_id",
    metavar="ID",
    help="Show this run instead (an id from `flowweaver history`, or its first characters).",
)
@click.option(
    "--logs",
    "logs_of",
    metavar="TASK",
    help="Print the log and print lines saved with TASK's record (captured by the run).",
)
def status(
    store: str | None, workflow: str | None, run_id: str | None, logs_of: str | None
) -> None:
    """Show the tasks saved in STORE: status, when, and the error of failed ones.

    With --run ID: that run's parameters, times, status and counts, which tasks ran and
    why, and which were restored. With --logs TASK: the last lines TASK logged and
    printed, as its run captured them (`flowweaver run` captures them; in Python, an
    executor's capture_logs=True).

    STORE defaults to .flowweaver/state.db, where `flowweaver run` saves by default.
    """
    if run_id is not None and logs_of is not None:
        raise click.UsageError("--run and --logs do not go together: pick one")
    if run_id is not None:
        raise SystemExit(show_run(store, run_id, workflow))
    if logs_of is not None:
        raise SystemExit(show_logs(store, logs_of, workflow))
    raise SystemExit(show_status(store, workflow))


@cli.command(short_help="List the runs recorded in a state store, newest first.")
@click.argument("store", metavar="[STORE]", required=False)
@click.option("--workflow", "-W", metavar="NAME", help="Only this workflow's runs.")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many runs (default 20).",
)
def history(store: str | None, workflow: str | None, limit: int | None) -> None:
    """List the runs recorded in STORE, newest first: id, workflow, start, duration,
    status and how their tasks ended. A run whose process died shows INTERRUPTED.

    STORE defaults to .flowweaver/state.db. `flowweaver status --run ID` shows one run.
    """
    raise SystemExit(show_history(store, workflow, limit))


@cli.command(short_help="Print a Workflow's DAG as Mermaid or DOT.")
@click.argument("target", metavar="FILE[:NAME]")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="mermaid: paste into Markdown (GitHub renders it); dot: pipe to `dot -Tsvg`.",
)
def graph(target: str, fmt: str) -> None:
    """Print the DAG of the Workflow in FILE, as Mermaid or Graphviz DOT text."""
    path, workflow = load_workflow(target)
    try:
        text = workflow.to_mermaid() if fmt == "mermaid" else workflow.to_dot()
    except WorkflowValidationError as exc:
        raise BadInput(f"workflow {workflow.name!r} in {path} is invalid: {exc}") from exc
    click.echo(text, nl=False)


@cli.command(short_help="Delete saved task states so those tasks run again.")
@click.argument("store", metavar="[STORE]", required=False)
@click.option("--workflow", "-W", metavar="NAME", help="Only this workflow's tasks.")
@click.option(
    "--task",
    "-t",
    "tasks",
    metavar="NAME",
    multiple=True,
    help="Only this task (repeat for more): it runs again next time, and so do the tasks "
    "downstream of it when its result comes out different.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def reset(store: str | None, workflow: str | None, tasks: tuple[str, ...], yes: bool) -> None:
    """Delete saved task states from STORE, so those tasks run again next time.

    Without --workflow or --task, everything in the store is deleted. Asks first
    unless --yes. STORE defaults to .flowweaver/state.db.
    """
    raise SystemExit(reset_store(store, workflow, tasks, yes))
