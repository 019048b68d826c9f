"""POST /api/products/bulk_upload/: many products at once, all or nothing."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import ProductWriteFactory
from tests.support.api import Caller
from tests.support.catalog import Catalog

URL = "/api/products/bulk_upload/"


def rows(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [dict(msgspec.to_builtins(ProductWriteFactory.build(**fields))) for _ in range(count)]


def product_count(client: TestClient[Litestar], staff: Caller) -> int:
    return int(client.get("/api/products/", headers=staff.headers).json()["count"])


def test_readme_example(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    category = catalog.category("Misc")
    body = [
        {"name": "Product 1", "price": "19.99", "sku": "P001", "categories": [category["id"]], "stock_quantity": 10},
        {"name": "Product 2", "price": "29.99", "sku": "P002", "categories": [category["id"]], "stock_quantity": 15},
    ]
    response = client.post(URL, json=body, headers=staff.headers)
    assert response.status_code == 201
    products = response.json()  # the original's answer: the products, as an array (its test: len(data) == 2)
    assert [p["sku"] for p in products] == ["P001", "P002"]
    assert products == [client.get(f"/api/products/{p['id']}/").json() for p in products]
    assert (products[0]["price"], products[0]["stock_quantity"]) == ("19.99", 10)
    assert products[0]["categories"][0]["id"] == category["id"]
    assert (response.headers["X-Created-Count"], response.headers["X-Updated-Count"]) == ("2", "0")


def test_any_invalid_row_rejects_the_whole_upload(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    catalog.product(sku="EXISTING")
    body = rows(5)
    body[1]["price"] = "-1"
    body[2]["sku"] = "existing"
    body[3]["sku"] = body[0]["sku"].lower()
    body[4]["categories"] = [8080]
    body.append({"name": "no price", "sku": "NP"})
    response = client.post(URL, json=body, headers=staff.headers)
    assert response.status_code == 400
    problem = response.json()
    assert problem["detail"] == "Some rows are invalid; nothing was written."
    errors = {row["index"]: row["errors"] for row in problem["errors"]}
    assert set(errors) == {1, 2, 3, 4, 5}
    assert errors[1] == {"price": ["Ensure this value is greater than 0."]}
    assert "already exists" in errors[2]["sku"][0]
    assert errors[3] == {"sku": ["Duplicate SKU in this upload (first at index 0)."]}
    assert errors[4] == {"categories": ["Unknown category id(s): 8080."]}
    assert errors[5] == {"price": ["This field is required."]}
    assert product_count(client, staff) == 1


def test_upsert_updates_existing_skus(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    old = catalog.product(sku="KEEP-1", price="10.00", stock_quantity=1)
    body = [
        {"name": "Updated", "price": "12.50", "sku": "keep-1", "stock_quantity": 9},
        {"name": "Brand new", "price": "3.00", "sku": "NEW-1"},
    ]
    response = client.post(URL, params={"mode": "upsert"}, json=body, headers=staff.headers)
    assert response.status_code == 201
    assert (response.headers["X-Created-Count"], response.headers["X-Updated-Count"]) == ("1", "1")
    updated, new = response.json()
    assert updated["id"] == old["id"]
    assert new["sku"] == "NEW-1"
    assert updated == client.get(f"/api/products/{old['id']}/").json()
    assert (updated["name"], updated["price"], updated["stock_quantity"]) == ("Updated", "12.50", 9)
    assert updated["categories"] == []


def test_csv_upload(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    a, b = catalog.category("A"), catalog.category("B")
    csv_body = (
        "name,price,sku,categories,stock_quantity,description\n"
        f'Mug,7.50,MUG-1,{a["id"]};{b["id"]},12,"Ceramic, 300 ml"\n'
        "Spoon,1.20,SPN-1,,,\n"
    )
    response = client.post(URL, content=csv_body.encode(), headers={**staff.headers, "content-type": "text/csv"})
    assert response.status_code == 201, response.text
    mug_id, spoon_id = (product["id"] for product in response.json())
    mug = client.get(f"/api/products/{mug_id}/").json()
    assert (mug["description"], mug["stock_quantity"]) == ("Ceramic, 300 ml", 12)
    assert sorted(c["id"] for c in mug["categories"]) == [a["id"], b["id"]]
    assert client.get(f"/api/products/{spoon_id}/").json()["stock_quantity"] == 0


def test_csv_errors_are_reported_by_row(client: TestClient[Litestar], staff: Caller) -> None:
    csv_body = "name,price,sku,stock_quantity\nOk,1.00,OK-1,1\nBad,1.00,BAD-1,many\n"
    response = client.post(URL, content=csv_body.encode(), headers={**staff.headers, "content-type": "text/csv"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 1, "errors": {"stock_quantity": ["Expected `int`, got `str`"]}}]
    missing_header = client.post(
        URL, content=b"title,cost\nx,1\n", headers={**staff.headers, "content-type": "text/csv"}
    )
    assert missing_header.status_code == 400


def test_body_must_be_a_non_empty_json_array(client: TestClient[Litestar], staff: Caller) -> None:
    for body in (b"{}", b"[]", b"not json"):
        response = client.post(URL, content=body, headers={**staff.headers, "content-type": "application/json"})
        assert response.status_code == 400, body
        assert response.headers["content-type"].startswith("application/problem+json")


def test_more_than_ten_thousand_rows_is_413(client: TestClient[Litestar], staff: Caller) -> None:
    row = {"name": "x", "price": "1.00", "sku": "S"}
    response = client.post(URL, json=[row] * 10_001, headers=staff.headers)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert product_count(client, staff) == 0
