"""Every context's ORM models, imported together so the shared metadata is complete (for Alembic), and the
app's own table: the row readiness writes to prove the database takes writes."""

from advanced_alchemy.base import metadata_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Column, Integer, Table

from shop_catalog.models import Category, Product, product_category
from shop_identity.models import AccessToken, AuthorizationCode, Customer, OAuthClient
from shop_kernel import OutboxMessage
from shop_notify.models import NotificationLog
from shop_ordering.models import Order, OrderItem

__all__ = (
    "WRITE_PROBE",
    "AccessToken",
    "AuthorizationCode",
    "Category",
    "Customer",
    "NotificationLog",
    "OAuthClient",
    "Order",
    "OrderItem",
    "OutboxMessage",
    "Product",
    "product_category",
)

WRITE_PROBE = Table(
    "app_write_probe",
    metadata_registry.get(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("checked_at", DateTimeUTC(timezone=True), nullable=False),
)
"""One row per process that answers readiness (keyed by a hash of host and pid), updated at each probe."""
