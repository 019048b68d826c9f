"""Demo data for development: staff and customer accounts with tokens, a category tree and products."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.auth import DEMO_CUSTOMER_TOKEN, DEMO_STAFF_TOKEN
from app.docs_ui import DOCS_CLIENT_ID, DOCS_REDIRECT_PATH
from app.settings import SettingsError
from shop_catalog import BulkUpload, CategoryService, CategoryWrite
from shop_identity import ClientRegistration, CustomerService, OAuthClientService, RegisterCustomer, TokenService
from shop_identity.models import Customer, OAuthClient
from shop_kernel import Unit

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from app.settings import Settings

__all__ = ("DEMO_ADMIN_PASSWORD", "DEMO_CUSTOMER_PASSWORD", "seed_demo")

DEMO_ADMIN_PASSWORD = "demo-staff-7Hq2"  # noqa: S105 - development only
DEMO_CUSTOMER_PASSWORD = "demo-cust-9Kp4"  # noqa: S105
DEMO_TOKEN_TTL = timedelta(days=3650)
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"
"""Of the public demo OAuth client (find its client_id with GET /api/oauth/clients/ as staff)."""
DOCS_REDIRECT_URIS = [f"http://{host}{DOCS_REDIRECT_PATH}" for host in ("127.0.0.1", "localhost", "[::1]")]
"""Of the docs page's client: loopback URIs match on any port (RFC 8252 7.3), so `PORT=9000 make run` and
the test servers' free ports work too."""


async def seed_demo(settings: Settings, session_maker: Callable[[], AsyncSession]) -> bool:
    """Create the demo accounts when the database has no customer yet; True when something was created."""
    if settings.is_production:
        raise SettingsError("demo data is never created in production")
    async with session_maker() as session:
        unit = Unit(session)
        await _ensure_docs_client(unit)
        if await session.scalar(select(Customer.id).limit(1)) is not None:
            return False
        customers = CustomerService(unit)
        tokens = TokenService(unit)
        admin = await customers.register(
            RegisterCustomer(
                username="admin",
                email="admin@shop.example",
                password=DEMO_ADMIN_PASSWORD,
                password_confirm=DEMO_ADMIN_PASSWORD,
                first_name="Shop",
                last_name="Admin",
            ),
            is_staff=True,
        )
        await tokens.issue(
            customer_id=admin.id, scopes=("read", "write", "openid"), ttl=DEMO_TOKEN_TTL, raw_token=DEMO_STAFF_TOKEN
        )
        customer = await customers.register(
            RegisterCustomer(
                username="john_doe",
                email="john@example.com",
                password=DEMO_CUSTOMER_PASSWORD,
                password_confirm=DEMO_CUSTOMER_PASSWORD,
                first_name="John",
                last_name="Doe",
                phone_number="+254712345678",
            )
        )
        await tokens.issue(
            customer_id=customer.id, scopes=("read", "write"), ttl=DEMO_TOKEN_TTL, raw_token=DEMO_CUSTOMER_TOKEN
        )
        await OAuthClientService(unit).create(
            ClientRegistration(name="Shop demo app", public=True, redirect_uris=[DEMO_REDIRECT_URI])
        )
        await _seed_catalog(unit)
    return True


async def _ensure_docs_client(unit: Unit) -> None:
    """The Authorize button of `/schema` signs in as this public client; added to older databases too."""
    if await unit.session.scalar(select(OAuthClient.id).where(OAuthClient.client_id == DOCS_CLIENT_ID)) is None:
        await OAuthClientService(unit).create(
            ClientRegistration(
                name="Shop API docs (development)",
                public=True,
                redirect_uris=DOCS_REDIRECT_URIS,
                scopes=["openid", "profile", "email", "read", "write"],
            ),
            client_id=DOCS_CLIENT_ID,
        )


DEMO_TREE: dict[str, Any] = {
    "Electronics": {"Smartphones": {"Android": {}, "iPhone": {}}, "Laptops": {}, "Audio": {"Headphones": {}}},
    "Home & Kitchen": {"Appliances": {"Coffee Machines": {}}, "Cookware": {}},
    "Books": {},
}
DEMO_PRODUCTS = [
    ("iPhone 15 Pro", "Latest iPhone with titanium design", "999.99", "IP15P-001", "iPhone", 50),
    ("iPhone 15", "A16 Bionic, 6.1-inch display", "799.00", "IP15-001", "iPhone", 40),
    ("Pixel 8", "Google Tensor G3", "699.00", "PX8-001", "Android", 30),
    ("Galaxy S24", "Samsung flagship", "849.50", "GS24-001", "Android", 25),
    ("ThinkPad X1 Carbon", "14-inch business ultrabook", "1649.00", "TPX1-G12", "Laptops", 10),
    ("MacBook Air 13", "M3, 8-core GPU", "1099.00", "MBA13-M3", "Laptops", 12),
    ("Noise-cancelling Headphones", "Over-ear, 30 h battery", "349.99", "NC-HP-700", "Headphones", 60),
    ("Espresso Machine", "15-bar pump, milk frother", "229.00", "ESP-15B", "Coffee Machines", 8),
    ("Cast Iron Skillet", "26 cm, pre-seasoned", "39.90", "CI-SK-26", "Cookware", 100),
    ("The Pragmatic Programmer", "20th anniversary edition", "42.00", "BK-PRAG-20", "Books", 0),
]


async def _seed_catalog(unit: Unit) -> None:
    """A three-level category tree with a few products in it."""
    categories = CategoryService(unit)
    ids: dict[str, int] = {}

    async def plant(tree: dict[str, Any], parent: int | None) -> None:
        for name, subtree in tree.items():
            ids[name] = (await categories.create(CategoryWrite(name=name, parent=parent))).id
            await plant(subtree, ids[name])

    await plant(DEMO_TREE, None)
    rows = [
        {
            "name": name,
            "description": description,
            "price": price,
            "sku": sku,
            "categories": [ids[category]],
            "stock_quantity": stock,
        }
        for name, description, price, sku, category, stock in DEMO_PRODUCTS
    ]
    await BulkUpload(unit).run(rows, upsert=False)
