"""Event contracts published by ordering (the only module of ordering that notify may import).

They carry everything a notification needs, so consumers never query ordering's tables.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

__all__ = ("ORDER_CANCELLED", "ORDER_PLACED", "CustomerContact", "OrderCancelled", "OrderLine", "OrderPlaced")

ORDER_PLACED = "order.placed"
ORDER_CANCELLED = "order.cancelled"


class CustomerContact(msgspec.Struct, frozen=True):
    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    phone_number: str | None


class OrderLine(msgspec.Struct, frozen=True):
    product_id: int
    name: str
    quantity: int
    unit_price: Decimal
    subtotal: Decimal


class OrderPlaced(msgspec.Struct, frozen=True):
    order_id: int
    order_number: str
    customer: CustomerContact
    items: list[OrderLine]
    total_amount: Decimal
    notes: str
    placed_at: datetime


class OrderCancelled(msgspec.Struct, frozen=True):
    order_id: int
    order_number: str
    customer: CustomerContact
    items: list[OrderLine]
    total_amount: Decimal
    cancelled_at: datetime
    cancelled_by_staff: bool
