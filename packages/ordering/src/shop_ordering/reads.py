"""Ordering's reads: orders as answered, on the request's async session.

Usernames come from identity (`usernames_by_id`, `customers_named`) and each line's product as it is now from the
catalog (`current_products`), never from their tables.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException
from sqlalchemy import select

from shop_catalog import current_products
from shop_identity import customers_named, usernames_by_id
from shop_kernel import KeysetWindow, Principal, fetch_keyset_window
from shop_ordering.models import Order
from shop_ordering.rendering import LineFacts, OrderFacts, order_read
from shop_ordering.units import ITEM, visible_to

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_ordering.schemas import OrderRead, OrderStatus

__all__ = ("OrderReads",)

_LINES = select(ITEM.c.order_id, ITEM.c.id, ITEM.c.product_id, ITEM.c.product_name, ITEM.c.quantity,
                ITEM.c.unit_price, ITEM.c.subtotal).order_by(ITEM.c.id)  # fmt: skip


class OrderReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: int, principal: Principal) -> OrderRead:
        order = await self.session.scalar(select(Order).where(Order.id == order_id, *visible_to(principal)))
        if order is None:
            raise NotFoundException(detail=f"No order with id {order_id}.")
        return (await self.render([order]))[0]

    async def page(
        self,
        principal: Principal,
        *,
        cursor: str | None,
        page_size: int,
        status: OrderStatus | None = None,
        customer: str | None = None,
    ) -> tuple[list[OrderRead], KeysetWindow[Any]]:
        """Newest first, keyset-paginated; customers see their own orders, staff everybody's."""
        statement = select(Order).where(*visible_to(principal))
        if status is not None:
            statement = statement.where(Order.status == status.value)
        if customer is not None:
            statement = statement.where(Order.customer_id.in_(customers_named(customer)))
        window = await fetch_keyset_window(
            self.session, statement, sort=Order.created_at, tie_breaker=Order.id, cursor=cursor, page_size=page_size
        )
        return await self.render(window.rows), window

    async def render(self, orders: Sequence[Order]) -> list[OrderRead]:
        """Orders with their lines, customers' usernames and lines' products: three more queries for any number."""
        if not orders:
            return []
        usernames = await usernames_by_id(self.session, (order.customer_id for order in orders))
        lines: dict[int, list[LineFacts]] = defaultdict(list)
        for order_id, *line in await self.session.execute(_LINES.where(ITEM.c.order_id.in_([o.id for o in orders]))):
            lines[order_id].append(LineFacts(*line))
        products = await current_products(self.session, (line.product_id for rows in lines.values() for line in rows))
        return [
            order_read(
                OrderFacts(
                    order.id,
                    order.order_number,
                    order.status,
                    order.total_amount,
                    order.notes,
                    order.created_at,
                    order.updated_at,
                ),
                usernames.get(order.customer_id, ""),
                lines[order.id],
                products,
            )
            for order in orders
        ]
