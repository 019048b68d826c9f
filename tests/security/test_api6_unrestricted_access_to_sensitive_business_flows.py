"""OWASP API6:2023 Unrestricted access to sensitive business flows: placing and cancelling orders (each sends
an SMS, and each holds stock) is limited per customer, whatever address the requests come from.

Retried orders never place twice (Idempotency-Key: tests/ordering/test_idempotency.py); registration and
sign-in are limited per address (tests/app/test_rate_limits.py, tests/identity/test_oauth_browser.py).
"""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from tests.support.api import Api
from tests.support.catalog import Catalog


def test_orders_which_send_sms_have_a_per_customer_limit(
    limited: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    product = catalog.product(stock_quantity=100, price="1.00")
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    buyer, other = api.customer(), api.customer()
    assert [limited.post("/api/orders/", json=body, headers=buyer.headers).status_code for _ in range(3)] == [201] * 3
    refused = limited.post("/api/orders/", json=body, headers=buyer.headers)
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Limit"] == "3"
    assert limited.post("/api/orders/", json=body, headers=other.headers).status_code == 201
    # reading orders is not limited by the order tier
    assert limited.get("/api/orders/", headers=buyer.headers).status_code == 200


def test_cancelling_spends_the_same_allowance_as_ordering(
    limited: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    """Order-and-cancel loops (stock held, an SMS each time) are not a way around the order limit."""
    product = catalog.product(stock_quantity=100, price="1.00")
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    buyer = api.customer()
    first = limited.post("/api/orders/", json=body, headers=buyer.headers)
    assert first.status_code == 201
    assert limited.post(f"/api/orders/{first.json()['id']}/cancel/", headers=buyer.headers).status_code == 200
    assert limited.post("/api/orders/", json=body, headers=buyer.headers).status_code == 201
    refused = limited.post("/api/orders/", json=body, headers=buyer.headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert limited.get(f"/api/products/{product['id']}/").json()["stock_quantity"] == 99


def test_the_limit_follows_the_customer_not_the_address(
    limited: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    product = catalog.product(stock_quantity=100, price="1.00")
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    buyer = api.customer()
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        headers = {**buyer.headers, "X-Forwarded-For": address, "X-Real-IP": address}
        assert limited.post("/api/orders/", json=body, headers=headers).status_code == 201
    headers = {**buyer.headers, "X-Forwarded-For": "198.51.100.9"}
    assert limited.post("/api/orders/", json=body, headers=headers).status_code == 429


def test_one_order_cannot_take_more_than_the_per_line_limit(
    client: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    """Hoarding: one order cannot hold a shop's whole stock of a product (the limit is configurable)."""
    product = catalog.product(stock_quantity=1_000_000, price="1.00")
    buyer = api.customer()
    hoard = {"items": [{"product_id": product["id"], "quantity": 1001}]}
    refused = client.post("/api/orders/", json=hoard, headers=buyer.headers)
    assert refused.status_code == 400
    assert "items" in refused.json()["errors"]
    split = {"items": [{"product_id": product["id"], "quantity": 600}, {"product_id": product["id"], "quantity": 600}]}
    assert client.post("/api/orders/", json=split, headers=buyer.headers).status_code == 400  # per product, summed
    assert client.get(f"/api/products/{product['id']}/").json()["stock_quantity"] == 1_000_000
