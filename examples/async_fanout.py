"""A fan-out of async I/O tasks and a fan-in that gathers their results.

`list_pages` decides what to fetch; twenty `fetch_NN` tasks then "download" a page each,
all at once on the event loop (the network is simulated with `anyio.sleep`, so this runs
anywhere); one of them fails on its first attempt and is retried. `summarize` depends on
all twenty and receives each result as a keyword argument named after its task.

    flowweaver run examples/async_fanout.py --executor async
    python examples/async_fanout.py

(With the default threaded executor the fetches run four at a time: `--workers 20`, or
`--executor async`, lets them all run together.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from flowweaver import AsyncExecutor, Task, Workflow, task

PAGE_COUNT = 20
FLAKY_PAGE = 7  # its first attempt fails, as a real network call sometimes does

_attempts: dict[int, int] = {}


@task()
def list_pages() -> list[str]:
    """The pages to fetch (a real pipeline would read an index or a sitemap)."""
    return [f"https://example.invalid/page/{i}" for i in range(PAGE_COUNT)]


def fetcher(index: int) -> Callable[..., Awaitable[dict[str, Any]]]:
    """An async task function that fetches page ``index`` of the list."""

    async def fetch(list_pages: list[str]) -> dict[str, Any]:
        url = list_pages[index]
        _attempts[index] = _attempts.get(index, 0) + 1
        await anyio.sleep(0.05 + 0.05 * (index % 5))  # the network round trip
        if index == FLAKY_PAGE and _attempts[index] == 1:
            raise ConnectionError(f"connection reset while fetching {url}")
        return {"url": url, "bytes": 2_000 + 113 * index}

    return fetch


@task()
def summarize(**pages: dict[str, Any]) -> dict[str, Any]:
    """Fan-in: every fetch's result arrives as a keyword argument named after its task."""
    return {
        "pages": len(pages),
        "bytes": sum(page["bytes"] for page in pages.values()),
        "largest": max(pages.values(), key=lambda page: page["bytes"])["url"],
    }


workflow = Workflow("async_fanout", description="Fetch twenty pages at once, then summarize")
workflow.add_task(list_pages)
fetches = [f"fetch_{i:02d}" for i in range(PAGE_COUNT)]
for i, name in enumerate(fetches):
    workflow.add_task(Task(name, fetcher(i), retries=2, timeout=10), depends_on=["list_pages"])
workflow.add_task(summarize, depends_on=fetches)


async def main() -> None:
    await AsyncExecutor(max_concurrent=PAGE_COUNT).execute(workflow)
    summary = workflow.get_task("summarize")
    assert summary is not None
    print(f"fetched {summary.result['pages']} pages, {summary.result['bytes']} bytes")
    print(f"the largest: {summary.result['largest']}")
    retried = [t.name for t in workflow.tasks if t.attempts > 1]
    print(f"retried: {', '.join(retried) or 'none'}")


if __name__ == "__main__":
    asyncio.run(main())
