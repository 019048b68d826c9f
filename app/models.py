"""Every context's ORM models, imported together so the shared metadata is complete (for Alembic)."""

from shop_catalog import Category, Product, product_category
from shop_identity import AccessToken, AuthorizationCode, Customer, OAuthClient
from shop_kernel import OutboxMessage
from shop_notify import NotificationLog
from shop_ordering import Order, OrderItem

__all__ = (
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
