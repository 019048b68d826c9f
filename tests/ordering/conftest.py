"""Ordering test helpers: a shop with products in stock and customers who buy them."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.models import Product
from shop_ordering.models import Order
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog


class Shop:
    def __init__(self, client: TestClient[Litestar], api: Api, catalog: Catalog) -> None:
        self.client = client
        self.api = api
        self.catalog = catalog

    def product(self, stock: int = 10, price: str = "10.00", **fields: Any) -> dict[str, Any]:
        return self.catalog.product(stock_quantity=stock, price=price, **fields)

    def order(self, buyer: Caller, *lines: tuple[dict[str, Any], int], **body: Any) -> Any:
        items = [{"product_id": product["id"], "quantity": quantity} for product, quantity in lines]
        return self.client.post("/api/orders/", json={"items": items, **body}, headers=buyer.headers)

    def stock(self, product: dict[str, Any]) -> int:
        return int(self.api.run(lambda s: s.scalar(select(Product.stock_quantity).where(Product.id == product["id"]))))

    def order_count(self) -> int:
        async def count(session: AsyncSession) -> int:
            return int(await session.scalar(select(func.count()).select_from(Order)) or 0)

        return self.api.run(count)


@pytest.fixture
def shop(client: TestClient[Litestar], api: Api, catalog: Catalog) -> Shop:
    return Shop(client, api, catalog)


@pytest.fixture
def buyer(api: Api) -> Caller:
    return api.customer(first_name="Amina", phone_number="0712345678")
