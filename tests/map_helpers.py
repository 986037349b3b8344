"""Item functions for the map tests (``tests/_async/test_map_engine.py`` and its twin,
``tests/test_map_engine.py``).

Not generated, like ``tests/helpers.py``: an ``async def`` here stays a coroutine function
in the blocking twin, so the blocking executors await real async items too. Each function
takes the element as ``src`` (the name of the task mapped over in these tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import anyio.lowlevel

from tests.helpers import Concurrency


def sleeping_item(
    form: str, fn: Callable[..., Any], seconds: Callable[[Any], float]
) -> Callable[..., Any]:
    """An item function ``(src, **upstream)`` that sleeps ``seconds(src)``, then returns
    ``fn(src, **upstream)``: a plain function (``form="sync"``) or an ``async def``."""

    def item(src: Any, **upstream: Any) -> Any:
        time.sleep(seconds(src))
        return fn(src, **upstream)

    async def async_item(src: Any, **upstream: Any) -> Any:
        await anyio.sleep(seconds(src))
        return fn(src, **upstream)

    return item if form == "sync" else async_item


def in_form(form: str, fn: Callable[[Any], Any]) -> Callable[..., Any]:
    """``fn`` itself (``form="sync"``), or an ``async def`` of ``src`` calling it after a
    checkpoint (a Skip or an error it raises comes out of the coroutine)."""
    if form == "sync":
        return fn

    async def async_item(src: Any) -> Any:
        await anyio.lowlevel.checkpoint()
        return fn(src)

    return async_item


def counted_item(counter: Concurrency, form: str, seconds: float) -> Callable[..., Any]:
    """An item function of ``src`` that is counted in ``counter`` while it sleeps
    ``seconds``, then returns ``src``; the name ``counter.order`` logs is ``p[src]``."""

    def item(src: Any) -> Any:
        counter.enter(f"p[{src}]")
        try:
            time.sleep(seconds)
        finally:
            counter.leave()
        return src

    async def async_item(src: Any) -> Any:
        counter.enter(f"p[{src}]")
        try:
            await anyio.sleep(seconds)
        finally:
            counter.leave()
        return src

    return item if form == "sync" else async_item


def async_forever(src: Any) -> Awaitable[None]:
    """A plain function of ``src`` returning a coroutine that sleeps 30 s: the engine awaits
    it on the loop under every executor, where a cancellation ends it at once."""
    return anyio.sleep(30)


class Failing:
    """An item function of ``src`` that raises ValueError for the elements in ``bad`` (every
    attempt) and in ``flaky`` (their first attempt only) and returns ``src * 10``
    otherwise; ``calls`` counts the attempts of each element, from any thread."""

    def __init__(self, bad: Iterable[Any] = (), flaky: Iterable[Any] = ()) -> None:
        self.bad = frozenset(bad)
        self.flaky = frozenset(flaky)
        self.calls: dict[Any, int] = {}
        self._lock = threading.Lock()
        self.__name__ = "failing"

    def __call__(self, src: Any) -> Any:
        with self._lock:
            n = self.calls[src] = self.calls.get(src, 0) + 1
        if src in self.bad or (src in self.flaky and n == 1):
            raise ValueError(f"element {src} broke (attempt {n})")
        return src * 10
