"""What ordering tells other contexts about a customer's orders (identity's staff view fills its port with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from shop_identity import LastOrder, OrderSummary
from shop_kernel import format_money
from shop_ordering.models import Order

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("customer_order_summary",)


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
