"""A sibling service that serves only the catalog: categories, products, bulk upload, average prices.

    pip install shop-catalog aiosqlite uvicorn        # shop-kernel comes with it
    CATALOG_ADMIN_TOKEN=... uvicorn catalog_service:app

Reads are public; writes need `Authorization: Bearer $CATALOG_ADMIN_TOKEN` (this service's own token
check: any resolver that returns a `shop_kernel.Principal` will do, e.g. one that asks your identity
provider). `python catalog_service.py --check` runs a smoke test against the app in-process.
"""

from __future__ import annotations

import json
import os
import secrets
import sys

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar

from shop_catalog import CatalogPlugin, CatalogSettings
from shop_kernel import BearerTokenMiddleware, Principal

ADMIN_TOKEN = os.environ.get("CATALOG_ADMIN_TOKEN", "change-me")
ADMIN = Principal(user_id=0, username="catalog-admin", scopes=frozenset({"read", "write"}), is_staff=True)


async def resolve(token: str) -> Principal | None:
    return ADMIN if secrets.compare_digest(token, ADMIN_TOKEN) else None


alchemy = SQLAlchemyAsyncConfig(
    connection_string=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///catalog.sqlite3"),
    create_all=True,  # a real service would run migrations of its own
)
app = Litestar(
    plugins=[SQLAlchemyPlugin(alchemy), CatalogPlugin(CatalogSettings(cache_ttl_seconds=2))],
    middleware=[BearerTokenMiddleware(resolve)],
)


def check() -> dict[str, object]:
    from litestar.testing import TestClient

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(app) as client:
        books = client.post("/api/products/categories/", json={"name": "Books"}, headers=admin).json()
        client.post(
            "/api/products/",
            json={"name": "SICP", "price": "45.00", "sku": "BK-1", "stock_quantity": 3, "categories": [books["id"]]},
            headers=admin,
        )
        return {
            "anonymous_write": client.post("/api/products/categories/", json={"name": "X"}).status_code,
            "products": [p["sku"] for p in client.get("/api/products/").json()["results"]],
            "average_price": client.get(f"/api/products/categories/{books['id']}/average-price/").json(),
        }


if __name__ == "__main__" and "--check" in sys.argv:
    sys.stdout.write(json.dumps(check()) + "\n")
