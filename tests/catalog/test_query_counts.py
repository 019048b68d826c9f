"""Reads issue a fixed number of SQL statements whatever the page size or the depth of the tree."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.support.api import Caller
from tests.support.catalog import Catalog
from tests.support.statements import statements_for


def build_deep_catalog(catalog: Catalog, depth: int, products: int) -> list[dict[str, Any]]:
    chain = [catalog.category("Level 0")]
    for level in range(1, depth):
        chain.append(catalog.category(f"Level {level}", chain[-1]))
    for number in range(products):
        catalog.product(chain[number % depth], chain[0])
    return chain


def test_a_product_page_is_one_statement_once_its_total_is_known(
    client: TestClient[Litestar], catalog: Catalog, backend: str
) -> None:
    chain = build_deep_catalog(catalog, depth=6, products=30)
    client.get("/api/products/categories/")  # the tree snapshot is loaded once, then reused
    # more pages follow: the page, then the total of its filter, which the next pages reuse (decision 98); on
    # PostgreSQL the total comes in the page's own statement, one round trip (decision 157)
    counted_with_the_page = 1 if backend == "postgresql" else 2
    assert statements_for(client, "/api/products/?page_size=2") == counted_with_the_page
    assert statements_for(client, "/api/products/?page_size=2&page=2") == 1
    assert statements_for(client, "/api/products/?page_size=7&ordering=price") == 1
    # one page holds the whole list: the page is its own total
    assert statements_for(client, "/api/products/?page_size=50&ordering=name") == 1
    # a category filter first counts, at most up to a bound, how big the subtree is (decision 99)
    filtered = f"/api/products/?page_size=50&category={chain[0]['id']}&search=a&ordering=-created_at"
    assert statements_for(client, filtered) == 2
    assert statements_for(client, filtered.replace("-created_at", "price")) == 1
    # by relevance (no `ordering`; the total is known from the page above): each tier until the page is full or
    # holds the total (SKU equal, SKU prefix, name, anywhere; no typo tier for one letter), then the page's rows
    assert statements_for(client, filtered.removesuffix("&ordering=-created_at")) == 5
    assert statements_for(client, f"/api/products/?page_size=2&category={chain[0]['id']}") == counted_with_the_page


def test_category_reads_come_from_the_snapshot(client: TestClient[Litestar], catalog: Catalog) -> None:
    build_deep_catalog(catalog, depth=8, products=3)
    assert statements_for(client, "/api/products/categories/?page_size=1") <= 1  # loads the tree if needed
    assert statements_for(client, "/api/products/categories/?page_size=50") == 0
    root = client.get("/api/products/categories/?root=true").json()["results"][0]
    assert statements_for(client, f"/api/products/categories/{root['id']}/") == 0
    assert statements_for(client, f"/api/products/categories/{root['id']}/average-price/") == 1
    assert statements_for(client, f"/api/products/categories/{root['id']}/average-price/") == 0


def test_writes_refresh_the_snapshot_at_once(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    root = catalog.category("Root")
    product = catalog.product(root, price="10.00")
    assert client.get(f"/api/products/categories/{root['id']}/average-price/").json()["average_price"] == 10.0
    client.patch(f"/api/products/{product['id']}/", json={"price": "30.00"}, headers=staff.headers)
    assert client.get(f"/api/products/categories/{root['id']}/average-price/").json()["average_price"] == 30.0
    client.patch(f"/api/products/categories/{root['id']}/", json={"name": "Renamed"}, headers=staff.headers)
    assert client.get(f"/api/products/{product['id']}/").json()["categories"][0]["full_path"] == "Renamed"
    assert client.get("/api/products/categories/").json()["results"][0]["name"] == "Renamed"


def test_public_product_pages_are_cached_and_refreshed_by_writes(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    catalog.product(name="Shown")
    catalog.product(name="Hidden", is_active=False)
    assert statements_for(client, "/api/products/?ordering=name") == 1
    assert statements_for(client, "/api/products/?ordering=name") == 0  # served from the response cache
    assert client.get("/api/products/?ordering=name").json()["count"] == 1
    # staff pages (inactive products included) are never cached, nor served from the public entry
    assert statements_for(client, "/api/products/?ordering=name", headers=staff.headers) >= 1
    assert statements_for(client, "/api/products/?ordering=name", headers=staff.headers) >= 1
    assert client.get("/api/products/?ordering=name", headers=staff.headers).json()["count"] == 2
    catalog.product(name="Newcomer")
    assert [p["name"] for p in client.get("/api/products/?ordering=name").json()["results"]] == ["Newcomer", "Shown"]
