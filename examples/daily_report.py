"""A daily sales report with a ``date`` parameter: a new date re-runs only what reads it.

``load_orders`` loads two months of orders (a sample generated the same way every time),
``load_shops`` the region of each shop; neither takes the date. ``orders_of_day`` keeps
the date's orders, ``region_totals`` adds them up by region, and ``write_report`` writes
``reports/sales-DATE.txt`` (``-p report_dir=...`` picks another folder):

    flowweaver run examples/daily_report.py -p date=2026-11-30   # runs all five tasks
    flowweaver run examples/daily_report.py -p date=2026-12-01   # load_* restored: they do
                                                                 # not read the date
    flowweaver run examples/daily_report.py -p date=2026-12-01   # all restored
    # edit region_totals: version="1" -> version="2", then
    flowweaver plan examples/daily_report.py -p date=2026-12-01  # region_totals runs
                                                                 # (version); write_report
                                                                 # "run?": restored if the
                                                                 # totals come out the same

``python examples/daily_report.py [DATE [REPORT_DIR]]`` does the same with the command's
default store, ``.flowweaver/state.db``, and prints the report. Without a date, the
report is for 2026-11-30.
"""

from __future__ import annotations

import random
import sys
from datetime import date as Date
from datetime import timedelta
from pathlib import Path
from typing import Any

from flowweaver import SequentialExecutor, SQLiteStateStore, TaskRestored, Workflow, task

FIRST_DAY = Date(2026, 11, 1)
LAST_DAY = Date(2026, 12, 31)
DEFAULT_DATE = "2026-11-30"
SHOPS = {"S1": "north", "S2": "north", "S3": "south", "S4": "east", "S5": "west"}
PRICES = {"tea": 4.5, "coffee": 6.0, "cake": 3.25, "sandwich": 7.5}


@task()
def load_orders() -> list[dict[str, Any]]:
    """Every order of November and December 2026: day, shop, product, quantity, price."""
    rng = random.Random(2026)  # the same sample on every machine and every run
    orders = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        for _ in range(rng.randint(8, 16)):
            product = rng.choice(sorted(PRICES))
            orders.append(
                {
                    "day": day.isoformat(),
                    "shop": rng.choice(sorted(SHOPS)),
                    "product": product,
                    "quantity": rng.randint(1, 4),
                    "price": PRICES[product],
                }
            )
        day += timedelta(days=1)
    return orders


@task()
def load_shops() -> dict[str, str]:
    """The region of each shop."""
    return dict(SHOPS)


@task()
def orders_of_day(load_orders: list[dict[str, Any]], date: str = DEFAULT_DATE) -> list[Any]:
    """The orders of ``date`` (YYYY-MM-DD).

    :raises ValueError: for a date that is not YYYY-MM-DD or outside the sample.
    """
    day = Date.fromisoformat(str(date))
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"no orders for {day}: the sample covers {FIRST_DAY} to {LAST_DAY}")
    return [o for o in load_orders if o["day"] == day.isoformat()]


@task(version="1")
def region_totals(
    orders_of_day: list[dict[str, Any]], load_shops: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Orders and revenue by region, regions in alphabetical order."""
    totals: dict[str, dict[str, float]] = {}
    for order in orders_of_day:
        region = totals.setdefault(load_shops[order["shop"]], {"orders": 0, "revenue": 0.0})
        region["orders"] += 1
        region["revenue"] = round(region["revenue"] + order["quantity"] * order["price"], 2)
    return dict(sorted(totals.items()))


@task()
def write_report(
    region_totals: dict[str, dict[str, float]],
    date: str = DEFAULT_DATE,
    report_dir: str = "reports",
) -> str:
    """Write ``REPORT_DIR/sales-DATE.txt`` and return its path."""
    lines = [f"Sales on {date}", "", f"{'region':<8}{'orders':>8}{'revenue':>11}"]
    for region, t in region_totals.items():
        lines.append(f"{region:<8}{t['orders']:>8}{t['revenue']:>11.2f}")
    revenue = sum(t["revenue"] for t in region_totals.values())
    orders = sum(t["orders"] for t in region_totals.values())
    lines.append(f"{'total':<8}{orders:>8}{revenue:>11.2f}")
    path = Path(report_dir) / f"sales-{date}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}", flush=True)
    return str(path)


workflow = Workflow("daily_report", description="a day's sales by region")
workflow.add_task(load_orders)
workflow.add_task(load_shops)
workflow.add_task(orders_of_day, depends_on=["load_orders"])
workflow.add_task(region_totals, depends_on=["orders_of_day", "load_shops"])
workflow.add_task(write_report, depends_on=["region_totals"])


if __name__ == "__main__":
    params = {"date": sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DATE}
    if len(sys.argv) > 2:
        params["report_dir"] = sys.argv[2]
    restored: list[str] = []

    def note_restored(event: object) -> None:
        if isinstance(event, TaskRestored):
            restored.append(event.task)

    Path(".flowweaver").mkdir(exist_ok=True)
    store = SQLiteStateStore(".flowweaver/state.db")
    SequentialExecutor(state_store=store, observer=note_restored).execute(workflow, params=params)
    print(f"restored from the state store: {', '.join(restored) or 'nothing'}")
    report = workflow.get_task("write_report")
    assert report is not None
    path = Path(report.result)
    if path.exists():
        print(path.read_text(encoding="utf-8"), end="")
    else:  # restored, but someone deleted the file since
        print(f"{path} is gone; `flowweaver reset --task write_report --yes` writes it again")
