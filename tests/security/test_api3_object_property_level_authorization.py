"""OWASP API3:2023 Broken object property level authorization: callers set only what they may set, and
no answer carries a property they may not see.

Write schemas list the fields a caller may send; anything else (`is_staff`, `status`, `total_amount`,
`unit_price`, `order_number`, ids, timestamps) is ignored. No answer of any GET operation carries a password,
a password hash, a stored token hash or a live token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import RegisterCustomerFactory
from tests.security.conftest import concrete, operations
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog

HASH_SHAPES = re.compile(r"\$argon2|pbkdf2_|\$2[aby]\$|scrypt|^[0-9a-f]{64}$")
SECRET_KEYS = {"password", "password_hash", "hashed_password", "token_hash", "secret_hash", "client_secret", "secret"}


def test_registration_and_profile_cannot_grant_staff(client: TestClient[Litestar], api: Api) -> None:
    payload = RegisterCustomerFactory.build()
    body = {
        "username": payload.username,
        "email": payload.email,
        "password": payload.password,
        "password_confirm": payload.password,
        "is_staff": True,
        "is_superuser": True,
        "id": 1,
        "created_at": "2000-01-01T00:00:00Z",
    }
    created = client.post("/api/auth/register/", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["is_staff"] is False
    assert created.json()["created_at"] > "2020"
    token = api.issue_token(created.json()["id"])
    headers = {"Authorization": f"Bearer {token}"}
    client.patch("/api/auth/profile/", json={"is_staff": True}, headers=headers)
    client.put("/api/auth/profile/", json={"is_staff": True, "email": payload.email}, headers=headers)
    assert client.get("/api/auth/profile/", headers=headers).json()["is_staff"] is False
    # and the staff-only operations agree
    assert client.post("/api/products/categories/", json={"name": "Mine"}, headers=headers).status_code == 403


def test_orders_take_prices_totals_status_and_numbers_from_the_server(
    client: TestClient[Litestar], catalog: Catalog, api: Api
) -> None:
    buyer, other = api.customer(), api.customer()
    product = catalog.product(stock_quantity=10, price="250.00")
    body = {
        "items": [{"product_id": product["id"], "quantity": 2, "unit_price": "0.01", "subtotal": "0.02"}],
        "status": "delivered",
        "total_amount": "0.01",
        "order_number": "ORD-FAKE-1",
        "customer": other.id,
        "customer_id": other.id,
        "id": 1,
    }
    response = client.post("/api/orders/", json=body, headers=buyer.headers)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending"
    assert order["total_amount"] == "500.00"
    assert order["items"][0]["unit_price"] == "250.00"
    assert order["order_number"] != "ORD-FAKE-1"
    assert client.get(f"/api/orders/{order['id']}/", headers=buyer.headers).status_code == 200
    assert client.get("/api/orders/", headers=other.headers).json()["results"] == []
    # a customer's PATCH on their order cannot move its status either (staff only)
    assert (
        client.patch(f"/api/orders/{order['id']}/", json={"status": "delivered"}, headers=buyer.headers).status_code
        == 403
    )


def test_product_writes_ignore_server_owned_fields(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    product = catalog.product(stock_quantity=3)
    changed = client.patch(
        f"/api/products/{product['id']}/",
        json={"id": 999, "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z", "name": "Renamed"},
        headers=staff.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["id"] == product["id"]
    assert changed.json()["created_at"] == product["created_at"]
    assert changed.json()["name"] == "Renamed"


def _walk(value: Any, path: str = "$") -> Iterator[tuple[str, str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, str(key), item
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def test_no_answer_carries_a_password_hash_or_token(
    client: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller
) -> None:
    """Every GET operation of the document, as the customer and as staff, over a shop with a customer, an
    order, a product, a category, a notification and an OAuth client: no secret key, no hash-shaped value,
    and none of the live tokens or passwords appears anywhere in the answer."""
    buyer = api.customer(phone_number="+254712345678")
    # a reset request: the export lists it (metadata only) and its secret is in play
    assert client.post("/api/auth/password/reset/", json={"phone_number": "+254712345678"}).status_code == 202
    category = catalog.category("Phones")
    product = catalog.product(category, stock_quantity=5)
    order = client.post(
        "/api/orders/", json={"items": [{"product_id": product["id"], "quantity": 1}]}, headers=buyer.headers
    ).json()
    created_client = client.post(
        "/api/oauth/clients/",
        json={"name": "Mobile", "grant_types": ["client_credentials"], "scopes": ["read"]},
        headers=staff.headers,
    )
    assert created_client.status_code == 201, created_client.text
    client_secret = created_client.json()["client_secret"]
    secrets_in_play = {buyer.token, staff.token, buyer.password, staff.password, client_secret}
    ids = {
        "product_id": str(product["id"]),
        "category_id": str(category["id"]),
        "order_id": str(order["id"]),
        "client_id": created_client.json()["client_id"],
        "customer_id": str(buyer.id),
    }
    checked = 0
    for method, path, _operation in operations(client):
        if method != "GET" or path.startswith(("/schema", "/oauth/authorize")):
            continue
        for caller in (buyer, staff):
            response = client.get(concrete(path, **ids), headers=caller.headers)
            if "json" not in response.headers.get("content-type", ""):
                continue
            checked += 1
            for secret in secrets_in_play:
                assert secret not in response.text, f"GET {path} as {caller.username} carries a secret"
            for where, key, value in _walk(response.json()):
                assert key.lower() not in SECRET_KEYS, f"GET {path}: {where}.{key}"
                if isinstance(value, str):
                    assert not HASH_SHAPES.search(value), f"GET {path}: {where}.{key} looks like a hash"
    assert checked >= 20
    # the client secret is shown once, at creation, and never again
    listed = client.get("/api/oauth/clients/", headers=staff.headers).json()
    entries = listed["results"] if isinstance(listed, dict) else listed
    assert entries
    assert all("client_secret" not in entry for entry in entries)
