"""Stock stays exact under real concurrency: many simultaneous requests against a server process."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.ordering.conftest import Shop
from tests.support.api import Api, Caller
from tests.support.live import live_server


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    # `make run`'s shape: two serving processes on one port (each with its own SQLite writer), one worker
    env = {"APP_ENV": "test", "DEMO_DATA": "false", "DATABASE_URL": settings.database_url, "WEB_CONCURRENCY": "2"}
    with live_server(env) as (base, _):
        yield base


async def fire(base: str, requests: list[tuple[str, str, Caller, Any]]) -> list[httpx.Response]:
    """Send every request at once and wait for all the answers."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        return await asyncio.gather(
            *(http.request(method, url, headers=caller.headers, json=body) for method, url, caller, body in requests)
        )


def test_two_hundred_buyers_for_ten_units(server: str, shop: Shop, api: Api) -> None:
    item = shop.product(stock=10)
    buyers = [api.customer() for _ in range(20)]
    body = {"items": [{"product_id": item["id"], "quantity": 1}]}
    responses = asyncio.run(fire(server, [("POST", "/api/orders/", buyers[n % 20], body) for n in range(200)]))

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 10, 400: 190}, [r.text for r in responses if r.status_code >= 500][:3]
    assert not any("locked" in response.text for response in responses)
    assert shop.stock(item) == 0
    assert shop.order_count() == 10


def test_overlapping_multi_line_orders_never_lose_or_oversell(server: str, shop: Shop, api: Api) -> None:
    products = [shop.product(stock=40) for _ in range(4)]
    buyers = [api.customer() for _ in range(10)]
    chooser = random.Random(7)
    bodies = []
    for _ in range(120):
        picked = chooser.sample(products, chooser.randint(1, 3))
        bodies.append({"items": [{"product_id": p["id"], "quantity": chooser.randint(1, 4)} for p in picked]})
    responses = asyncio.run(fire(server, [("POST", "/api/orders/", buyers[n % 10], b) for n, b in enumerate(bodies)]))

    assert {r.status_code for r in responses} <= {201, 400}, [r.text for r in responses if r.status_code >= 500][:2]
    assert all(r.json()["type"] == "/problems/insufficient-stock" for r in responses if r.status_code == 400)
    sold: Counter[int] = Counter()
    for response in responses:
        if response.status_code == 201:
            for line in response.json()["items"]:
                sold[line["product"]["id"]] += line["quantity"]
    for product in products:
        assert sold[product["id"]] + shop.stock(product) == 40
    assert shop.order_count() == sum(1 for r in responses if r.status_code == 201)
    assert any(r.status_code == 400 for r in responses)


def test_simultaneous_double_cancels_return_stock_once(server: str, shop: Shop, api: Api) -> None:
    item = shop.product(stock=30)
    buyer = api.customer()
    orders = [shop.order(buyer, (item, 2)).json()["id"] for _ in range(15)]
    assert shop.stock(item) == 0
    cancels = [("POST", f"/api/orders/{order_id}/cancel/", buyer, None) for order_id in orders for _ in range(2)]
    responses = asyncio.run(fire(server, cancels))

    per_order: dict[str, Counter[int]] = {}
    for (_, url, _, _), response in zip(cancels, responses, strict=True):
        per_order.setdefault(url, Counter())[response.status_code] += 1
    assert all(counts == {200: 1, 409: 1} for counts in per_order.values()), per_order
    assert shop.stock(item) == 30


def test_concurrent_retries_with_one_idempotency_key_place_one_order(server: str, shop: Shop, api: Api) -> None:
    item = shop.product(stock=100)
    buyer = api.customer()
    body = {"items": [{"product_id": item["id"], "quantity": 1}]}

    async def retries() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=60) as http:
            headers = {**buyer.headers, "Idempotency-Key": "checkout-42"}
            return await asyncio.gather(*(http.post("/api/orders/", json=body, headers=headers) for _ in range(20)))

    responses = asyncio.run(retries())
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert shop.order_count() == 1
    assert shop.stock(item) == 99
