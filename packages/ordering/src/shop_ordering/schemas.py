"""Wire shapes of ordering (msgspec)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import msgspec

from shop_kernel import MAX_ROW_ID

__all__ = (
    "OrderItemRead",
    "OrderLineIn",
    "OrderProduct",
    "OrderRead",
    "OrderStatus",
    "OrderStatusChange",
    "PlaceOrder",
)


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OrderLineIn(msgspec.Struct):
    product_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ROW_ID, examples=[1])]
    quantity: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            examples=[2],
            description=(
                "At least 1; at most the configured units of one product per order (`maximum`), counting every "
                "line of that product."
            ),
        ),
    ]


class PlaceOrder(msgspec.Struct):
    """`POST /api/orders/`. Lines naming the same product are merged into one."""

    items: Annotated[list[OrderLineIn], msgspec.Meta(min_length=1, max_length=100)]
    notes: Annotated[str, msgspec.Meta(max_length=2000, examples=["Please deliver carefully"])] = ""


class OrderStatusChange(msgspec.Struct):
    """Staff only: move an order one step along pending → confirmed → processing → shipped → delivered."""

    status: OrderStatus


class OrderProduct(msgspec.Struct):
    id: int
    name: str
    price: Decimal


class OrderItemRead(msgspec.Struct):
    id: int
    product: OrderProduct
    quantity: int
    unit_price: Decimal
    subtotal: Decimal


class OrderRead(msgspec.Struct):
    id: int
    order_number: Annotated[str, msgspec.Meta(examples=["ORD-7KQ2M9XA"])]
    customer: Annotated[str, msgspec.Meta(description="The customer's username.")]
    status: OrderStatus
    total_amount: Decimal
    notes: str
    items: list[OrderItemRead]
    created_at: datetime
    updated_at: datetime
