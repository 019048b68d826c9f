"""shop_ordering: the ordering bounded context. Public API for other contexts and host apps."""

from shop_ordering.plugin import OrderingPlugin, OrderingSettings

__all__ = ("OrderingPlugin", "OrderingSettings")
