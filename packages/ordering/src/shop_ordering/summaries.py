"""What ordering tells other contexts about a customer's orders: a summary for identity's staff view, and the
orders in a person's data export and erasure (the host hands these to identity)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import func, select, update

from shop_identity import LastOrder, OrderSummary, tombstone_username
from shop_kernel import OutboxMessage, format_money
from shop_ordering.events import ORDER_CANCELLED, ORDER_PLACED, CustomerContact
from shop_ordering.models import Order, OrderItem

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("customer_order_summary", "erase_customer_orders", "export_customer_orders")


async def customer_order_summary(session: AsyncSession, customer_id: int) -> OrderSummary:
    """How many orders the customer placed (cancelled ones too) and the newest one."""
    count = await session.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer_id))
    newest = await session.scalar(
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(1)
    )
    last = (
        LastOrder(
            id=newest.id,
            order_number=newest.order_number,
            status=newest.status,
            total_amount=format_money(newest.total_amount),
            created_at=newest.created_at,
        )
        if newest is not None
        else None
    )
    return OrderSummary(order_count=count or 0, last_order=last)


async def export_customer_orders(session: AsyncSession, customer_id: int) -> list[dict[str, Any]]:
    """The customer's orders with their items, oldest first, for the person's data export."""
    orders = list(await session.scalars(select(Order).where(Order.customer_id == customer_id).order_by(Order.id)))
    items = await session.scalars(
        select(OrderItem).where(OrderItem.order_id.in_([order.id for order in orders])).order_by(OrderItem.id)
    )
    lines: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        lines.setdefault(item.order_id, []).append(
            {
                "product_id": item.product_id,
                "product_name": item.product_name,
                "quantity": item.quantity,
                "unit_price": format_money(item.unit_price),
                "subtotal": format_money(item.subtotal),
            }
        )
    return [
        {
            "id": order.id,
            "order_number": order.order_number,
            "status": order.status,
            "total_amount": format_money(order.total_amount),
            "notes": order.notes,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
            "items": lines.get(order.id, []),
        }
        for order in orders
    ]


async def erase_customer_orders(session: AsyncSession, customer_id: int) -> None:
    """Orders stay for accounting (numbers, lines, totals, status); what the person wrote in them goes, and the
    events published about them keep the erased account's tombstone instead of its contact details."""
    order_ids = list(await session.scalars(select(Order.id).where(Order.customer_id == customer_id)))
    if not order_ids:
        return
    await session.execute(
        update(Order).where(Order.id.in_(order_ids)).values(notes="", idempotency_key=None, request_fingerprint=None)
    )
    keys = [f"{topic}:{order_id}" for order_id in order_ids for topic in (ORDER_PLACED, ORDER_CANCELLED)]
    events = await session.execute(select(OutboxMessage.id, OutboxMessage.payload).where(OutboxMessage.key.in_(keys)))
    tombstone = msgspec.to_builtins(
        CustomerContact(
            id=customer_id,
            username=tombstone_username(customer_id),
            first_name="",
            last_name="",
            email="",
            phone_number=None,
        )
    )
    for message_id, payload in events.all():
        scrubbed = (
            {**payload, "customer": tombstone, "notes": ""}
            if "notes" in payload
            else {**payload, "customer": tombstone}
        )
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(payload=scrubbed))
