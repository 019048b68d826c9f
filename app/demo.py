"""Demo data for development: a staff user with the README's test token, a customer with its own token."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from app.auth import DEMO_CUSTOMER_TOKEN, DEMO_STAFF_TOKEN
from app.settings import SettingsError
from shop_identity import Customer, CustomerService, RegisterCustomer, TokenService

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from app.settings import Settings

__all__ = ("DEMO_ADMIN_PASSWORD", "DEMO_CUSTOMER_PASSWORD", "seed_demo")

DEMO_ADMIN_PASSWORD = "demo-staff-7Hq2"  # noqa: S105 - development only
DEMO_CUSTOMER_PASSWORD = "demo-cust-9Kp4"  # noqa: S105
DEMO_TOKEN_TTL = timedelta(days=3650)


async def seed_demo(settings: Settings, session_maker: Callable[[], AsyncSession]) -> bool:
    """Create the demo accounts when the database has no customer yet; True when something was created."""
    if settings.is_production:
        raise SettingsError("demo data is never created in production")
    async with session_maker() as session:
        if await session.scalar(select(Customer.id).limit(1)) is not None:
            return False
        customers = CustomerService(session)
        tokens = TokenService(session)
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
    return True
