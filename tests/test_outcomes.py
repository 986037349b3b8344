"""The public outcome names: ``Skip``, ``Failed`` and ``SKIPPED`` (pickled to Dask workers)."""

from __future__ import annotations

import pickle

import flowweaver
from flowweaver import SKIPPED, Failed, Skip, Task


def test_skipped_is_one_object_even_through_pickle() -> None:
    assert pickle.loads(pickle.dumps(SKIPPED)) is SKIPPED
    assert type(SKIPPED)() is SKIPPED
    assert repr(SKIPPED) == "flowweaver.SKIPPED"
    assert not SKIPPED


def test_failed_holds_the_error_and_survives_pickle() -> None:
    error = ValueError("disk full")
    failed = Failed(error)
    assert failed.error is error
    assert failed == Failed(error)
    assert failed != Failed(ValueError("disk full"))  # another error
    assert repr(failed) == "Failed(ValueError('disk full'))"
    again = pickle.loads(pickle.dumps(failed))
    assert isinstance(again, Failed)
    assert str(again.error) == "disk full"


def test_skip_carries_its_reason_and_is_not_a_flowweaver_error() -> None:
    exc = pickle.loads(pickle.dumps(Skip("no new data")))
    assert exc.reason == "no new data"
    assert str(exc) == "no new data"
    assert not isinstance(exc, flowweaver.FlowWeaverError)


def test_the_trigger_option_is_copied_onto_the_task() -> None:
    assert Task("t", lambda: None).trigger == "all_success"
    assert Task("t", lambda: None, trigger="one_success").trigger == "one_success"
