"""Idempotency-Key on POST /api/orders/: safe retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from shop_ordering.models import Order
from tests.ordering.conftest import Shop
from tests.support.api import Api, Caller

URL = "/api/orders/"


def post(client: TestClient[Litestar], buyer: Caller, product: dict[str, object], quantity: int, key: str) -> object:
    return client.post(
        URL,
        json={"items": [{"product_id": product["id"], "quantity": quantity}]},
        headers={**buyer.headers, "Idempotency-Key": key},
    )


def test_same_key_and_body_returns_the_first_order(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    item = shop.product(stock=5)
    first = post(client, buyer, item, 2, "retry-1")
    again = post(client, buyer, item, 2, "retry-1")
    assert first.status_code == again.status_code == 201  # type: ignore[attr-defined]
    assert again.json() == first.json()  # type: ignore[attr-defined]
    assert again.headers["idempotent-replayed"] == "true"  # type: ignore[attr-defined]
    assert "idempotent-replayed" not in first.headers  # type: ignore[attr-defined]
    assert shop.stock(item) == 3
    assert shop.order_count() == 1


def test_same_key_with_another_body_is_422(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    item = shop.product(stock=5)
    post(client, buyer, item, 1, "k")
    response = post(client, buyer, item, 2, "k")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert response.json()["type"] == "/problems/idempotency-mismatch"  # type: ignore[attr-defined]
    assert shop.stock(item) == 4


def test_keys_belong_to_one_customer(client: TestClient[Litestar], shop: Shop, buyer: Caller, api: Api) -> None:
    item = shop.product(stock=5)
    other = api.customer()
    mine = post(client, buyer, item, 1, "shared").json()  # type: ignore[attr-defined]
    theirs = post(client, other, item, 1, "shared").json()  # type: ignore[attr-defined]
    assert mine["id"] != theirs["id"]
    assert shop.stock(item) == 3


def test_a_key_older_than_a_day_places_a_new_order(
    client: TestClient[Litestar], shop: Shop, buyer: Caller, api: Api
) -> None:
    item = shop.product(stock=5)
    first = post(client, buyer, item, 1, "old").json()  # type: ignore[attr-defined]

    async def age(session: AsyncSession) -> None:
        await session.execute(
            update(Order).where(Order.id == first["id"]).values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
        await session.commit()

    api.run(age)
    second = post(client, buyer, item, 1, "old")
    assert second.status_code == 201  # type: ignore[attr-defined]
    assert second.json()["id"] != first["id"]  # type: ignore[attr-defined]
    assert shop.stock(item) == 3


def test_blank_key_is_400(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    assert post(client, buyer, shop.product(), 1, "  ").status_code == 400  # type: ignore[attr-defined]
