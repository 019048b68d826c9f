"""Anonymous product and category answers come from memory until a write anywhere changes what they show."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.main import create_app
from app.settings import Settings
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.fakes import eventually
from tests.support.statements import statements_for


@pytest.fixture
def replica(settings: Settings, client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    """A second app on the same database and Redis, as another serving process would be."""
    with TestClient(create_app(settings), base_url="http://testserver.local") as other:
        yield other


def test_anonymous_reads_are_answered_from_memory_signed_in_ones_are_not(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    shelf = catalog.category("Shelf")
    kettle = catalog.product(shelf, name="Kettle", price="20.00")
    for url in (
        f"/api/products/{kettle['id']}/",
        "/api/products/categories/",
        f"/api/products/categories/{shelf['id']}/",
        f"/api/products/categories/{shelf['id']}/average-price/",
    ):
        first = client.get(url)
        assert statements_for(client, url) == 0, url
        again = client.get(url)
        assert again.json() == first.json()
        assert again.headers["x-request-id"] != first.headers["x-request-id"]  # each answer its own id
        assert again.headers["x-content-type-options"] == "nosniff"
    # staff may see more than the public (inactive products): their reads never come from the public entry
    assert statements_for(client, f"/api/products/{kettle['id']}/", headers=staff.headers) >= 1
    gzip = client.get(f"/api/products/{kettle['id']}/", headers={"Accept-Encoding": "gzip"})
    assert gzip.json()["name"] == "Kettle"


def test_a_write_shows_at_once_in_this_process(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller, api: Api
) -> None:
    kettle = catalog.product(name="Kettle", stock_quantity=5)
    url = f"/api/products/{kettle['id']}/"
    assert client.get(url).json()["stock_quantity"] == 5
    buyer = api.customer()
    order = {"items": [{"product_id": kettle["id"], "quantity": 2}]}
    placed = client.post("/api/orders/", json=order, headers=buyer.headers)
    assert placed.status_code == 201, placed.text
    assert client.get(url).json()["stock_quantity"] == 3
    cancelled = client.post(f"/api/orders/{placed.json()['id']}/cancel/", headers=buyer.headers)
    assert cancelled.status_code == 200
    assert client.get(url).json()["stock_quantity"] == 5
    assert client.patch(url, json={"name": "Teapot"}, headers=staff.headers).status_code == 200
    assert client.get(url).json()["name"] == "Teapot"
    assert client.delete(url, headers=staff.headers).status_code == 204
    assert client.get(url).status_code == 404


def test_a_write_in_one_process_reaches_the_others(
    client: TestClient[Litestar], replica: TestClient[Litestar], catalog: Catalog, staff: Caller, api: Api
) -> None:
    shelf = catalog.category("Shelf")
    kettle = catalog.product(shelf, name="Kettle", stock_quantity=5)
    url = f"/api/products/{kettle['id']}/"
    category_url = f"/api/products/categories/{shelf['id']}/"
    assert replica.get(url).json()["stock_quantity"] == 5
    assert replica.get(category_url).json()["name"] == "Shelf"
    buyer = api.customer()
    order = {"items": [{"product_id": kettle["id"], "quantity": 1}]}
    assert client.post("/api/orders/", json=order, headers=buyer.headers).status_code == 201
    eventually(lambda: replica.get(url).json()["stock_quantity"] == 4, timeout=3)
    renamed = client.patch(category_url, json={"name": "Rack"}, headers=staff.headers)
    assert renamed.status_code == 200
    # the replica's own tree snapshot is dropped too, so it does not rebuild the old name into its answer
    eventually(lambda: replica.get(category_url).json()["name"] == "Rack", timeout=3)
    assert replica.get(url).json()["categories"][0]["name"] == "Rack"


def test_pages_are_kept_briefly_and_dropped_by_what_they_list(
    client: TestClient[Litestar], replica: TestClient[Litestar], catalog: Catalog, staff: Caller, api: Api
) -> None:
    kettle = catalog.product(name="Kettle", stock_quantity=5)
    mug = catalog.product(name="Mug", stock_quantity=5)
    kettles, mugs = "/api/products/?search=kettle", "/api/products/?search=mug"
    assert [p["stock_quantity"] for p in client.get(kettles).json()["results"]] == [5]
    assert client.get(mugs).json()["count"] == 1
    assert statements_for(client, kettles) == 0  # from memory
    assert statements_for(client, kettles, headers=staff.headers) >= 1  # staff pages are never kept
    # a failed write changes nothing, so nothing is dropped
    assert client.post("/api/products/", json={"name": ""}, headers=staff.headers).status_code == 400
    assert statements_for(client, kettles) == 0
    # an order drops the pages listing the product it sold, here and in the other process, and only those
    assert replica.get(kettles).json()["results"][0]["stock_quantity"] == 5
    buyer = api.customer()
    order = {"items": [{"product_id": kettle["id"], "quantity": 2}]}
    assert client.post("/api/orders/", json=order, headers=buyer.headers).status_code == 201
    assert client.get(kettles).json()["results"][0]["stock_quantity"] == 3
    assert statements_for(client, mugs) == 0
    eventually(lambda: replica.get(kettles).json()["results"][0]["stock_quantity"] == 3, timeout=3)
    # a catalog write drops every page everywhere
    renamed = client.patch(f"/api/products/{mug['id']}/", json={"name": "Cup"}, headers=staff.headers)
    assert renamed.status_code == 200
    assert client.get(mugs).json()["count"] == 0
    eventually(lambda: replica.get("/api/products/?search=cup").json()["count"] == 1, timeout=3)
    eventually(lambda: replica.get(mugs).json()["count"] == 0, timeout=3)


def test_a_category_write_shows_at_once_in_every_cached_answer(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    shelf = catalog.category("Shelf")
    kettle = catalog.product(shelf, name="Kettle", price="20.00")
    listed, product = "/api/products/categories/", f"/api/products/{kettle['id']}/"
    assert [c["name"] for c in client.get(listed).json()["results"]] == ["Shelf"]
    assert client.get(product).json()["categories"][0]["full_path"] == "Shelf"
    assert statements_for(client, listed) == statements_for(client, product) == 0  # both kept
    added = client.post(listed, json={"name": "Kitchen"}, headers=staff.headers)
    assert added.status_code == 201
    assert [c["name"] for c in client.get(listed).json()["results"]] == ["Kitchen", "Shelf"]
    moved = client.patch(f"{listed}{shelf['id']}/", json={"parent": added.json()["id"]}, headers=staff.headers)
    assert moved.status_code == 200
    # the tree snapshot and the product's kept answer both follow the move
    assert client.get(product).json()["categories"][0]["full_path"] == "Kitchen > Shelf"
    assert client.get(f"{listed}{added.json()['id']}/").json()["children"][0]["name"] == "Shelf"


@pytest.fixture
def refused_category(client: TestClient[Litestar], catalog: Catalog, api: Api) -> Iterator[dict[str, Any]]:
    """A category the database refuses to link products to (a trigger): a write fails after it has written."""
    category = catalog.category("Refused")

    async def run(session: AsyncSession, statements: list[str]) -> None:
        for statement in statements:
            await session.execute(text(statement))
        await session.commit()

    if client.app.state.settings.database_url.startswith("sqlite"):
        create = [
            "CREATE TRIGGER test_refused_link BEFORE INSERT ON catalog_product_category "
            f"WHEN NEW.category_id = {category['id']} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ]
        drop = ["DROP TRIGGER test_refused_link"]
    else:
        create = [
            "CREATE FUNCTION test_refused_link() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; END $$",
            "CREATE TRIGGER test_refused_link BEFORE INSERT ON catalog_product_category FOR EACH ROW "
            f"WHEN (NEW.category_id = {category['id']}) EXECUTE FUNCTION test_refused_link()",
        ]
        drop = ["DROP TRIGGER test_refused_link ON catalog_product_category", "DROP FUNCTION test_refused_link()"]
    api.run(lambda session: run(session, create))
    yield category
    api.run(lambda session: run(session, drop))


def test_a_write_that_fails_after_writing_leaves_nothing_and_keeps_the_caches(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller, refused_category: dict[str, Any]
) -> None:
    shelf = catalog.category("Shelf")
    kettle = catalog.product(shelf, name="Kettle", sku="K-1")
    product, page = f"/api/products/{kettle['id']}/", "/api/products/"
    assert client.get(product).json()["name"] == "Kettle"
    assert client.get(page).json()["count"] == 1
    # the product row is updated and flushed, then linking it fails: all of it is rolled back
    failed = client.patch(
        product, json={"name": "Teapot", "categories": [refused_category["id"]]}, headers=staff.headers
    )
    assert (failed.status_code, failed.headers["content-type"]) == (409, "application/problem+json")
    rows = [
        {"name": "Mug", "price": "5.00", "sku": "M-1", "categories": [shelf["id"]]},
        {"name": "Cup", "price": "4.00", "sku": "C-1", "categories": [refused_category["id"]]},
    ]
    assert client.post(f"{page}bulk_upload/", json=rows, headers=staff.headers).status_code == 409
    # nothing was dropped (nothing changed), and what the database holds is what the caches say
    assert statements_for(client, product) == statements_for(client, page) == 0
    for headers in ({}, staff.headers):
        assert client.get(product, headers=headers).json()["name"] == "Kettle"
        assert client.get(product, headers=headers).json()["categories"][0]["name"] == "Shelf"
        assert [p["sku"] for p in client.get(page, headers=headers).json()["results"]] == ["K-1"]
    # and the next write goes through, on the same connection pool
    assert client.patch(product, json={"name": "Teapot"}, headers=staff.headers).json()["name"] == "Teapot"
    assert client.get(product).json()["name"] == "Teapot"
