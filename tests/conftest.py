"""Shared fixtures: each ``@pytest.mark.anyio`` test runs under asyncio and under trio."""

from __future__ import annotations

import signal

import pytest

# A shell starts background jobs (CI steps, `cmd &`) with SIGINT ignored, and an ignored
# signal stays ignored in every child process. Tests that press Ctrl-C on a child need it
# to react as it would in a terminal, so the test process restores the usual handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
