"""CORS: browsers may call the API only from the origins in CORS_ALLOW_ORIGINS (the original allowed any)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings

SHOP = "https://shop.example"


@pytest.fixture
def with_cors(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(replace(settings, cors_allow_origins=(SHOP,)))) as client:
        yield client


def test_an_allowed_origin_may_read_and_preflight(with_cors: TestClient[Litestar]) -> None:
    read = with_cors.get("/api/products/", headers={"Origin": SHOP})
    assert read.headers["Access-Control-Allow-Origin"] == SHOP
    assert "X-Request-ID" in read.headers["Access-Control-Expose-Headers"]
    preflight = with_cors.options(
        "/api/orders/",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "access-control-allow-credentials" not in preflight.headers


def test_other_origins_get_no_cors_grant(with_cors: TestClient[Litestar]) -> None:
    with_cors.get("/api/products/", headers={"Origin": SHOP})  # fills the page cache with SHOP's headers
    read = with_cors.get("/api/products/", headers={"Origin": "https://evil.example"})
    assert read.status_code == 200  # the server answers; the browser withholds it from the page
    assert "access-control-allow-origin" not in read.headers
    preflight = with_cors.options(
        "/api/orders/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_without_configured_origins_there_is_no_cors_at_all(client: TestClient[Litestar]) -> None:
    read = client.get("/api/products/", headers={"Origin": SHOP})
    assert "access-control-allow-origin" not in read.headers
