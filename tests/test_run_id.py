"""Every event of a run carries the run's id (``event.run_id``, 16 hex digits): the same
for all of one run's events, another for the next run. Every executor form, with and
without a store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from flowweaver import RunStarted, Task, TaskStarted, Workflow
from tests.helpers import EventLog
from tests.run_helpers import Runner, form_named, make_store, pairwise

STORES = ["none", "json", "sqlite"]


@pytest.mark.parametrize(("form", "kind", "backend"), pairwise(STORES), ids="-".join)
def test_every_event_of_a_run_carries_its_id(
    tmp_path: Path, kind: str, form: str, backend: str
) -> None:
    runner = Runner(make_store(kind, tmp_path), *form_named(form), backend)
    ids = []
    for _ in range(2):
        wf = Workflow("ids")
        wf.add_task(Task("a", lambda: [1, 2]))
        wf.add_task(Task("b", lambda a: a * 2), map_over="a")
        log = EventLog()
        runner.run(wf, observer=log, fresh=True)
        assert {type(e) for e in log.events} >= {RunStarted, TaskStarted}
        ids.append({e.run_id for e in log.events})
    assert all(len(one) == 1 for one in ids)
    first, second = (one.pop() for one in ids)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert re.fullmatch(r"[0-9a-f]{16}", second)
    assert first != second


def test_an_event_made_outside_a_run_has_an_empty_id() -> None:
    event: Any = TaskStarted("wf", 0.0, "t", 1)
    assert event.run_id == ""
