"""shop_ordering: orders, stock reservation and cancellation.

Public API for host apps; other contexts may import only `shop_ordering.events`.
Its ORM models live in `shop_ordering.models`, for host apps' metadata and migrations (decision 161).
"""

from shop_ordering.plugin import OrderingPlugin, OrderingSettings
from shop_ordering.schemas import OrderRead, OrderStatus, PlaceOrder
from shop_ordering.services import OrderService
from shop_ordering.summaries import customer_order_summary, erase_customer_orders, export_customer_orders

__all__ = (
    "OrderRead",
    "OrderService",
    "OrderStatus",
    "OrderingPlugin",
    "OrderingSettings",
    "PlaceOrder",
    "customer_order_summary",
    "erase_customer_orders",
    "export_customer_orders",
)
