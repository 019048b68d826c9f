"""The `count` of a product page (decision 98): exact whenever the page is the last one; otherwise the
filter's exact count, kept for a few seconds per process, dropped by any catalog write in any process that
shares the app's Redis, and never below what the page itself shows. `next`, `previous` and the 404 past the
end never depend on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from shop_catalog import CatalogSettings
from shop_catalog.cache import CatalogCache
from tests.factories import ProductWriteFactory
from tests.support.api import Caller
from tests.support.catalog import Catalog

URL = "/api/products/"
REPLICA_COUNT_TTL = 1.0


@pytest.fixture
def replica(settings: Settings, client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    """Another process on the same database and Redis, keeping counts for `REPLICA_COUNT_TTL` seconds."""
    other = replace(settings, catalog=CatalogSettings(count_ttl_seconds=REPLICA_COUNT_TTL))
    with TestClient(create_app(other), base_url="http://testserver.local") as app:
        yield app


def page(client: TestClient[Litestar], **params: Any) -> dict[str, Any]:
    response = client.get(URL, params={"page_size": 1, "ordering": "name", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_write_in_this_process_shows_in_the_count_at_once(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    for name in ("a", "b", "c"):
        catalog.product(name=name)
    assert page(client)["count"] == 3
    assert page(client, page=2)["count"] == 3  # the same filter's count, kept
    added = catalog.product(name="d")
    assert page(client)["count"] == 4
    client.patch(f"{URL}{added['id']}/", json={"is_active": False}, headers=staff.headers)
    assert page(client, page=2)["count"] == 3
    assert page(client, page=1, page_size=2)["total_pages"] == 2


def test_another_process_counts_anew_once_a_write_reaches_it(
    client: TestClient[Litestar], replica: TestClient[Litestar], catalog: Catalog
) -> None:
    for name in ("a", "b", "c"):
        catalog.product(name=name)
    assert page(replica)["count"] == 3
    catalog.product(name="d")  # written through the other process, which tells every process over Redis
    deadline = time.monotonic() + 2
    counts = []
    for ordering in ("-name", "price", "-price", "created_at", "-created_at") * 4:  # a new URL each time
        counts.append(page(replica, ordering=ordering, page=2)["count"])
        if counts[-1] == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counts[-1] == 4, counts


def test_a_write_no_process_heard_of_shows_within_the_count_time_to_live(
    settings: Settings, replica: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    # a writer without Redis (a sibling service mounting the catalog alone) tells nobody
    loner = TestClient(create_app(replace(settings, redis_url=None)))
    with loner:  # started before the clock of the counts runs: starting an app can take a second
        for name in ("a", "b", "c"):
            catalog.product(name=name)
        assert page(replica)["count"] == 3
        body = msgspec.to_builtins(ProductWriteFactory.build(name="d", categories=[]))
        assert loner.post(URL, json=body, headers=staff.headers).status_code == 201
        first = page(replica)
        assert first["count"] == 3
        assert first["next"] is not None
        # the last page is exact (nothing follows it), and a page the stale count would not allow still answers
        last = page(replica, page=4)
        assert (last["count"], last["total_pages"], last["next"]) == (4, 4, None)
        assert [p["name"] for p in last["results"]] == ["d"]
    time.sleep(REPLICA_COUNT_TTL + 0.1)
    assert page(replica, page=2)["count"] == 4


def test_a_page_past_the_end_is_404_whatever_count_was_kept(
    client: TestClient[Litestar], replica: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    products = [catalog.product(name=name) for name in ("a", "b", "c", "d")]
    assert page(replica)["count"] == 4
    for product in products[2:]:
        assert client.delete(f"{URL}{product['id']}/", headers=staff.headers).status_code == 204
    assert replica.get(URL, params={"page_size": 1, "ordering": "name", "page": 3}).status_code == 404
    second = page(replica, page=2)
    assert (second["count"], second["total_pages"], second["next"]) == (2, 2, None)


def test_counts_are_kept_per_filter_and_per_audience(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    shelf = catalog.category("shelf")
    catalog.product(shelf, name="a", price="10.00", stock_quantity=0)
    catalog.product(shelf, name="b", price="20.00", stock_quantity=5)
    catalog.product(name="c", price="30.00", stock_quantity=0, is_active=False)
    catalog.product(name="d", price="40.00", stock_quantity=0)
    assert page(client)["count"] == 3
    assert page(client, category=shelf["id"])["count"] == 2
    assert page(client, min_price="15")["count"] == 2
    assert page(client, in_stock="false")["count"] == 2
    staff_page = client.get(URL, params={"page_size": 1}, headers=staff.headers).json()
    assert staff_page["count"] == 4
    assert page(client, ordering="-price")["count"] == 3


def test_the_api_description_states_how_exact_the_count_is(client: TestClient[Litestar]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    for operation in (paths["/api/products"]["get"], paths["/api/products/categories/{category_id}/products"]["get"]):
        assert "`count` (and `total_pages`) is exact on the last page" in operation["description"]
        assert "at most 10 seconds earlier" in operation["description"]


def test_a_count_taken_with_a_page_is_taken_once_however_many_requests_wait() -> None:
    """Decision 157: while one request counts a filter in its page's statement, the others read their page
    alone and then wait for that count instead of counting again; a kept count is never counted again."""
    cache = CatalogCache(ttl_seconds=2, count_ttl_seconds=10)
    key = ("products", False)
    counted_again: list[int] = []

    async def count_again() -> int:
        counted_again.append(1)
        return 0

    async def counting_with_its_page() -> None:
        async with cache.counting(key) as mine:
            assert mine
            await asyncio.sleep(0.05)  # the page and its total, one round trip
            cache.remember_count(key, 42, generation=cache.generation)

    async def another_page_of_the_filter() -> int:
        await asyncio.sleep(0.01)
        async with cache.counting(key) as mine:
            assert not mine
        return await cache.count(key, count_again, generation=cache.generation)

    async def run() -> list[int]:
        _, *totals = await asyncio.gather(
            counting_with_its_page(), another_page_of_the_filter(), another_page_of_the_filter()
        )
        async with cache.counting(key) as mine, cache.counting(("other",), wanted=False) as unwanted:
            assert not mine  # kept
            assert not unwanted  # SQLite: two statements
        return totals

    assert asyncio.run(run()) == [42, 42]
    assert counted_again == []


def test_a_count_read_while_a_write_commits_is_used_but_not_kept() -> None:
    """`CatalogCache.generation`: the count may predate the write, so the next request counts anew."""
    cache = CatalogCache(ttl_seconds=2, count_ttl_seconds=10)
    key = ("products", False)

    async def counted_while_a_write_committed() -> int:
        cache.invalidate()  # what the write's after-commit hook does while this count is on its way
        return 7

    async def counted_after() -> int:
        return 8

    assert asyncio.run(cache.count(key, counted_while_a_write_committed, generation=cache.generation)) == 7
    assert cache.cached_count(key) is None
    assert asyncio.run(cache.count(key, counted_after, generation=cache.generation)) == 8
    assert cache.cached_count(key) == 8
