"""Rate limits: per-client tiers counted in the session's real Redis, shared by every process that uses it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import RateLimits, Settings
from tests.factories import RegisterCustomerFactory
from tests.support.api import Api
from tests.support.catalog import Catalog
from tests.support.live import live_server


def _registration() -> dict[str, object]:
    return dict(msgspec.to_builtins(RegisterCustomerFactory.build()))


LIMITS = RateLimits(general_per_minute=5, auth_per_minute=2, orders_per_minute=3)


def _forget_counts(redis_url: str) -> None:
    async def forget() -> None:
        client = Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter("shop:ratelimit:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(forget())


@pytest.fixture
def limited(settings: Settings, client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    """The app with low limits, over the same (emptied) database and the session's Redis."""
    assert settings.redis_url
    _forget_counts(settings.redis_url)
    with TestClient(create_app(replace(settings, rate_limits=LIMITS)), base_url="http://testserver.local") as limited:
        yield limited


def test_anonymous_callers_get_the_general_limit_then_429(limited: TestClient[Litestar]) -> None:
    remaining = []
    for _ in range(5):
        response = limited.get("/api/products/categories/")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "5"
        assert response.headers["RateLimit-Policy"] == "5; w=60"
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    refused = limited.get("/api/products/")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/rate-limited"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["X-Request-ID"]


def test_probes_and_metrics_are_never_limited(limited: TestClient[Litestar]) -> None:
    for _ in range(8):
        for path in ("/api/health/", "/metrics"):
            response = limited.get(path)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers


def test_each_signed_in_user_has_their_own_allowance(limited: TestClient[Litestar], api: Api) -> None:
    first, second = api.customer(), api.customer()
    for _ in range(5):
        assert limited.get("/api/auth/profile/", headers=first.headers).status_code == 200
    assert limited.get("/api/auth/profile/", headers=first.headers).status_code == 429
    assert limited.get("/api/auth/profile/", headers=second.headers).status_code == 200
    assert limited.get("/api/products/").status_code == 200  # anonymous callers are counted apart


def test_registration_has_a_stricter_limit_per_address(limited: TestClient[Litestar]) -> None:
    statuses = [limited.post("/api/auth/register/", json=_registration()).status_code for _ in range(2)]
    assert statuses == [201, 201]
    refused = limited.post("/api/auth/register/", json=_registration())
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Limit"] == "2"


def test_orders_which_send_sms_have_a_per_customer_limit(
    limited: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    product = catalog.product(stock_quantity=100, price="1.00")
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    buyer, other = api.customer(), api.customer()
    assert [limited.post("/api/orders/", json=body, headers=buyer.headers).status_code for _ in range(3)] == [201] * 3
    refused = limited.post("/api/orders/", json=body, headers=buyer.headers)
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Limit"] == "3"
    assert limited.post("/api/orders/", json=body, headers=other.headers).status_code == 201
    # reading orders is not limited by the order tier
    assert limited.get("/api/orders/", headers=buyer.headers).status_code == 200


def test_two_server_processes_share_one_limit(settings: Settings, redis_url: str, tmp_path: Path) -> None:
    """Two `shop serve` processes on one database (SQLite, then PostgreSQL) and one Redis: the 5th request
    overall is refused, whichever process it reaches."""
    _forget_counts(redis_url)
    env = {
        "APP_ENV": "test",
        "DEMO_DATA": "false",
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(tmp_path),
        "REDIS_URL": redis_url,
        "WORKER_IN_PROCESS": "false",
        "RATE_LIMITS_ENABLED": "true",
        "RATE_LIMIT_PER_MINUTE": "4",
    }
    with live_server(env) as (first, _), live_server(env) as (second, _):
        statuses = [httpx.get(f"{base}/api/products/").status_code for base in (first, second, first, second)]
        assert statuses == [200] * 4
        assert httpx.get(f"{first}/api/products/").status_code == 429
        assert httpx.get(f"{second}/api/products/").status_code == 429
