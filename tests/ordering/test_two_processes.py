"""Two API processes on one database and one Redis, as two replicas behind a load balancer: the stock and
the idempotency keys hold across them (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
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
def replicas(settings: Settings, redis_url: str) -> Iterator[tuple[str, str]]:
    env = {
        "APP_ENV": "test",
        "DEMO_DATA": "false",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url,
        "WORKER_IN_PROCESS": "false",
        "WEB_CONCURRENCY": "2",  # each replica as `make run` serves: two processes on its port
    }
    with live_server(env) as (first, _), live_server(env) as (second, _):
        yield first, second


async def spread(bases: tuple[str, str], requests: list[tuple[Caller, dict[str, Any], dict[str, str]]]) -> list[Any]:
    """Send every order at once, alternating between the replicas."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        return await asyncio.gather(
            *(
                http.post(f"{bases[n % 2]}/api/orders/", json=body, headers={**caller.headers, **extra})
                for n, (caller, body, extra) in enumerate(requests)
            )
        )


def test_stock_is_exact_across_replicas(replicas: tuple[str, str], shop: Shop, api: Api) -> None:
    item = shop.product(stock=12)
    buyers = [api.customer() for _ in range(10)]
    body = {"items": [{"product_id": item["id"], "quantity": 1}]}
    responses = asyncio.run(spread(replicas, [(buyers[n % 10], body, {}) for n in range(80)]))

    assert Counter(r.status_code for r in responses) == {201: 12, 400: 68}, [r.text for r in responses][:2]
    by_replica = Counter(n % 2 for n, r in enumerate(responses) if r.status_code == 201)
    assert sum(by_replica.values()) == 12
    assert shop.stock(item) == 0
    assert shop.order_count() == 12


def test_one_idempotency_key_places_one_order_across_replicas(replicas: tuple[str, str], shop: Shop, api: Api) -> None:
    item = shop.product(stock=50)
    buyer = api.customer()
    body = {"items": [{"product_id": item["id"], "quantity": 2}]}
    key = {"Idempotency-Key": "checkout-7f3a"}
    responses = asyncio.run(spread(replicas, [(buyer, body, key) for _ in range(12)]))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code not in (201, 409)][:2]
    assert statuses[201] >= 1
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert all(r.json()["type"] == "/problems/idempotency-in-flight" for r in responses if r.status_code == 409)
    assert shop.order_count() == 1
    assert shop.stock(item) == 48
    # a later retry on either replica replays the same order
    again = asyncio.run(spread(replicas, [(buyer, body, key), (buyer, body, key)]))
    assert [r.status_code for r in again] == [201, 201]
    assert {r.json()["id"] for r in again} == {r.json()["id"] for r in responses if r.status_code == 201}
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in again)


@pytest.mark.backend
def test_a_deactivated_account_is_refused_by_every_replica_within_the_token_cache_lifetime(
    replicas: tuple[str, str], api: Api, staff: Caller
) -> None:
    """docs/accounts.md: deactivation revokes every token at once; another process honours it within 5 s (its
    token cache). Independent of the database: first backend only."""
    buyer = api.customer()
    with httpx.Client(timeout=10) as http:
        for base in replicas * 3:  # each replica serves with two processes: let them all cache the principal
            assert http.get(f"{base}/api/auth/profile/", headers=buyer.headers).status_code == 200
        deactivated = http.post(f"{replicas[0]}/api/customers/{buyer.id}/deactivate/", headers=staff.headers)
        assert deactivated.status_code == 200
        started = time.monotonic()
        accepted_until = started
        while time.monotonic() - started < 6.5:
            answers = [http.get(f"{base}/api/auth/profile/", headers=buyer.headers).status_code for base in replicas]
            if 200 in answers:
                accepted_until = time.monotonic()
            time.sleep(0.1)
    assert accepted_until - started <= 5.5, accepted_until - started
