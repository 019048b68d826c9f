"""Prometheus metrics of the ordering context (exposed by whatever serves `/metrics` in the process)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ("ORDERS_PLACED", "STOCK_OUT_REJECTIONS")

ORDERS_PLACED = Counter("shop_orders_placed", "Orders placed (idempotent replays not counted).")
STOCK_OUT_REJECTIONS = Counter(
    "shop_orders_rejected_stock_out", "Orders refused (400) because a product did not have enough stock."
)
