"""A sibling service that takes orders. Ordering reserves stock in the catalog's tables and reads the
buyer's contact from identity's, so it installs those packages too (its declared dependencies); it does
not need to mount their plugins.

    pip install shop-ordering aiosqlite uvicorn       # + shop-kernel, shop-catalog, shop-identity
    uvicorn ordering_service:app

`python ordering_service.py --check` runs a smoke test against the app in-process.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar

from shop_catalog import ProductService, ProductWrite
from shop_identity import CustomerService, RegisterCustomer
from shop_kernel import BearerTokenMiddleware, Principal, Unit
from shop_ordering import OrderingPlugin, OrderingSettings

alchemy = SQLAlchemyAsyncConfig(
    connection_string=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///ordering.sqlite3"), create_all=True
)


async def resolve(token: str) -> Principal | None:
    """Stand-in for your token check: here every token belongs to customer 1."""
    return Principal(user_id=1, username="buyer", scopes=frozenset({"read", "write"})) if token else None


app = Litestar(
    plugins=[SQLAlchemyPlugin(alchemy), OrderingPlugin(OrderingSettings(max_quantity_per_line=10))],
    middleware=[BearerTokenMiddleware(resolve)],
)


async def seed() -> int:
    async with alchemy.create_session_maker()() as session:
        await CustomerService(Unit(session)).register(
            RegisterCustomer(
                username="buyer",
                email="buyer@example.com",
                password="lamp-oil-2024",  # noqa: S106 - an example account
                password_confirm="lamp-oil-2024",  # noqa: S106
            )
        )
        product = await ProductService(Unit(session)).create(
            ProductWrite(name="Lamp", price=Decimal("12.50"), sku="L-1", stock_quantity=3)
        )
        return product.id


def check() -> dict[str, object]:
    from litestar.testing import TestClient

    buyer = {"Authorization": "Bearer any"}
    with TestClient(app) as client:
        product_id = client.blocking_portal.call(seed)
        body = {"items": [{"product_id": product_id, "quantity": 2}]}
        order = client.post("/api/orders/", json=body, headers=buyer)
        too_many = client.post("/api/orders/", json=body, headers=buyer)
        return {
            "placed": order.status_code,
            "total_amount": order.json()["total_amount"],
            "out_of_stock": too_many.status_code,
            "listed": len(client.get("/api/orders/", headers=buyer).json()["results"]),
        }


if __name__ == "__main__" and "--check" in sys.argv:
    sys.stdout.write(json.dumps(check()) + "\n")
