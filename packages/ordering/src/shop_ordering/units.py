"""Ordering's writes after an order is placed: cancelling and advancing it, as synchronous Core units of work run
by `shop_kernel.run_unit_of_work` (SQLite's writer thread, or `run_sync` on PostgreSQL); and what every unit of
ordering shares (the tables, who sees which order, the customer's contact from identity). Placing is
`shop_ordering.placing`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, cast

from litestar.exceptions import NotFoundException
from sqlalchemy import Table, bindparam, select, update

from shop_catalog import release_stock
from shop_identity import contact_of
from shop_kernel import ConflictError, Principal, add_to_outbox, to_money
from shop_ordering.events import ORDER_CANCELLED, CustomerContact, OrderCancelled, OrderLine
from shop_ordering.models import Order, OrderItem
from shop_ordering.rendering import LineFacts, OrderFacts, order_read
from shop_ordering.schemas import OrderRead, OrderStatus

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ("CANCELLABLE", "ITEM", "ORDER", "advance_in", "cancel_in", "contact_of_customer", "visible_to")

ORDER = cast("Table", Order.__table__)
ITEM = cast("Table", OrderItem.__table__)

NEXT_STATUS = {
    OrderStatus.PENDING: OrderStatus.CONFIRMED,
    OrderStatus.CONFIRMED: OrderStatus.PROCESSING,
    OrderStatus.PROCESSING: OrderStatus.SHIPPED,
    OrderStatus.SHIPPED: OrderStatus.DELIVERED,
}
PREVIOUS_STATUS = {after: before for before, after in NEXT_STATUS.items()}
CANCELLABLE = (OrderStatus.PENDING, OrderStatus.CONFIRMED)


def _now() -> datetime:
    return datetime.now(UTC)


def visible_to(principal: Principal) -> list[Any]:
    """The orders `principal` may see: a customer's own, or (staff) everybody's."""
    return [] if principal.is_staff else [ORDER.c.customer_id == principal.require_user_id()]


def contact_of_customer(connection: Connection, customer_id: int) -> CustomerContact:
    contact = contact_of(connection, customer_id)
    if contact is None:  # pragma: no cover - the token's owner was deleted mid-request
        raise NotFoundException(detail="No such customer.")
    return CustomerContact(*contact)


_CANCELLED_LINES = (
    select(ITEM.c.id, ITEM.c.product_id, ITEM.c.product_name, ITEM.c.quantity, ITEM.c.unit_price, ITEM.c.subtotal)
    .where(ITEM.c.order_id == bindparam("order_id"))
    .order_by(ITEM.c.id)
)


def cancel_in(connection: Connection, order_id: int, principal: Principal) -> tuple[OrderRead, OrderCancelled]:
    now = _now()
    cancelled = connection.execute(
        update(ORDER)
        .where(ORDER.c.id == order_id, ORDER.c.status.in_([s.value for s in CANCELLABLE]), *visible_to(principal))
        .values(status=OrderStatus.CANCELLED.value, updated_at=now)
        .returning(ORDER.c.order_number, ORDER.c.customer_id, ORDER.c.total_amount, ORDER.c.notes, ORDER.c.created_at)
    ).first()
    if cancelled is None:
        _refuse(connection, order_id, principal, "cancelled", "only pending or confirmed orders can be cancelled")
    lines = [LineFacts(*row) for row in connection.execute(_CANCELLED_LINES, {"order_id": order_id})]
    order_lines = [
        OrderLine(product_id=line.product_id, name=line.product_name, quantity=line.quantity,
                  unit_price=to_money(line.unit_price), subtotal=to_money(line.subtotal))
        for line in lines
    ]  # fmt: skip
    products_now = release_stock(connection, {line.product_id: line.quantity for line in order_lines})
    customer = contact_of_customer(connection, cancelled.customer_id)
    event = OrderCancelled(
        order_id=order_id,
        order_number=cancelled.order_number,
        customer=customer,
        items=order_lines,
        total_amount=to_money(cancelled.total_amount),
        cancelled_at=now,
        cancelled_by_staff=principal.is_staff and principal.user_id != cancelled.customer_id,
    )
    add_to_outbox(connection, ORDER_CANCELLED, f"{ORDER_CANCELLED}:{order_id}", event)
    facts = OrderFacts(order_id, cancelled.order_number, OrderStatus.CANCELLED.value, cancelled.total_amount,
                       cancelled.notes, cancelled.created_at, now)  # fmt: skip
    read = order_read(facts, customer.username, lines, products_now)
    return read, event


def advance_in(connection: Connection, order_id: int, principal: Principal, status: OrderStatus) -> None:
    previous = PREVIOUS_STATUS.get(status)
    moved = None
    if previous is not None:
        moved = connection.execute(
            update(ORDER)
            .where(ORDER.c.id == order_id, ORDER.c.status == previous.value)
            .values(status=status.value, updated_at=_now())
            .returning(ORDER.c.id)
        ).first()
    if moved is None:
        _refuse(connection, order_id, principal, status.value, "orders move pending → confirmed → processing → "
                "shipped → delivered, one step at a time")  # fmt: skip


def _refuse(connection: Connection, order_id: int, principal: Principal, target: str, rule: str) -> NoReturn:
    """404 for an order the caller cannot see, else 409 naming its current status (the unit then rolls back)."""
    current = connection.execute(
        select(ORDER.c.status).where(ORDER.c.id == order_id, *visible_to(principal))
    ).scalar_one_or_none()
    if current is None:
        raise NotFoundException(detail=f"No order with id {order_id}.")
    raise ConflictError(
        f"The order is {current} and cannot be {target}: {rule}.", problem_type="/problems/order-status"
    )
