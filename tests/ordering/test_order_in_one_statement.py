"""On PostgreSQL an order is written by one statement outside a transaction (decision 160), after unlocked reads of
the products: what happens when the products change between those reads and that statement. SQLite holds its one
write lock for the whole unit, so nothing can change in between there."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from shop_kernel import OutboxMessage
from shop_ordering.models import OrderItem
from tests.ordering.conftest import Shop
from tests.support.api import Api, Caller
from tests.support.statements import counted

# SQLite writes an order in one transaction that holds the write lock from its first statement
pytestmark = pytest.mark.backend("postgresql")


@contextmanager
def meanwhile(client: TestClient[Litestar], settings: Settings, sql: str, *args: Any) -> Iterator[list[str]]:
    """Run `sql` (with `args`) on another connection, committed, the first time the app sends the statement that
    writes an order: after the products were read, before their stock is taken."""
    engine = client.app.state.alchemy.get_engine().sync_engine
    dsn = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    seen: list[str] = []

    async def change() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql, *args)
        finally:
            await connection.close()

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("WITH locked AS") and not seen:
            seen.append(statement)
            with ThreadPoolExecutor(1) as other:  # its own event loop; the app's is blocked right here
                other.submit(asyncio.run, change()).result()

    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)


def _written(api: Api) -> tuple[int, int]:
    async def count(session: AsyncSession) -> tuple[int, int]:
        lines = await session.scalar(select(func.count()).select_from(OrderItem))
        events = await session.scalar(select(func.count()).select_from(OutboxMessage))
        return int(lines or 0), int(events or 0)

    return api.run(count)


def test_one_statement_writes_the_order(shop: Shop, buyer: Caller, api: Api) -> None:
    a, b = shop.product(stock=5), shop.product(stock=5)
    for lines in ([(a, 1)], [(b, 2), (a, 1)]):
        with counted() as statements:
            assert shop.order(buyer, *lines).status_code == 201
        writes = [s.lstrip() for s in statements if s.lstrip().startswith(("INSERT", "UPDATE", "WITH", "COMMIT"))]
        # the products locked in id order, their stock taken, the order, its lines and its event: one statement
        assert len(writes) == 1, writes
        assert writes[0].startswith("WITH locked AS")
        for part in ("FOR NO KEY UPDATE", "UPDATE catalog_product", "INSERT INTO ordering_order ",
                     "INSERT INTO ordering_order_item", "INSERT INTO kernel_outbox"):  # fmt: skip
            assert part in writes[0]
    assert (shop.stock(a), shop.stock(b)) == (3, 3)
    assert _written(api) == (3, 2)

    async def keys(session: AsyncSession) -> list[tuple[str, int]]:
        return [(m.key, m.payload["order_id"]) for m in (await session.scalars(select(OutboxMessage))).all()]

    # the event's key and payload carry the order's id, which PostgreSQL chose inside the statement
    assert all(key == f"order.placed:{order_id}" for key, order_id in api.run(keys))


def test_stock_sold_after_it_was_read_leaves_nothing(
    client: TestClient[Litestar], settings: Settings, shop: Shop, buyer: Caller, api: Api
) -> None:
    mug = shop.product(name="Mug", stock=3)
    with meanwhile(client, settings, "UPDATE catalog_product SET stock_quantity = 1 WHERE id = $1", mug["id"]) as seen:
        response = shop.order(buyer, (mug, 2))
    assert seen  # the products were read before the stock ran short
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "/problems/insufficient-stock"
    assert problem["errors"] == {"items": [f"Product {mug['id']}: requested 2, available 1."]}
    assert shop.stock(mug) == 1
    assert shop.order_count() == 0
    assert _written(api) == (0, 0)  # no lines, no outbox event


def test_a_price_changed_before_the_stock_was_taken_is_the_price_paid(
    client: TestClient[Litestar], settings: Settings, shop: Shop, buyer: Caller, api: Api
) -> None:
    lamp = shop.product(name="Lamp", price="10.00", stock=5)
    other = shop.product(name="Bulb", price="2.00", stock=5)
    raise_price = "UPDATE catalog_product SET price = 12.50, name = 'Lamp XL' WHERE id = $1"
    with meanwhile(client, settings, raise_price, lamp["id"]) as seen:
        response = shop.order(buyer, (lamp, 2), (other, 1))
    assert seen
    assert response.status_code == 201
    order = response.json()
    assert [(i["product"]["id"], i["unit_price"], i["subtotal"]) for i in order["items"]] == [
        (lamp["id"], "12.50", "25.00"),
        (other["id"], "2.00", "2.00"),
    ]
    assert order["total_amount"] == "27.00"
    assert shop.order_count() == 1
    assert (shop.stock(lamp), shop.stock(other)) == (3, 4)  # taken once, by the second attempt

    async def event_payload(session: AsyncSession) -> Any:
        return (await session.scalars(select(OutboxMessage))).one().payload

    payload = api.run(event_payload)
    assert payload["total_amount"] == "27.00"
    assert payload["items"][0] == {
        "product_id": lamp["id"], "name": "Lamp XL", "quantity": 2, "unit_price": "12.50", "subtotal": "25.00"
    }  # fmt: skip
    assert _written(api) == (2, 1)
