"""Shared fixtures: each ``@pytest.mark.anyio`` test runs under asyncio and under trio."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.run_helpers import BUILT_IN_KINDS, FORM_IDS, Runner, form_named, make_store, pairwise

# A shell starts background jobs (CI steps, `cmd &`) with SIGINT ignored, and an ignored
# signal stays ignored in every child process. Tests that press Ctrl-C on a child need it
# to react as it would in a terminal, so the test process restores the usual handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- every executor form, store and backend (tests/run_helpers.py) -------------------------


@pytest.fixture(params=FORM_IDS)
def form(request: pytest.FixtureRequest) -> tuple[type, bool]:
    """An executor class, and whether it is awaited: each blocking and awaitable form."""
    return form_named(request.param)


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _runner(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    form, kind, backend = request.param
    return Runner(make_store(kind, tmp_path), *form_named(form), backend)


@pytest.fixture(params=pairwise(["none", *BUILT_IN_KINDS]), ids="-".join)
def runner(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """Every form, without a store and with each built-in store (in ``tmp_path``)."""
    return _runner(request, tmp_path)


@pytest.fixture(params=pairwise(BUILT_IN_KINDS), ids="-".join)
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """Every form with each built-in store (in ``tmp_path``)."""
    return _runner(request, tmp_path)
