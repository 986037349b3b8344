"""Executor fixtures: the awaitable executors here, the blocking ones in the generated twin.

``scripts/unasync.py`` turns ``flowweaver.aio``'s classes into ``flowweaver``'s blocking
ones (``AsyncExecutor`` into ``ConcurrentExecutor``), so every test in ``tests/_async``
runs against both forms.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowweaver.aio import AsyncExecutor, SequentialExecutor, ThreadedExecutor

EXECUTORS: list[type[Any]] = [SequentialExecutor, ThreadedExecutor, AsyncExecutor]
# The executors that may run more than one task at a time.
PARALLEL: list[type[Any]] = [ThreadedExecutor, AsyncExecutor]


def _name(cls: type[Any]) -> str:
    return cls.__name__


@pytest.fixture(params=EXECUTORS, ids=_name)
def executor_cls(request: pytest.FixtureRequest) -> type[Any]:
    """Each of the three executors (the class; a test makes its own instance)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=PARALLEL, ids=_name)
def parallel_cls(request: pytest.FixtureRequest) -> type[Any]:
    """The executors that run tasks concurrently."""
    return request.param  # type: ignore[no-any-return]


def _bounded(cls: type[Any], bound: int | None, kwargs: dict[str, Any]) -> Any:
    if bound is not None and cls is ThreadedExecutor:
        return cls(max_workers=bound, **kwargs)
    if bound is not None and cls is AsyncExecutor:
        return cls(max_concurrent=bound, **kwargs)
    return cls(**kwargs)


@pytest.fixture
def make_executor(executor_cls: type[Any]) -> Any:
    """``make_executor(bound=None, **kwargs)``: an instance of each executor in turn;
    ``bound`` is its ``max_workers`` or ``max_concurrent`` (SequentialExecutor has none)."""
    return lambda bound=None, **kwargs: _bounded(executor_cls, bound, kwargs)


@pytest.fixture
def make_parallel(parallel_cls: type[Any]) -> Any:
    """Like ``make_executor``, for the executors that run tasks concurrently."""
    return lambda bound=None, **kwargs: _bounded(parallel_cls, bound, kwargs)
