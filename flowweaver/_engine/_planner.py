"""``executor.plan``: what a run would do with each task, and why, without running any.

The plan asks the same questions as a run, of the same code: the run's inputs
(``_select``), the store's records and the checks of ``_resume`` (through
``_persist.RunStore``), so a plan and the run after it agree. Where a run can only decide
once a task is ready (an upstream task runs first: will it return what it did? a
``cache_key`` needs the upstream results), the plan says ``run`` with
``unless_unchanged``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._explain import Action, Plan, PlannedTask
from .._outcomes import SKIPPED
from .._status import TaskStatus
from ._limits import build_gate
from ._persist import RunStore
from ._select import held, results_unavailable

if TYPE_CHECKING:
    from .._executor import BaseExecutor, RunOptions
    from .._store._api import TaskRecord
    from .._task import Task
    from .._workflow import Workflow
    from ._graph import Graph


async def plan_workflow(executor: BaseExecutor, workflow: Workflow, options: RunOptions) -> Plan:
    """What ``executor.execute(workflow, **options)`` would do with each task.

    :raises WorkflowValidationError: what the run would raise before anything runs.
    :raises StateStoreError: the store cannot be read.
    """
    from ._driver import run_inputs

    params, selection = run_inputs(workflow, options)
    # the run's check of the executor's limits: a tag no task has is refused
    build_gate(
        workflow.name,
        (tag for t in workflow._tasks.values() for tag in t.tags),
        (),
        executor.limits,
        executor._rates,
    )
    hold = held(workflow, selection)
    graph = hold.graph
    names = graph.names
    tasks = [workflow._tasks[n] for n in names]
    out: dict[int, PlannedTask] = {}
    if executor.state_store is None:
        if hold.given:
            raise results_unavailable(workflow.name, [names[i] for i in hold.given], False)
        for i in graph.topological_order():
            out[i] = PlannedTask(names[i], "run", "no state store")
        return _plan(workflow, params, names, out)
    store = RunStore(
        executor.state_store,
        workflow.name,
        graph,
        tasks,
        run_id="",
        fresh=executor.fresh,
        fingerprint_code=executor.fingerprint_code,
        params=params,
    )
    await store.peek()
    found, missing = store.given(hold.given)
    if missing:
        raise results_unavailable(workflow.name, [names[i] for i in missing], True)
    judged = store.judge(hold.forced)
    restored: dict[int, Any] = {}  # what a restored task passes on
    for i in graph.topological_order():
        rec = judged.restore.get(i)
        if i in found:
            restored[i] = _passed_on(found[i])
            # Outside the selection: the run neither restores nor reports it (it stays
            # PENDING), so "restore" would promise a TaskRestored that never comes.
            out[i] = PlannedTask(names[i], "skip", "taken from the store for the selection")
        elif rec is not None:
            out[i] = _restored(names[i], rec)
            restored[i] = _passed_on(rec)
        elif i in judged.later:
            saved = judged.later[i]
            out[i] = _later(store, graph, i, tasks[i], saved, judged.reason(i), restored, params)
            if out[i].action == "restore":
                restored[i] = _passed_on(saved)
                store.restored(i, saved)  # its token, which the tasks below it check
        else:
            out[i] = PlannedTask(names[i], "run", judged.reason(i))
    return _plan(workflow, params, names, out)


def _restored(name: str, rec: TaskRecord) -> PlannedTask:
    if rec.status is TaskStatus.SKIPPED and rec.token is None:
        # Skipped by its trigger rule, and every upstream task ends as it did then.
        return PlannedTask(name, "skip", rec.error or "skipped by its trigger rule")
    if rec.status is TaskStatus.SKIPPED:
        return PlannedTask(name, "restore", f"saved skip stands: {rec.error}")
    return PlannedTask(name, "restore", "saved result stands")


def _passed_on(rec: TaskRecord) -> Any:
    return rec.result if rec.status is TaskStatus.COMPLETED else SKIPPED


def _later(
    store: RunStore,
    graph: Graph,
    i: int,
    t: Task,
    rec: TaskRecord,
    reason: str,
    restored: dict[int, Any],
    params: dict[str, Any],
) -> PlannedTask:
    """A task the run decides when it is ready. With every upstream result known now
    (restored: a keyed task above it may have been found unchanged here), what it
    receives is compared here, its ``cache_key`` asked, as the run would."""
    ups = graph.upstream[i]
    waiting = [j for j in ups if j not in restored]
    if waiting:
        if t.cache_key is None:  # the upstream task judge named may be planned restore now
            reason = f"upstream `{store._graph.names[waiting[0]]}` will run"
        return PlannedTask(t.name, "run", reason, unless_unchanged=True)
    kwargs = None
    if t.cache_key is not None:
        names = graph.names
        kwargs = {k: v for k, v in params.items() if t.accepts(k)}
        kwargs.update({names[j]: restored[j] for j in ups if t.accepts(names[j])})
    try:
        why = store.unchanged(i, rec, kwargs)
    except Exception as exc:
        return PlannedTask(t.name, "run", f"its cache_key raised {type(exc).__name__}: {exc}")
    if why is None:
        same = " (same cache_key)" if t.cache_key is not None else ""
        return PlannedTask(t.name, "restore", "saved result stands" + same)
    return PlannedTask(t.name, "run", why)


def _plan(
    workflow: Workflow, params: dict[str, Any], names: list[str], planned: dict[int, PlannedTask]
) -> Plan:
    """Every task of the workflow, in the workflow's topological order (a selection's
    given tasks may come before tasks upstream of them in the run's own order)."""
    by_name = {names[i]: planned[i] for i in planned}
    action: Action = "skip"
    graph = workflow.graph()
    ordered = {}
    for i in graph.topological_order():
        name = graph.names[i]
        ordered[name] = by_name.get(name) or PlannedTask(name, action, "not selected")
    return Plan(workflow.name, params, ordered)
