"""Public product pages are cached in Redis, shared by replicas, and emptied by a catalog write in any of them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings
from tests.support.api import Caller
from tests.support.catalog import Catalog

URL = "/api/products/?ordering=name"


def _cached_pages(redis_url: str) -> list[bytes]:
    async def keys() -> list[bytes]:
        client = Redis.from_url(redis_url)
        try:
            return [key async for key in client.scan_iter("shop:response-cache*")]
        finally:
            await client.aclose()

    return asyncio.run(keys())


@pytest.fixture
def replica(settings: Settings, client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    """A second app on the same database and Redis, as another replica would be."""
    with TestClient(create_app(settings), base_url="http://testserver.local") as other:
        yield other


def test_a_page_cached_by_one_replica_is_served_by_another(
    client: TestClient[Litestar], replica: TestClient[Litestar], catalog: Catalog, settings: Settings
) -> None:
    assert settings.redis_url
    catalog.product(name="Kettle")
    assert _cached_pages(settings.redis_url) == []
    first = client.get(URL)
    assert [p["name"] for p in first.json()["results"]] == ["Kettle"]
    assert len(_cached_pages(settings.redis_url)) == 1
    assert replica.get(URL).json() == first.json()


def test_a_write_on_one_replica_empties_the_cache_for_all(
    client: TestClient[Litestar], replica: TestClient[Litestar], catalog: Catalog, staff: Caller, settings: Settings
) -> None:
    assert settings.redis_url
    kettle = catalog.product(name="Kettle")
    assert replica.get(URL).json()["count"] == 1
    renamed = client.patch(f"/api/products/{kettle['id']}/", json={"name": "Teapot"}, headers=staff.headers)
    assert renamed.status_code == 200
    assert _cached_pages(settings.redis_url) == []
    assert [p["name"] for p in replica.get(URL).json()["results"]] == ["Teapot"]


def test_failed_writes_and_signed_in_reads_leave_the_cache_alone(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller, settings: Settings
) -> None:
    assert settings.redis_url
    catalog.product(name="Kettle")
    client.get(URL)
    assert client.post("/api/products/", json={"name": ""}, headers=staff.headers).status_code == 400
    assert len(_cached_pages(settings.redis_url)) == 1
    client.get(URL, headers=staff.headers)
    assert len(_cached_pages(settings.redis_url)) == 1  # staff pages are not stored
