"""POST /api/orders/: placing orders, all or nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_kernel import OutboxMessage
from shop_ordering.services import ORDER_NUMBER_ALPHABET
from tests.ordering.conftest import Shop
from tests.support.api import Api, Caller

URL = "/api/orders/"


def test_place_the_readme_example(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    iphone = shop.product(name="iPhone 15 Pro", price="999.99", stock=50)
    case = shop.product(name="Case", price="299.99", stock=5)
    response = shop.order(buyer, (iphone, 2), (case, 1), notes="Please deliver carefully")

    assert response.status_code == 201
    order = response.json()
    assert response.headers["location"] == f"/api/orders/{order['id']}/"
    assert order["order_number"].startswith("ORD-")
    assert len(order["order_number"]) == 12
    assert set(order["order_number"][4:]) <= set(ORDER_NUMBER_ALPHABET)
    assert order["customer"] == buyer.username
    assert order["status"] == "pending"
    assert order["total_amount"] == "2299.97"
    assert order["notes"] == "Please deliver carefully"
    first = order["items"][0]
    assert first["product"] == {"id": iphone["id"], "name": "iPhone 15 Pro", "price": "999.99"}
    assert (first["quantity"], first["unit_price"], first["subtotal"]) == (2, "999.99", "1999.98")
    assert {"id", "created_at", "updated_at"} <= set(order)
    assert client.get(response.headers["location"], headers=buyer.headers).json() == order
    assert (shop.stock(iphone), shop.stock(case)) == (48, 4)


def test_total_is_the_exact_decimal_sum(shop: Shop, buyer: Caller) -> None:
    cheap = shop.product(price="0.10", stock=100)
    odd = shop.product(price="0.20", stock=100)
    order = shop.order(buyer, (cheap, 3), (odd, 7)).json()
    assert Decimal(order["total_amount"]) == Decimal("1.70")


def test_lines_for_the_same_product_are_merged(shop: Shop, buyer: Caller) -> None:
    mug = shop.product(stock=5)
    order = shop.order(buyer, (mug, 2), (mug, 3)).json()
    assert [(item["product"]["id"], item["quantity"]) for item in order["items"]] == [(mug["id"], 5)]
    assert shop.stock(mug) == 0


def test_insufficient_stock_names_products_and_writes_nothing(shop: Shop, buyer: Caller) -> None:
    plenty = shop.product(name="Plenty", stock=100)
    scarce = shop.product(name="Scarce", stock=2)
    response = shop.order(buyer, (plenty, 5), (scarce, 3))
    assert response.status_code == 400  # as in the original API; the problem type tells it from a field error
    problem = response.json()
    assert problem["type"] == "/problems/insufficient-stock"
    assert f"Scarce (product {scarce['id']}): requested 3, available 2" in problem["detail"]
    assert problem["errors"] == {"items": [f"Product {scarce['id']}: requested 3, available 2."]}
    assert (shop.stock(plenty), shop.stock(scarce)) == (100, 2)
    assert shop.order_count() == 0


@pytest.mark.parametrize("kind", ["unknown", "inactive"])
def test_unknown_or_inactive_products_are_400(shop: Shop, buyer: Caller, kind: str) -> None:
    fine = shop.product(stock=3)
    bad = {"id": 987654} if kind == "unknown" else shop.product(is_active=False)
    response = shop.order(buyer, (fine, 1), (bad, 1))
    assert response.status_code == 400
    assert response.json()["errors"] == {"items": [f"Unknown or unavailable product id(s): {bad['id']}."]}
    assert shop.stock(fine) == 3
    assert shop.order_count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({}, "items"),
        ({"items": [{"product_id": 1, "quantity": 0}]}, "items"),
        ({"items": [{"product_id": 1, "quantity": -2}]}, "items"),
        ({"items": [{"product_id": 1, "quantity": 1.5}]}, "items"),
        ({"items": [{"product_id": 1, "quantity": 1}] * 101}, "items"),
        ({"items": [{"product_id": 1, "quantity": 1}], "notes": "x" * 2001}, "notes"),
    ],
)
def test_invalid_bodies_are_400(
    client: TestClient[Litestar], shop: Shop, buyer: Caller, body: object, field: str
) -> None:
    response = client.post(URL, json=body, headers=buyer.headers)
    assert response.status_code == 400
    assert any(key.startswith(field) for key in response.json()["errors"])  # e.g. "items[0].quantity"
    assert shop.order_count() == 0


def test_quantity_above_the_configured_maximum(shop: Shop, buyer: Caller) -> None:
    bulk = shop.product(stock=5000)
    response = shop.order(buyer, (bulk, 600), (bulk, 600))
    assert response.status_code == 400
    assert response.json()["errors"] == {"items": [f"Product {bulk['id']}: at most 1000 units per order."]}


def test_customers_cannot_set_status_totals_numbers_or_prices(
    shop: Shop, buyer: Caller, client: TestClient[Litestar]
) -> None:
    item = shop.product(price="50.00")
    body = {
        "items": [{"product_id": item["id"], "quantity": 1, "unit_price": "0.01"}],
        "status": "delivered",
        "total_amount": "0.01",
        "order_number": "ORD-AAAAAAAA",
        "customer": "someone_else",
    }
    order = client.post(URL, json=body, headers=buyer.headers).json()
    assert (order["status"], order["total_amount"], order["customer"]) == ("pending", "50.00", buyer.username)
    assert order["order_number"] != "ORD-AAAAAAAA"
    assert order["items"][0]["unit_price"] == "50.00"


def test_who_may_order(client: TestClient[Litestar], shop: Shop, api: Api) -> None:
    item = shop.product()
    body = {"items": [{"product_id": item["id"], "quantity": 1}]}
    assert client.post(URL, json=body).status_code == 401
    reader = api.customer(scopes=("read",))
    assert client.post(URL, json=body, headers=reader.headers).status_code == 403
    service = api.issue_token(None, ("read", "write"), client_id="erp")
    assert client.post(URL, json=body, headers={"Authorization": f"Bearer {service}"}).status_code == 403
    assert shop.order_count() == 0


def test_order_placed_event_is_in_the_outbox(shop: Shop, buyer: Caller, api: Api) -> None:
    lamp = shop.product(name="Lamp", price="12.50")
    order = shop.order(buyer, (lamp, 2), notes="Ring twice").json()

    async def messages(session: AsyncSession) -> list[OutboxMessage]:
        return list(await session.scalars(select(OutboxMessage)))

    [message] = api.run(messages)
    assert (message.topic, message.key, message.dispatched_at) == ("order.placed", f"order.placed:{order['id']}", None)
    payload = message.payload
    assert payload["order_number"] == order["order_number"]
    assert payload["customer"]["first_name"] == "Amina"
    assert payload["customer"]["phone_number"] == "+254712345678"
    assert payload["customer"]["email"] == buyer.profile["email"]
    assert payload["items"] == [
        {"product_id": lamp["id"], "name": "Lamp", "quantity": 2, "unit_price": "12.50", "subtotal": "25.00"}
    ]
    assert (payload["total_amount"], payload["notes"]) == ("25.00", "Ring twice")


def test_a_rejected_order_leaves_no_outbox_message(shop: Shop, buyer: Caller, api: Api) -> None:
    scarce = shop.product(stock=0)
    assert shop.order(buyer, (scarce, 1)).status_code == 400
    assert api.run(lambda s: s.scalar(select(OutboxMessage.id))) is None


def test_statements_per_order_do_not_grow_with_lines(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    from tests.support.statements import counted

    products = [shop.product(stock=50) for _ in range(20)]
    client.get("/api/orders/", headers=buyer.headers)  # the token is looked up once, then remembered

    def statements(lines: int) -> int:
        with counted() as executed:
            assert shop.order(buyer, *[(p, 1) for p in products[:lines]]).status_code == 201
        return len(executed)

    one_line = statements(1)
    assert one_line == statements(5) == statements(20)
    # SQLite: contact, stock UPDATE, order, lines, outbox. PostgreSQL: contact, products read unlocked, order,
    # lines, outbox, then the stock UPDATE (its row locks in its WITH clause for several lines)
    assert one_line <= 6
