"""Reads issue a fixed number of SQL statements whatever the page size or the depth of the tree."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.support.catalog import Catalog
from tests.support.statements import counted


def build_deep_catalog(catalog: Catalog, depth: int, products: int) -> list[dict[str, Any]]:
    chain = [catalog.category("Level 0")]
    for level in range(1, depth):
        chain.append(catalog.category(f"Level {level}", chain[-1]))
    for number in range(products):
        catalog.product(chain[number % depth], chain[0])
    return chain


def statements_for(client: TestClient[Litestar], url: str) -> int:
    with counted(client) as statements:
        assert client.get(url).status_code == 200
    return len(statements)


def test_product_list_uses_four_statements(client: TestClient[Litestar], catalog: Catalog) -> None:
    chain = build_deep_catalog(catalog, depth=6, products=30)
    small = statements_for(client, "/api/products/?page_size=2")
    large = statements_for(client, "/api/products/?page_size=50")
    filtered = statements_for(client, f"/api/products/?page_size=50&category={chain[0]['id']}&search=a")
    assert small == large == filtered == 4


def test_category_list_and_detail_use_fixed_statements(client: TestClient[Litestar], catalog: Catalog) -> None:
    build_deep_catalog(catalog, depth=8, products=0)
    assert statements_for(client, "/api/products/categories/?page_size=1") == 4
    assert statements_for(client, "/api/products/categories/?page_size=50") == 4
    root = client.get("/api/products/categories/?root=true").json()["results"][0]
    assert statements_for(client, f"/api/products/categories/{root['id']}/") == 2
    assert statements_for(client, f"/api/products/categories/{root['id']}/average-price/") == 3
