"""Invariants after a mixed-workload run (`bench/mixed_load.sh`); exits 1 when one is broken.

    DATABASE_URL=... VAR_DIR=... .venv/bin/python bench/mixed_invariants.py --dir DIR --samples DIR/*.txt \
        --in-flight 64 --wait 120

Reads the database through the app's settings (`DATABASE_URL`, or the SQLite file under `VAR_DIR`).
First waits (at most `--wait` seconds) until the work has settled: no order or cancel still arriving,
every outbox message dispatched, no notification still queued or being sent. Then checks:

1. Stock: for every product, the stock before the load (`DIR/stock_before.json`, written by
   `bench/mixed_setup.py`) == its stock now + the units of it in orders that are not cancelled
   (placing takes stock, cancelling gives it back, once), and no stock is negative.
2. Outbox: exactly one `order.placed:<id>` message per order, exactly one `order.cancelled:<id>` per
   cancelled order and none for the others, nothing else; every message dispatched.
3. Notifications: per outbox message exactly one SMS row and one e-mail row (no duplicate, none
   missing); the e-mail `sent`; the SMS `sent` when the customer has a phone number, else `skipped`;
   every sent row sent in one attempt; no row for an unknown event.
4. Orders only pending or cancelled (nothing else moves them), and the counts agree with what wrk saw:
   201 answers to orders <= orders in the database <= 201s + requests in flight when wrk stopped
   (`--in-flight`: connections x wrk runs); the same for 200 answers to cancels and cancelled orders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import make_engine
from app.settings import get_settings
from shop_catalog.models import Product
from shop_identity.models import Customer
from shop_kernel import OUTBOX_DELIVERY, OutboxMessage
from shop_notify.models import NotificationLog
from shop_ordering.models import Order, OrderItem


async def settle(engine: AsyncEngine, wait: float) -> dict[str, Any]:
    """Poll until nothing is in flight; returns the last observation (with `settled` False on timeout)."""
    start, last = time.monotonic(), None
    while True:
        async with engine.connect() as connection:
            observed = {
                "orders": await connection.scalar(select(func.count()).select_from(Order)),
                "cancelled": await connection.scalar(
                    select(func.count()).select_from(Order).where(Order.status == "cancelled")
                ),
                "outbox_pending": await connection.scalar(
                    select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))
                ),
                "notifications_in_progress": await connection.scalar(
                    select(func.count())
                    .select_from(NotificationLog)
                    .where(NotificationLog.status.in_(("queued", "sending")))
                ),
            }
        quiet = observed["outbox_pending"] == 0 and observed["notifications_in_progress"] == 0
        if quiet and observed == last:
            return {**observed, "settled": True, "seconds": round(time.monotonic() - start, 1)}
        if time.monotonic() - start > wait:
            return {**observed, "settled": False, "seconds": round(time.monotonic() - start, 1)}
        last = observed
        await asyncio.sleep(0.5)


def wrk_counts(sample_files: list[str]) -> Counter[str]:
    """`kind status` -> responses, over every sample file (warm-up and measured runs)."""
    counts: Counter[str] = Counter()
    for name in sample_files:
        for line in Path(name).read_text().splitlines():
            kind, status, _ = line.split()
            counts[f"{kind} {status}"] += 1
    return counts


@dataclass
class State:
    """What the database holds once the load has settled."""

    settled: dict[str, Any]
    stock_now: dict[int, int]
    sold: dict[int, int]
    """Units per product in orders that are not cancelled."""
    orders: list[tuple[int, str, int]]
    """(id, status, customer id)"""
    phones: dict[int, str | None]
    outbox: list[tuple[str, Any]]
    """(key, dispatched_at)"""
    deliveries: list[tuple[str, str]]
    """(event key, subscriber) of each event a subscriber has had"""
    notes: list[tuple[str, str, str, int]]
    """(event key, channel, status, attempts)"""


async def read_state(wait: float) -> State:
    engine = make_engine(get_settings())
    try:
        settled = await settle(engine, wait)
        async with engine.connect() as c:
            live_units = (
                select(OrderItem.product_id, func.sum(OrderItem.quantity))
                .join(Order, Order.id == OrderItem.order_id)
                .where(Order.status != "cancelled")
                .group_by(OrderItem.product_id)
            )
            handed = select(OutboxMessage.key, OUTBOX_DELIVERY.c.subscriber).join(
                OUTBOX_DELIVERY, OUTBOX_DELIVERY.c.message_id == OutboxMessage.id
            )
            notes = select(
                NotificationLog.event_key, NotificationLog.channel, NotificationLog.status, NotificationLog.attempts
            )
            return State(
                settled=settled,
                stock_now=dict((await c.execute(select(Product.id, Product.stock_quantity))).tuples().all()),
                sold={pid: int(units) for pid, units in (await c.execute(live_units)).tuples().all()},
                orders=list((await c.execute(select(Order.id, Order.status, Order.customer_id))).tuples().all()),
                phones=dict((await c.execute(select(Customer.id, Customer.phone_number))).tuples().all()),
                outbox=list((await c.execute(select(OutboxMessage.key, OutboxMessage.dispatched_at))).tuples().all()),
                deliveries=list((await c.execute(handed)).tuples().all()),
                notes=list((await c.execute(notes)).tuples().all()),
            )
    finally:
        await engine.dispose()


def check_stock(state: State, before: dict[int, int]) -> list[str]:
    broken = []
    for pid in sorted(set(before) | set(state.stock_now)):
        initial, now, units = before.get(pid), state.stock_now.get(pid), state.sold.get(pid, 0)
        if initial is None or now is None:
            broken.append(f"product {pid} appeared or disappeared during the load")
        elif now < 0 or initial != now + units:
            broken.append(f"product {pid}: stock before {initial} != now {now} + {units} sold in live orders")
    return broken


def expected_events(state: State) -> dict[str, int]:
    """Outbox event key -> customer id, for every order change the database shows."""
    events = {f"order.placed:{oid}": customer for oid, _, customer in state.orders}
    events |= {f"order.cancelled:{oid}": customer for oid, status, customer in state.orders if status == "cancelled"}
    return events


def check_outbox(state: State) -> list[str]:
    broken = []
    statuses = Counter(status for _, status, _ in state.orders)
    if set(statuses) - {"pending", "cancelled"}:
        broken.append(f"orders in unexpected states: {dict(statuses)}")
    expected = expected_events(state)
    keys = Counter(key for key, _ in state.outbox)
    if duplicated := {key: n for key, n in keys.items() if n > 1}:
        broken.append(f"{len(duplicated)} outbox events written more than once, e.g. {list(duplicated.items())[:3]}")
    if missing := set(expected) - set(keys):
        broken.append(f"{len(missing)} events missing from the outbox, e.g. {sorted(missing)[:3]}")
    if unknown := set(keys) - set(expected):
        broken.append(f"{len(unknown)} outbox events for no such order change, e.g. {sorted(unknown)[:3]}")
    if undispatched := sum(1 for _, dispatched_at in state.outbox if dispatched_at is None):
        broken.append(f"{undispatched} outbox messages never dispatched")
    handed = Counter(key for key, subscriber in state.deliveries if subscriber == "notify")
    if not_once := {key: handed[key] for key, _ in state.outbox if handed[key] != 1}:
        broken.append(f"{len(not_once)} events not handed to notify exactly once, e.g. {list(not_once.items())[:3]}")
    return broken


def check_notifications(state: State) -> list[str]:
    broken = []
    expected = expected_events(state)
    per_event: dict[str, Counter[str]] = {}
    bad: Counter[str] = Counter()
    for event_key, channel, status, attempts in state.notes:
        per_event.setdefault(event_key, Counter())[channel] += 1
        customer = expected.get(event_key)
        if customer is None:
            bad[f"row for unknown event {event_key}"] += 1
            continue
        wanted = "sent" if channel == "email" or state.phones.get(customer) else "skipped"
        if status != wanted:
            bad[f"{channel} {status} (expected {wanted})"] += 1
        elif status == "sent" and attempts != 1:
            bad[f"{channel} sent after {attempts} attempts"] += 1
    if bad:
        broken.append(f"notification rows not as expected: {dict(bad)}")
    wrong = {key: dict(per_event.get(key, {})) for key in expected if per_event.get(key) != {"sms": 1, "email": 1}}
    if wrong:
        broken.append(f"{len(wrong)} events without exactly one SMS and one e-mail row, e.g. {list(wrong.items())[:3]}")
    return broken


def check_counts(state: State, seen: Counter[str], in_flight: int) -> list[str]:
    broken = []
    placed, cancelled = len(state.orders), sum(1 for _, status, _ in state.orders if status == "cancelled")
    for what, in_db, answers in (("orders", placed, seen["order 201"]), ("cancels", cancelled, seen["cancel 200"])):
        if not answers <= in_db <= answers + in_flight:
            broken.append(f"{what}: {in_db} in the database, wrk saw {answers} successes (+ at most {in_flight})")
    return broken


async def check(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    state = await read_state(args.wait)
    before = {int(k): v for k, v in json.loads((Path(args.dir) / "stock_before.json").read_text()).items()}
    seen = wrk_counts(args.samples)
    broken = [] if state.settled["settled"] else [f"work still in flight after {args.wait} s: {state.settled}"]
    broken += check_stock(state, before)
    broken += check_outbox(state)
    broken += check_notifications(state)
    broken += check_counts(state, seen, args.in_flight)
    summary = {
        "settled_after_s": state.settled["seconds"],
        "orders_in_db": len(state.orders),
        "order_201_seen": seen["order 201"],
        "cancelled_in_db": sum(1 for _, status, _ in state.orders if status == "cancelled"),
        "cancel_200_seen": seen["cancel 200"],
        "products_checked": len(before),
        "units_in_live_orders": sum(state.sold.values()),
        "outbox_messages": len(state.outbox),
        "notification_rows": len(state.notes),
        "notification_statuses": dict(Counter(f"{channel} {status}" for _, channel, status, _ in state.notes)),
        "invariants_ok": not broken,
    }
    return broken, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="the directory bench/mixed_setup.py wrote")
    parser.add_argument("--samples", nargs="*", default=[], help="sample files of every wrk run (warm-ups too)")
    parser.add_argument("--in-flight", type=int, required=True, help="connections x wrk runs")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the work to settle")
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args()
    broken, summary = asyncio.run(check(args))
    print(
        f"settled {summary['settled_after_s']} s after the load; orders {summary['orders_in_db']} in the database "
        f"({summary['order_201_seen']} 201s seen by wrk), cancelled {summary['cancelled_in_db']} "
        f"({summary['cancel_200_seen']} 200s seen); {summary['units_in_live_orders']} units in live orders over "
        f"{summary['products_checked']} products; outbox {summary['outbox_messages']} messages; "
        f"notifications {summary['notification_rows']} rows {summary['notification_statuses']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary))
    if broken:
        for problem in broken:
            print(f"INVARIANT BROKEN: {problem}", file=sys.stderr)
        sys.exit(1)
    print(
        "invariants OK: stock == before - live order units for every product; one outbox event per order "
        "change, all dispatched; exactly one SMS and one e-mail row per event, each sent once (or skipped)"
    )


if __name__ == "__main__":
    main()
