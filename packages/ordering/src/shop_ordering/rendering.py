"""The one place an `OrderRead` is built: from a fresh order, a cancelled one, or rows read back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from shop_kernel import to_money
from shop_ordering.schemas import OrderItemRead, OrderProduct, OrderRead, OrderStatus

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from shop_catalog import ReservedProduct

__all__ = ("LineFacts", "OrderFacts", "aware", "order_read")


class OrderFacts(NamedTuple):
    """An order's own columns, as answered."""

    id: int
    order_number: str
    status: str
    total_amount: Decimal
    notes: str
    created_at: datetime
    updated_at: datetime


class LineFacts(NamedTuple):
    """An order line's own columns: the price paid (`unit_price`, `subtotal`)."""

    id: int
    product_id: int
    product_name: str
    quantity: int
    unit_price: Decimal
    subtotal: Decimal


def aware(value: datetime) -> datetime:
    """Core reads of a timestamp column come back naive on SQLite; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def order_read(
    order: OrderFacts, customer: str, lines: Sequence[LineFacts], products: Mapping[int, ReservedProduct]
) -> OrderRead:
    """`customer` is the username; each line shows the price paid and its product as it is now (`products`, from
    the catalog; a line keeps the name it was bought under if the catalog no longer answers for its product)."""
    return OrderRead(
        id=order.id,
        order_number=order.order_number,
        customer=customer,
        status=OrderStatus(order.status),
        total_amount=to_money(order.total_amount),
        notes=order.notes,
        items=[_line_read(line, products.get(line.product_id)) for line in lines],
        created_at=aware(order.created_at),
        updated_at=aware(order.updated_at),
    )


def _line_read(line: LineFacts, product: ReservedProduct | None) -> OrderItemRead:
    name, price = (product.name, product.price) if product is not None else (line.product_name, line.unit_price)
    return OrderItemRead(
        id=line.id,
        product=OrderProduct(id=line.product_id, name=name, price=to_money(price)),
        quantity=line.quantity,
        unit_price=to_money(line.unit_price),
        subtotal=to_money(line.subtotal),
    )
