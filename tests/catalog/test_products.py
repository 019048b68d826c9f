"""/api/products/: products, their filters and their rules."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import ProductWriteFactory
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog

URL = "/api/products/"


def new_product(**fields: Any) -> dict[str, Any]:
    return dict(msgspec.to_builtins(ProductWriteFactory.build(**fields)))


def test_create_with_the_readme_example(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    phones = catalog.category("Smartphones")
    body = {
        "name": "iPhone 15 Pro",
        "description": "Latest iPhone with titanium design",
        "price": "999.99",
        "sku": "IP15P-001",
        "categories": [phones["id"]],
        "stock_quantity": 50,
    }
    response = client.post(URL, json=body, headers=staff.headers)
    assert response.status_code == 201
    product = response.json()
    assert product["price"] == "999.99"
    assert product["is_active"] is True
    assert product["categories"] == [
        {"id": phones["id"], "name": "Smartphones", "parent": None, "full_path": "Smartphones"}
    ]
    assert set(product) == {"id", "name", "description", "price", "sku", "categories", "stock_quantity"} | {
        "is_active",
        "created_at",
        "updated_at",
    }
    assert client.get(f"{URL}{product['id']}/").json() == product


def test_list_has_the_full_page_number_shape(client: TestClient[Litestar], catalog: Catalog) -> None:
    for _ in range(3):
        catalog.product()
    body = client.get(URL).json()
    assert (body["count"], body["total_pages"], body["current_page"], body["page_size"]) == (3, 1, 1, 50)
    assert body["has_next"] is False
    assert len(body["results"]) == 3
    paged = client.get(URL, params={"page_size": 2, "page": 2}).json()
    assert (len(paged["results"]), paged["has_previous"], paged["next"]) == (1, True, None)
    assert client.get(URL, params={"page_size": 999}).json()["page_size"] == 200


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("price", "0", "greater than 0"),
        ("price", "-5.00", "greater than 0"),
        ("price", "19.999", "2 decimal places"),
        ("price", "123456789.00", "10 digits"),
        ("price", "abc", "decimal"),
        ("stock_quantity", -1, ">= 0"),
        ("sku", "x" * 51, "length <= 50"),
        ("sku", "   ", "matching regex"),  # printable ASCII, no space at either end
        ("name", "", "length >= 1"),
    ],
)
def test_invalid_fields_are_400(
    client: TestClient[Litestar], staff: Caller, field: str, value: Any, message: str
) -> None:
    response = client.post(
        URL,
        json=new_product(**{field: value}) if field != "price" else {**new_product(), field: value},
        headers=staff.headers,
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(message in text for text in errors[field]), errors
    assert client.get(URL).json()["count"] == 0


def test_required_fields(client: TestClient[Litestar], staff: Caller) -> None:
    response = client.post(URL, json={"description": "nothing else"}, headers=staff.headers)
    assert response.status_code == 400
    assert "name" in response.json()["errors"]


def test_sku_is_unique_case_insensitively(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    catalog.product(sku="ABC-1")
    response = client.post(URL, json=new_product(sku="abc-1"), headers=staff.headers)
    assert response.status_code == 400
    assert response.json()["errors"] == {"sku": ["A product with this SKU already exists."]}


def test_unknown_categories_are_named(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    known = catalog.category("Known")
    response = client.post(URL, json=new_product(categories=[known["id"], 9991, 9992]), headers=staff.headers)
    assert response.status_code == 400
    assert response.json()["errors"] == {"categories": ["Unknown category id(s): 9991, 9992."]}


def test_put_replaces_and_patch_changes_one_field(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    old, new = catalog.category("Old"), catalog.category("New")
    product = catalog.product(old, name="Kettle", price="20.00")
    replaced = client.put(
        f"{URL}{product['id']}/",
        json={"name": "Kettle 2", "price": "25.50", "sku": product["sku"], "categories": [new["id"]]},
        headers=staff.headers,
    ).json()
    assert (replaced["name"], replaced["price"], replaced["description"]) == ("Kettle 2", "25.50", "")
    assert [c["name"] for c in replaced["categories"]] == ["New"]
    patched = client.patch(f"{URL}{product['id']}/", json={"stock_quantity": 7}, headers=staff.headers).json()
    assert (patched["stock_quantity"], patched["name"], patched["price"]) == (7, "Kettle 2", "25.50")


def test_patch_to_a_taken_sku_is_400(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    catalog.product(sku="TAKEN")
    mine = catalog.product(sku="MINE")
    response = client.patch(f"{URL}{mine['id']}/", json={"sku": "taken"}, headers=staff.headers)
    assert response.status_code == 400
    assert client.patch(f"{URL}{mine['id']}/", json={"sku": "mine"}, headers=staff.headers).status_code == 200


def test_inactive_products_are_hidden_from_everyone_but_staff(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller, api: Api
) -> None:
    visible = catalog.product(name="Visible")
    hidden = catalog.product(name="Hidden", is_active=False)
    customer = api.customer()
    for headers in ({}, customer.headers):
        assert [p["name"] for p in client.get(URL, headers=headers).json()["results"]] == ["Visible"]
        assert client.get(f"{URL}{hidden['id']}/", headers=headers).status_code == 404
        assert client.get(URL, params={"is_active": "false"}, headers=headers).json()["count"] == 0
    assert client.get(f"{URL}{hidden['id']}/", headers=staff.headers).status_code == 200
    assert client.get(URL, headers=staff.headers).json()["count"] == 2
    staff_inactive = client.get(URL, params={"is_active": "false"}, headers=staff.headers).json()
    assert [p["id"] for p in staff_inactive["results"]] == [hidden["id"]]
    assert visible["is_active"] is True


def test_search_matches_name_description_and_sku_case_insensitively(
    client: TestClient[Litestar], catalog: Catalog
) -> None:
    catalog.product(name="iPhone 15", description="phone", sku="A-1")
    catalog.product(name="Case", description="Fits the IPHONE 15", sku="A-2")
    catalog.product(name="Cable", description="USB-C", sku="IPH-CABLE")
    catalog.product(name="Kettle", description="1.7 l", sku="K-1")
    catalog.product(name="100% cotton shirt", description="", sku="T-1")
    found = client.get(URL, params={"search": "iph", "ordering": "name"}).json()
    assert [p["name"] for p in found["results"]] == ["Cable", "Case", "iPhone 15"]
    assert client.get(URL, params={"search": "%"}).json()["count"] == 5  # no letter or digit: no search


def test_category_filter_includes_descendants_once(client: TestClient[Litestar], catalog: Catalog) -> None:
    electronics = catalog.category("Electronics")
    phones = catalog.category("Phones", electronics)
    android = catalog.category("Android", phones)
    books = catalog.category("Books")
    in_two = catalog.product(phones, android, name="Pixel")
    catalog.product(electronics, name="TV")
    catalog.product(books, name="Novel")
    under_electronics = client.get(URL, params={"category": electronics["id"], "ordering": "name"}).json()
    assert [p["name"] for p in under_electronics["results"]] == ["Pixel", "TV"]
    assert under_electronics["count"] == 2
    assert [p["id"] for p in client.get(URL, params={"category": android["id"]}).json()["results"]] == [in_two["id"]]
    assert [c["full_path"] for c in in_two["categories"]] == ["Electronics > Phones", "Electronics > Phones > Android"]


def test_price_and_stock_filters(client: TestClient[Litestar], catalog: Catalog) -> None:
    catalog.product(name="Cheap", price="5.00", stock_quantity=0)
    catalog.product(name="Mid", price="50.00", stock_quantity=3)
    catalog.product(name="Dear", price="500.00", stock_quantity=1)

    def names(**params: Any) -> list[str]:
        return [p["name"] for p in client.get(URL, params={"ordering": "price", **params}).json()["results"]]

    assert names(min_price="5.00", max_price="50") == ["Cheap", "Mid"]
    assert names(min_price="50.01") == ["Dear"]
    assert names(in_stock="true") == ["Mid", "Dear"]
    assert names(in_stock="false") == ["Cheap"]
    assert client.get(URL, params={"min_price": "lots"}).status_code == 400


def test_ordering_with_id_tie_breaker(client: TestClient[Litestar], catalog: Catalog) -> None:
    a = catalog.product(name="Same", price="10.00")
    b = catalog.product(name="Same", price="10.00")
    c = catalog.product(name="Alpha", price="30.00")

    def ids(ordering: str) -> list[int]:
        return [p["id"] for p in client.get(URL, params={"ordering": ordering}).json()["results"]]

    assert ids("price") == [a["id"], b["id"], c["id"]]
    assert ids("-price") == [c["id"], b["id"], a["id"]]
    assert ids("name") == [c["id"], a["id"], b["id"]]
    assert ids("-created_at") == [c["id"], b["id"], a["id"]]
    assert ids("created_at") == [a["id"], b["id"], c["id"]]
    response = client.get(URL, params={"ordering": "stock_quantity"})
    assert response.status_code == 400
    assert "ordering" in response.json()["errors"]


def test_delete_product_not_in_orders_removes_it(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    product = catalog.product()
    assert client.delete(f"{URL}{product['id']}/", headers=staff.headers).status_code == 204
    assert client.get(f"{URL}{product['id']}/", headers=staff.headers).status_code == 404
    assert client.delete(f"{URL}{product['id']}/", headers=staff.headers).status_code == 404


def test_product_writes_need_staff_with_write_scope(client: TestClient[Litestar], catalog: Catalog, api: Api) -> None:
    product = catalog.product()
    customer = api.customer()
    assert client.post(URL, json=new_product()).status_code == 401
    assert client.post(URL, json=new_product(), headers=customer.headers).status_code == 403
    assert client.patch(f"{URL}{product['id']}/", json={"price": "1.00"}, headers=customer.headers).status_code == 403
    assert client.delete(f"{URL}{product['id']}/", headers=customer.headers).status_code == 403
    assert client.post("/api/products/bulk_upload/", json=[new_product()], headers=customer.headers).status_code == 403
    assert client.get(f"{URL}{product['id']}/").json()["price"] == product["price"]


def test_unknown_product_is_404(client: TestClient[Litestar], staff: Caller) -> None:
    assert client.get(f"{URL}123456/").status_code == 404
    assert client.patch(f"{URL}123456/", json={"name": "x"}, headers=staff.headers).status_code == 404


def test_category_products_and_average_price(client: TestClient[Litestar], catalog: Catalog) -> None:
    electronics = catalog.category("Electronics")
    phones = catalog.category("Smartphones", electronics)
    catalog.product(phones, electronics, price="999.99")  # counted once although in two categories
    catalog.product(phones, price="300.00")
    catalog.product(electronics, price="649.99")
    catalog.product(electronics, price="5000.00", is_active=False)  # inactive: ignored
    catalog.product(catalog.category("Other"), price="1.00")

    average = client.get(f"/api/products/categories/{electronics['id']}/average-price/").json()
    assert average == {
        "category": "Electronics",
        "category_path": "Electronics",
        "average_price": 649.99,
        "total_products": 3,
    }
    phones_average = client.get(f"/api/products/categories/{phones['id']}/average-price").json()
    assert phones_average["category_path"] == "Electronics > Smartphones"
    assert phones_average["average_price"] == 650.0  # (999.99 + 300.00) / 2 = 649.995, half-up
    listed = client.get(f"/api/products/categories/{electronics['id']}/products/").json()
    assert listed["count"] == 3
    assert len({p["id"] for p in listed["results"]}) == 3


def test_average_price_of_an_empty_category_is_zero(client: TestClient[Litestar], catalog: Catalog) -> None:
    empty = catalog.category("Empty")
    body = client.get(f"/api/products/categories/{empty['id']}/average-price/").json()
    assert body == {"category": "Empty", "category_path": "Empty", "average_price": 0, "total_products": 0}
    assert client.get(f"/api/products/categories/{empty['id']}/products/").json()["count"] == 0
    assert client.get("/api/products/categories/777777/average-price/").status_code == 404
    assert client.get("/api/products/categories/777777/products/").status_code == 404


def test_average_is_exact_to_the_cent(client: TestClient[Litestar], catalog: Catalog) -> None:
    category = catalog.category("Rounding")
    for price in ("0.01", "0.02", "0.02"):
        catalog.product(category, price=price)
    # 0.05 / 3 = 0.01666...: two places, half-up
    assert client.get(f"/api/products/categories/{category['id']}/average-price/").json()["average_price"] == 0.02


def test_delete_of_a_referenced_product_deactivates_it(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller, api: Api
) -> None:
    """Order history references products by foreign key; the database decides, so any referencing table counts."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    product = catalog.product(name="Sold once")

    async def reference(session: AsyncSession) -> None:
        await session.execute(
            text("CREATE TABLE test_history (product_id BIGINT NOT NULL REFERENCES catalog_product (id))")
        )
        await session.execute(text("INSERT INTO test_history VALUES (:id)"), {"id": product["id"]})
        await session.commit()

    async def drop(session: AsyncSession) -> None:
        await session.execute(text("DROP TABLE test_history"))
        await session.commit()

    api.run(reference)
    try:
        assert client.delete(f"{URL}{product['id']}/", headers=staff.headers).status_code == 204
        kept = client.get(f"{URL}{product['id']}/", headers=staff.headers).json()
        assert kept["is_active"] is False
        assert client.get(f"{URL}{product['id']}/").status_code == 404
    finally:
        api.run(drop)


def test_a_page_number_no_table_can_reach_is_404_not_a_database_overflow(
    client: TestClient[Litestar], catalog: Catalog
) -> None:
    """Found by schemathesis: `?page=58856059091508631374397440` overflowed the OFFSET (500)."""
    root = catalog.category("Root")
    for url in ("/api/products/", f"/api/products/categories/{root['id']}/products/"):
        response = client.get(url, params={"page": 58856059091508631374397440, "ordering": "name"})
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("amount", ["2.1686237878775125e+270", "-5", "1.999"])
def test_price_filters_outside_what_a_price_can_be_are_400(
    client: TestClient[Litestar], catalog: Catalog, amount: str
) -> None:
    """Found by schemathesis: `?min_price=2.1686237878775125e+270` failed to round to cents (500)."""
    root = catalog.category("Root")
    for url in ("/api/products/", f"/api/products/categories/{root['id']}/products/"):
        for name in ("min_price", "max_price"):
            response = client.get(url, params={name: amount})
            assert response.status_code == 400, response.text
            assert list(response.json()["errors"]) == [name]


@pytest.mark.parametrize(
    ("sku", "accepted"),
    [("IP15P-001", True), ("A B/C.d_e#1", True), (" padded", False), ("tab\there", False), ("ÞORN-1", False)],
)
def test_skus_are_printable_ascii(client: TestClient[Litestar], staff: Caller, sku: str, accepted: bool) -> None:
    """Found by schemathesis: SKUs that differ by a non-ASCII capital passed the Python check, which folds
    Unicode case, and then failed SQLite's unique index, which folds ASCII only (500)."""
    response = client.post(
        "/api/products/", json={"name": "Phone", "price": "10.00", "sku": sku}, headers=staff.headers
    )
    assert response.status_code == (201 if accepted else 400), response.text
    if not accepted:
        assert list(response.json()["errors"]) == ["sku"]
