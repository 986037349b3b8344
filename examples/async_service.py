"""An asyncio service that awaits a workflow for each request, several at once.

The service answers lines such as `quote alice` on a local TCP port. For each request it
builds a small workflow (two async lookups, then a pricing step that is plain blocking
code) and `await`s it on the service's own event loop. A heartbeat coroutine ticks all
along: the blocking step runs on a worker thread, so the loop never stalls and the other
requests keep being served.

    python examples/async_service.py          # serves three demo clients, then stops
    flowweaver run examples/async_service.py  # runs the module-level workflow once

No web framework needed: a real service would call `serve_quote` from its request
handler the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import anyio

from flowweaver import AsyncExecutor, Workflow, task

TIERS = {"alice": "gold", "bob": "silver"}


def build_workflow(customer: str) -> Workflow:
    """One workflow per request: a Workflow runs once at a time, requests overlap."""

    @task()
    async def load_customer() -> dict[str, str]:
        await anyio.sleep(0.05)  # a database query (anyio.sleep: works on any event loop)
        return {"name": customer, "tier": TIERS.get(customer, "standard")}

    @task(timeout=5)
    async def load_prices() -> dict[str, float]:
        await anyio.sleep(0.08)  # a call to the catalogue service
        return {"widget": 4.25, "gadget": 12.5}

    @task()
    def price_quote(load_customer: dict[str, str], load_prices: dict[str, float]) -> dict[str, Any]:
        # A legacy pricing library: blocking, so FlowWeaver runs it on a worker thread.
        time.sleep(0.05)
        discount = {"gold": 0.2, "silver": 0.1}.get(load_customer["tier"], 0.0)
        basket = load_prices["widget"] * 3 + load_prices["gadget"]
        return {"customer": load_customer["name"], "total": round(basket * (1 - discount), 2)}

    wf = Workflow(f"quote_{customer}", description="Price a basket for one customer")
    wf.add_task(load_customer)
    wf.add_task(load_prices)
    wf.add_task(price_quote, depends_on=["load_customer", "load_prices"])
    return wf


# `flowweaver run` and `flowweaver graph` use this one.
workflow = build_workflow("alice")


async def serve_quote(customer: str) -> dict[str, Any]:
    """What a request handler does: run the workflow and await its result."""
    wf = build_workflow(customer)
    await AsyncExecutor(max_concurrent=10).execute(wf)
    quote = wf.get_task("price_quote")
    assert quote is not None
    result: dict[str, Any] = quote.result
    return result


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    line = (await reader.readline()).decode().strip()
    command, _, customer = line.partition(" ")
    if command == "quote" and customer:
        reply: dict[str, Any] = await serve_quote(customer)
    else:
        reply = {"error": f"unknown request {line!r}; send 'quote <customer>'"}
    writer.write((json.dumps(reply) + "\n").encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def ask(port: int, customer: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"quote {customer}\n".encode())
    await writer.drain()
    answer: dict[str, Any] = json.loads(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return answer


async def heartbeat(stop: asyncio.Event, gaps: list[float]) -> None:
    """Ticks every 10 ms; a long gap between ticks would mean a blocked event loop."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    gaps: list[float] = []
    beat = asyncio.create_task(heartbeat(stop, gaps))
    async with server:
        began = time.perf_counter()
        quotes = await asyncio.gather(*(ask(port, c) for c in ("alice", "bob", "carol")))
        took = time.perf_counter() - began
    stop.set()
    await beat
    for q in quotes:
        print(f"quote for {q['customer']}: {q['total']}")
    print(f"three requests served together in {took:.2f} s")
    print(f"the event loop's longest pause: {max(gaps) * 1000:.0f} ms over {len(gaps)} ticks")


if __name__ == "__main__":
    asyncio.run(main())
