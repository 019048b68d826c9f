"""Request bodies the way the original API accepted them (issue 14): JSON, url-encoded and multipart forms.

Multipart bodies are built as DRF's test client builds them (tests/support/forms.py: the fixed boundary, `str()` of
each value, lists as repeated fields, files as file parts); url-encoded ones as `curl -d` and browser forms send
them. Every JSON write reads the three types with the same validation and the same errors; any other type is 415.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import RegisterCustomerFactory
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.forms import MULTIPART_CONTENT, URLENCODED, UploadedFile, encode_multipart, encode_urlencoded

UNSUPPORTED = "/problems/unsupported-media-type"


def multipart(client: TestClient[Litestar], method: str, url: str, data: dict[str, Any], **headers: str) -> Any:
    return client.request(
        method, url, content=encode_multipart(data), headers={**headers, "Content-Type": MULTIPART_CONTENT}
    )


def urlencoded(client: TestClient[Litestar], method: str, url: str, data: Any, **headers: str) -> Any:
    return client.request(method, url, content=encode_urlencoded(data), headers={**headers, "Content-Type": URLENCODED})


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def test_register_and_profile_in_drfs_default_multipart(client: TestClient[Litestar]) -> None:
    fields = msgspec.to_builtins(RegisterCustomerFactory.build(phone_number="0722000111"))
    response = multipart(client, "POST", "/api/auth/register/", fields)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["username"], created["phone_number"], created["is_staff"]) == (
        fields["username"],
        "+254722000111",
        False,
    )
    # the same registration as JSON is the same answer (a taken username, named the same way)
    again = [
        problem(multipart(client, "POST", "/api/auth/register/", fields), 400)["errors"],
        problem(client.post("/api/auth/register/", json=fields), 400)["errors"],
    ]
    assert again[0] == again[1]
    assert "username" in again[0]


def test_profile_patch_and_put_as_forms(client: TestClient[Litestar], api: Api) -> None:
    customer = api.customer()
    headers = customer.headers
    changed = multipart(client, "PATCH", "/api/auth/profile/", {"first_name": "Wanjiru"}, **headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["first_name"] == "Wanjiru"
    assert changed.json()["last_name"] == customer.profile["last_name"]  # left out: kept
    # an empty value of a field that may be null is null, as DRF reads it
    cleared = urlencoded(client, "PUT", "/api/auth/profile/", {"phone_number": "", "last_name": "Otieno"}, **headers)
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["phone_number"], cleared.json()["last_name"]) == (None, "Otieno")


def test_a_product_with_a_list_of_categories(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    phones, audio = catalog.category("Phones"), catalog.category("Audio")
    fields = {
        "name": "Earbuds",
        "price": Decimal("49.90"),
        "sku": "EB-1",
        "categories": [phones["id"], audio["id"]],  # repeated fields, as DRF's client sends a list
        "stock_quantity": 7,
        "is_active": False,  # "False", as Django writes it
    }
    response = multipart(client, "POST", "/api/products/", fields, **staff.headers)
    assert response.status_code == 201, response.text
    product = response.json()
    assert sorted(c["id"] for c in product["categories"]) == sorted([phones["id"], audio["id"]])
    assert (product["price"], product["stock_quantity"], product["is_active"]) == ("49.90", 7, False)

    # curl -d 'name=...&categories=2&categories=5': url-encoded, booleans in DRF's words
    body = [("name", "Cable"), ("price", "5"), ("sku", "CB-1"), ("categories", phones["id"]), ("is_active", "on")]
    cable = urlencoded(client, "POST", "/api/products/", body, **staff.headers)
    assert cable.status_code == 201, cable.text
    assert ([c["id"] for c in cable.json()["categories"]], cable.json()["is_active"]) == ([phones["id"]], True)
    # PATCH: one empty value is the empty list; left-out fields keep their value
    patched = urlencoded(client, "PATCH", f"/api/products/{cable.json()['id']}/", {"categories": ""}, **staff.headers)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["categories"], patched.json()["is_active"]) == ([], True)

    # categories: a new root from an empty parent, then moved
    root = urlencoded(client, "POST", "/api/products/categories/", {"name": "Misc", "parent": ""}, **staff.headers)
    assert (root.status_code, root.json()["parent"]) == (201, None)
    moved = multipart(
        client,
        "PUT",
        f"/api/products/categories/{root.json()['id']}/",
        {"name": "Misc", "parent": phones["id"]},
        **staff.headers,
    )
    assert (moved.status_code, moved.json()["parent"]) == (200, phones["id"])


def test_form_errors_are_the_json_errors(client: TestClient[Litestar], staff: Caller) -> None:
    cases = [
        {"name": "Lamp", "price": "12.50", "sku": "L-1", "stock_quantity": "many"},
        {"price": "12.50", "sku": "L-1"},
        {"name": "Lamp", "price": "-1", "sku": "L-1"},
        {"name": "Lamp", "price": "12.50", "sku": "L-1", "is_active": "maybe"},
        {"name": "Lamp", "price": "12.50", "sku": "L-1", "categories": ["x"]},
    ]
    for fields in cases:
        as_json = problem(client.post("/api/products/", json=fields, headers=staff.headers), 400)
        as_form = problem(urlencoded(client, "POST", "/api/products/", fields, **staff.headers), 400)
        as_multipart = problem(multipart(client, "POST", "/api/products/", fields, **staff.headers), 400)
        assert as_json["errors"], fields
        assert as_form["errors"] == as_json["errors"] == as_multipart["errors"], fields
        assert as_form["type"] == as_json["type"] == as_multipart["type"], fields
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 0


def test_what_a_form_cannot_mean_is_400_naming_the_field(client: TestClient[Litestar], staff: Caller) -> None:
    twice = [("name", "Lamp"), ("name", "Desk"), ("price", "1.00"), ("sku", "L-1")]
    assert problem(urlencoded(client, "POST", "/api/products/", twice, **staff.headers), 400)["errors"] == {
        "name": ["Send this field once."]
    }
    a_file = {"name": UploadedFile("name.txt", b"Lamp"), "price": "1.00", "sku": "L-1"}
    assert problem(multipart(client, "POST", "/api/products/", a_file, **staff.headers), 400)["errors"] == {
        "name": ["Expected text, got a file."]
    }
    indexed_scalar = [("name[0]", "Lamp"), ("price", "1.00"), ("sku", "L-1")]
    assert problem(urlencoded(client, "POST", "/api/products/", indexed_scalar, **staff.headers), 400)["errors"] == {
        "name": ["`name` is not a list."]
    }
    both = [("items", "[]"), ("items[0]product_id", "1")]
    assert problem(urlencoded(client, "POST", "/api/orders/", both, **staff.headers), 400)["errors"] == {
        "items": ["Send either `items` or `items[0]...`, not both."]
    }
    # a part that is not UTF-8 (its declared charset by default) is the text rule's 400, not a 500
    latin1 = encode_multipart({"name": b"L\xe4mp", "price": "1.00", "sku": "L-1"})
    headers = {**staff.headers, "Content-Type": MULTIPART_CONTENT}
    assert (
        problem(client.post("/api/products/", content=latin1, headers=headers), 400)["type"] == "/problems/invalid-text"
    )
    # forms obey the body limit (1 MiB here) as JSON does
    huge = encode_multipart({"name": "x" * (1024 * 1024), "price": "1.00", "sku": "L-1"})
    assert problem(client.post("/api/products/", content=huge, headers=headers), 413)["type"] == "/problems/too-large"
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 0


def test_orders_with_drf_indexed_items_or_json_items(
    client: TestClient[Litestar], api: Api, catalog: Catalog, staff: Caller
) -> None:
    mug, lamp = catalog.product(stock_quantity=10), catalog.product(stock_quantity=10)
    buyer = api.customer()
    indexed = [
        ("items[0]product_id", mug["id"]),
        ("items[0]quantity", 2),
        ("items[1][product_id]", lamp["id"]),
        ("items[1][quantity]", 1),
        ("notes", "Ring twice"),
    ]
    order = urlencoded(client, "POST", "/api/orders/", indexed, **buyer.headers)
    assert order.status_code == 201, order.text
    assert [(i["product"]["id"], i["quantity"]) for i in order.json()["items"]] == [(mug["id"], 2), (lamp["id"], 1)]
    assert order.json()["notes"] == "Ring twice"

    as_json_parts = {"items": [json.dumps({"product_id": mug["id"], "quantity": 3})]}
    second = multipart(client, "POST", "/api/orders/", as_json_parts, **buyer.headers)
    assert second.status_code == 201, second.text
    assert [(i["product"]["id"], i["quantity"]) for i in second.json()["items"]] == [(mug["id"], 3)]

    # not enough stock: the same 400 problem as in JSON
    short = [("items[0].product_id", lamp["id"]), ("items[0].quantity", 50)]
    stock_out = problem(urlencoded(client, "POST", "/api/orders/", short, **buyer.headers), 400)
    assert stock_out["type"] == "/problems/insufficient-stock"
    assert stock_out["errors"] == {"items": [f"Product {lamp['id']}: requested 50, available 9."]}

    # a staff status change, DRF-style multipart
    url = f"/api/orders/{order.json()['id']}/status/"
    advanced = multipart(client, "POST", url, {"status": "confirmed"}, **staff.headers)
    assert (advanced.status_code, advanced.json()["status"]) == (200, "confirmed")
    patched = urlencoded(
        client, "PATCH", f"/api/orders/{order.json()['id']}/", {"status": "processing"}, **staff.headers
    )
    assert (patched.status_code, patched.json()["status"]) == (200, "processing")


def test_bulk_upload_as_indexed_rows_or_a_file(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    category = catalog.category("Misc")
    rows = [
        ("[0]name", "Product 1"),
        ("[0]price", "19.99"),
        ("[0]sku", "P001"),
        ("[0]categories", category["id"]),
        ("[1]name", "Product 2"),
        ("[1]price", "29.99"),
        ("[1]sku", "P002"),
        ("[1]stock_quantity", "15"),
    ]
    response = urlencoded(client, "POST", "/api/products/bulk_upload/", rows, **staff.headers)
    assert response.status_code == 201, response.text
    assert [p["sku"] for p in response.json()] == ["P001", "P002"]
    assert response.json()[0]["categories"][0]["id"] == category["id"]

    csv = UploadedFile("products.csv", b"name,price,sku\nLamp,12.50,L-1\nDesk,99.00,D-1\n")
    uploaded = multipart(client, "POST", "/api/products/bulk_upload/", {"file": csv}, **staff.headers)
    assert uploaded.status_code == 201, uploaded.text
    assert [p["sku"] for p in uploaded.json()] == ["L-1", "D-1"]
    listing = json.dumps([{"name": "Chair", "price": "45.00", "sku": "C-1"}]).encode()
    as_json = multipart(
        client, "POST", "/api/products/bulk_upload/", {"file": UploadedFile("rows.json", listing)}, **staff.headers
    )
    assert (as_json.status_code, as_json.headers["X-Created-Count"]) == (201, "1"), as_json.text

    # what an uploaded file cannot be: each 400 names the part, and nothing more is written
    bad_uploads = [
        ({"file": csv, "mode": "upsert"}, {"non_field_errors": ["Send one file and no other field."]}),
        ({"file": UploadedFile("rows.json", b"[{")}, "Invalid JSON: "),
        ({"file": UploadedFile("rows.json", b'{"name": "x"}')}, {"file": ["Expected a JSON array of products."]}),
        (
            {"file": UploadedFile("rows.bin", b"\x00\x01")},
            {"file": ["Send a CSV file (text/csv, .csv) or a JSON one (application/json, .json)."]},
        ),
    ]
    for fields, expected in bad_uploads:
        refused = problem(multipart(client, "POST", "/api/products/bulk_upload/", fields, **staff.headers), 400)
        if isinstance(expected, str):
            assert refused["errors"]["file"][0].startswith(expected), refused
        else:
            assert refused["errors"] == expected, refused
    nul = UploadedFile("products.csv", b"name,price,sku\nLa\x00mp,12.50,L-9\n")
    refused = problem(multipart(client, "POST", "/api/products/bulk_upload/", {"file": nul}, **staff.headers), 400)
    assert refused["type"] == "/problems/invalid-text"
    not_utf8 = UploadedFile("rows.json", b'[{"name": "L\xe4mp"}]')
    refused = problem(multipart(client, "POST", "/api/products/bulk_upload/", {"file": not_utf8}, **staff.headers), 400)
    assert refused["type"] == "/problems/invalid-text"
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 5


def test_other_types_are_415_and_write_nothing(client: TestClient[Litestar], staff: Caller) -> None:
    fields = msgspec.to_builtins(RegisterCustomerFactory.build())
    body = json.dumps(fields).encode()
    for content_type in ("text/plain", "application/xml", "application/json-patch+json", None):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = problem(client.post("/api/auth/register/", content=body, headers=headers), 415)
        assert answer["type"] == UNSUPPORTED, answer
        assert answer["detail"].startswith("Unsupported media type")
    # no body at all, whatever the type: a 400 that says so (Litestar decides it before the body is read)
    for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": URLENCODED}):
        empty = problem(client.post("/api/auth/register/", headers=headers), 400)
        assert empty["errors"] == {"non_field_errors": ["No data provided: the request has no body."]}
    product = json.dumps({"name": "Lamp", "price": "1.00", "sku": "L-1"}).encode()
    headers = {**staff.headers, "Content-Type": "text/plain"}
    assert problem(client.post("/api/products/", content=product, headers=headers), 415)["type"] == UNSUPPORTED
    # the bulk upload reads JSON, CSV and forms; a JSON array labelled text/plain is not read either
    rows = json.dumps([{"name": "Lamp", "price": "1.00", "sku": "L-1"}]).encode()
    assert problem(client.post("/api/products/bulk_upload/", content=rows, headers=headers), 415)["type"] == UNSUPPORTED
    # a JSON operation refuses the type before reading it: control characters in it are not the question
    assert problem(client.post("/api/products/", content=b"a\x00b", headers=headers), 415)["type"] == UNSUPPORTED
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 0


def test_an_oauth_client_registered_with_a_form(client: TestClient[Litestar], staff: Caller) -> None:
    fields = {
        "name": "Shop mobile app",
        "public": True,
        "redirect_uris": ["https://app.example/callback", "http://127.0.0.1:8765/callback"],
        "scopes": ["openid", "read"],
    }
    created = multipart(client, "POST", "/api/oauth/clients/", fields, **staff.headers)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert (answer["public"], answer["redirect_uris"], sorted(answer["scopes"])) == (
        True,
        fields["redirect_uris"],
        ["openid", "read"],
    )
    # a struct that forbids unknown fields refuses them in a form as in JSON
    extra = {"name": "Other", "redirect_uris": "https://app.example/cb", "colour": "blue"}
    as_form = problem(urlencoded(client, "POST", "/api/oauth/clients/", extra, **staff.headers), 400)
    same = {**extra, "redirect_uris": [extra["redirect_uris"]]}  # one value of a list field is a list of one
    as_json = problem(client.post("/api/oauth/clients/", json=same, headers=staff.headers), 400)
    assert as_form["errors"] == as_json["errors"]
    assert len(client.get("/api/oauth/clients/", headers=staff.headers).json()) == 1


def test_the_document_lists_the_three_types_with_one_schema_and_415(client: TestClient[Litestar]) -> None:
    document = client.get("/schema/openapi.json").json()
    json_writes = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            assert {"application/x-www-form-urlencoded", "multipart/form-data"} <= set(content), (method, path)
            assert "415" in operation["responses"], (method, path)
            if "text/csv" not in content:  # the bulk upload documents its own form bodies
                json_writes += 1
                schemas = {json.dumps(media["schema"], sort_keys=True) for media in content.values()}
                assert len(schemas) == 1, (method, path)
    # register, profile x2, categories x3, products x3, orders x3, OAuth clients; the account routes: password
    # change, reset request and confirmation, e-mail verification, closing the account (DELETE with the password)
    assert json_writes == 18
