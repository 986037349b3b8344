"""``executor.plan``: what a run would do with each task, and why (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._executor import BaseExecutor, RunOptions
    from .._explain import Plan
    from .._workflow import Workflow


async def plan_workflow(executor: BaseExecutor, workflow: Workflow, options: RunOptions) -> Plan:
    raise NotImplementedError("executor.plan is being built (issue 12)")
