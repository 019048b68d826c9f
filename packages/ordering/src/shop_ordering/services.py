"""Placing, reading, cancelling and advancing orders. Each public method owns its transaction."""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from shop_catalog import InsufficientStock, Product, StockLedger, UnavailableProducts
from shop_identity import Customer
from shop_kernel import (
    ConflictError,
    FieldValidationError,
    KeysetWindow,
    Principal,
    UnprocessableError,
    add_to_outbox,
    fetch_keyset_window,
    serialized_writes,
    to_money,
)
from shop_ordering.events import (
    ORDER_CANCELLED,
    ORDER_PLACED,
    CustomerContact,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
)
from shop_ordering.models import Order, OrderItem
from shop_ordering.schemas import OrderItemRead, OrderProduct, OrderRead, OrderStatus, PlaceOrder

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("ORDER_NUMBER_ALPHABET", "OrderService", "OrderingRules", "PlacedOrder", "new_order_number")

ORDER = cast("Table", Order.__table__)
ITEM = cast("Table", OrderItem.__table__)
PRODUCT = cast("Table", Product.__table__)
CUSTOMER = cast("Table", Customer.__table__)

ORDER_NUMBER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""No 0/O, 1/I/L: numbers are read aloud on the phone."""

NEXT_STATUS = {
    OrderStatus.PENDING: OrderStatus.CONFIRMED,
    OrderStatus.CONFIRMED: OrderStatus.PROCESSING,
    OrderStatus.PROCESSING: OrderStatus.SHIPPED,
    OrderStatus.SHIPPED: OrderStatus.DELIVERED,
}
PREVIOUS_STATUS = {after: before for before, after in NEXT_STATUS.items()}
CANCELLABLE = (OrderStatus.PENDING, OrderStatus.CONFIRMED)

_in_flight: set[tuple[int, str]] = set()
"""(customer, Idempotency-Key) pairs being processed by this process right now."""


def new_order_number() -> str:
    """`ORD-` and 8 random characters: about 8.5e11 possibilities, so numbers reveal no sales volume."""
    return "ORD-" + "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(8))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OrderingRules:
    max_quantity_per_line: int = 1000
    idempotency_window: timedelta = timedelta(hours=24)


@dataclass
class PlacedOrder:
    order: OrderRead
    replayed: bool = False
    event: OrderPlaced | None = field(default=None)


class _OrderNumberTaken(Exception):
    pass


class OrderService:
    def __init__(self, session: AsyncSession, rules: OrderingRules | None = None) -> None:
        self.session = session
        self.rules = rules or OrderingRules()

    # ---- placing ------------------------------------------------------------------------------

    async def place(self, customer_id: int, data: PlaceOrder, idempotency_key: str | None = None) -> PlacedOrder:
        quantities = self._merge_lines(data)
        fingerprint = hashlib.sha256(msgspec.json.encode(data)).hexdigest()
        if idempotency_key is None:
            return await self._place_with_retries(customer_id, data, quantities, None, fingerprint)
        claim = (customer_id, idempotency_key)
        if claim in _in_flight:
            raise ConflictError(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                problem_type="/problems/idempotency-in-flight",
            )
        _in_flight.add(claim)
        try:
            if replay := await self._replay(customer_id, idempotency_key, fingerprint):
                return replay
            return await self._place_with_retries(customer_id, data, quantities, idempotency_key, fingerprint)
        finally:
            _in_flight.discard(claim)

    def _merge_lines(self, data: PlaceOrder) -> dict[int, int]:
        quantities: dict[int, int] = defaultdict(int)
        for line in data.items:
            quantities[line.product_id] += line.quantity
        limit = self.rules.max_quantity_per_line
        if too_many := sorted(pid for pid, quantity in quantities.items() if quantity > limit):
            raise FieldValidationError(
                {"items": [f"Product {pid}: at most {limit} units per order." for pid in too_many]}
            )
        return dict(quantities)

    async def _replay(self, customer_id: int, key: str, fingerprint: str) -> PlacedOrder | None:
        """The earlier answer for this key, 422 if the body differs; a key older than the window is freed."""
        existing = await self.session.scalar(
            select(Order).where(Order.customer_id == customer_id, Order.idempotency_key == key)
        )
        if existing is None:
            return None
        if existing.created_at < _now() - self.rules.idempotency_window:
            existing.idempotency_key = None
            await self.session.commit()
            return None
        if existing.request_fingerprint != fingerprint:
            raise UnprocessableError(
                "This Idempotency-Key was already used with a different request body.",
                problem_type="/problems/idempotency-mismatch",
            )
        return PlacedOrder(order=(await self._render([existing]))[0], replayed=True)

    async def _place_with_retries(
        self, customer_id: int, data: PlaceOrder, quantities: dict[int, int], key: str | None, fingerprint: str
    ) -> PlacedOrder:
        for _ in range(5):
            try:
                return await self._place_once(customer_id, data, quantities, key, fingerprint)
            except _OrderNumberTaken:
                continue
        raise ConflictError("Could not allocate an order number; please retry.")  # pragma: no cover

    async def _place_once(
        self, customer_id: int, data: PlaceOrder, quantities: dict[int, int], key: str | None, fingerprint: str
    ) -> PlacedOrder:
        customer = await self.session.get(Customer, customer_id)
        if customer is None:  # pragma: no cover - the token's owner was deleted mid-request
            raise NotFoundException(detail="No such customer.")
        contact = _contact(customer)
        async with serialized_writes(self.session):
            return await self._reserve_and_write(customer_id, data, quantities, key, fingerprint, contact)

    async def _reserve_and_write(
        self,
        customer_id: int,
        data: PlaceOrder,
        quantities: dict[int, int],
        key: str | None,
        fingerprint: str,
        contact: CustomerContact,
    ) -> PlacedOrder:
        try:
            reserved = await StockLedger(self.session).reserve(quantities)
        except UnavailableProducts as exc:
            await self.session.rollback()
            listed = ", ".join(map(str, exc.product_ids))
            raise FieldValidationError({"items": [f"Unknown or unavailable product id(s): {listed}."]}) from exc
        except InsufficientStock as exc:
            await self.session.rollback()
            raise ConflictError(
                "Not enough stock: "
                + "; ".join(
                    f"{s.name} (product {s.product_id}): requested {s.requested}, available {s.available}"
                    for s in exc.shortages
                )
                + ".",
                problem_type="/problems/insufficient-stock",
                errors={
                    "items": [
                        f"Product {s.product_id}: requested {s.requested}, available {s.available}."
                        for s in exc.shortages
                    ]
                },
            ) from exc

        lines = [
            OrderLine(
                product_id=pid,
                name=reserved[pid].name,
                quantity=quantity,
                unit_price=to_money(reserved[pid].price),
                subtotal=to_money(reserved[pid].price) * quantity,
            )
            for pid, quantity in quantities.items()
        ]
        total = sum((line.subtotal for line in lines), Decimal("0.00"))
        order = Order(
            order_number=new_order_number(),
            customer_id=customer_id,
            status=OrderStatus.PENDING.value,
            total_amount=total,
            notes=data.notes,
            idempotency_key=key,
            request_fingerprint=fingerprint if key else None,
        )
        self.session.add(order)
        try:
            await self.session.flush()
            # Products are unique per order (lines were merged), so the returned ids map back by product;
            # not asking for parameter order lets SQLite batch the lines into one INSERT.
            inserted = await self.session.execute(
                insert(ITEM).returning(ITEM.c.product_id, ITEM.c.id),
                [
                    {
                        "order_id": order.id,
                        "product_id": line.product_id,
                        "product_name": line.name,
                        "quantity": line.quantity,
                        "unit_price": line.unit_price,
                        "subtotal": line.subtotal,
                    }
                    for line in lines
                ],
            )
            item_ids = {product_id: item_id for product_id, item_id in inserted}  # noqa: C416 - Result has .keys()
            event = OrderPlaced(
                order_id=order.id,
                order_number=order.order_number,
                customer=contact,
                items=lines,
                total_amount=total,
                notes=order.notes,
                placed_at=order.created_at,
            )
            add_to_outbox(self.session, ORDER_PLACED, f"{ORDER_PLACED}:{order.id}", event)
            read = OrderRead(
                id=order.id,
                order_number=order.order_number,
                customer=contact.username,
                status=OrderStatus.PENDING,
                total_amount=total,
                notes=order.notes,
                items=[
                    OrderItemRead(
                        id=item_ids[line.product_id],
                        product=OrderProduct(id=line.product_id, name=line.name, price=line.unit_price),
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        subtotal=line.subtotal,
                    )
                    for line in lines
                ],
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
            await self.session.commit()
        except IntegrityError as exc:
            await self.session.rollback()
            if "idempotency" in str(exc.orig).lower() or (key and "idempotency_key" in str(exc.orig)):
                replay = await self._replay(customer_id, key or "", fingerprint)
                if replay is not None:
                    return replay
            if "order_number" in str(exc.orig):
                raise _OrderNumberTaken from exc
            raise
        return PlacedOrder(order=read, event=event)

    # ---- reading ------------------------------------------------------------------------------

    def _visible_to(self, principal: Principal) -> list[Any]:
        return [] if principal.is_staff else [ORDER.c.customer_id == principal.require_user_id()]

    async def get(self, order_id: int, principal: Principal) -> OrderRead:
        order = await self.session.scalar(select(Order).where(Order.id == order_id, *self._visible_to(principal)))
        if order is None:
            raise NotFoundException(detail=f"No order with id {order_id}.")
        return (await self._render([order]))[0]

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
        statement = select(Order).where(*self._visible_to(principal))
        if status is not None:
            statement = statement.where(Order.status == status.value)
        if customer is not None:
            statement = statement.where(
                Order.customer_id.in_(select(CUSTOMER.c.id).where(CUSTOMER.c.username == customer))
            )
        window = await fetch_keyset_window(
            self.session, statement, sort=Order.created_at, tie_breaker=Order.id, cursor=cursor, page_size=page_size
        )
        return await self._render(window.rows), window

    async def _render(self, orders: Sequence[Order]) -> list[OrderRead]:
        """Orders with their lines and customers' usernames: two more queries for any number of orders."""
        if not orders:
            return []
        ids = [order.id for order in orders]
        customers = select(CUSTOMER.c.id, CUSTOMER.c.username).where(
            CUSTOMER.c.id.in_({order.customer_id for order in orders})
        )
        usernames = {row.id: row.username for row in await self.session.execute(customers)}
        items: dict[int, list[OrderItemRead]] = defaultdict(list)
        rows = await self.session.execute(
            select(ITEM, PRODUCT.c.name.label("current_name"), PRODUCT.c.price.label("current_price"))
            .join(PRODUCT, PRODUCT.c.id == ITEM.c.product_id)
            .where(ITEM.c.order_id.in_(ids))
            .order_by(ITEM.c.id)
        )
        for row in rows:
            items[row.order_id].append(
                OrderItemRead(
                    id=row.id,
                    product=OrderProduct(id=row.product_id, name=row.current_name, price=to_money(row.current_price)),
                    quantity=row.quantity,
                    unit_price=to_money(row.unit_price),
                    subtotal=to_money(row.subtotal),
                )
            )
        return [
            OrderRead(
                id=order.id,
                order_number=order.order_number,
                customer=usernames.get(order.customer_id, ""),
                status=OrderStatus(order.status),
                total_amount=to_money(order.total_amount),
                notes=order.notes,
                items=items[order.id],
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
            for order in orders
        ]

    # ---- changing -----------------------------------------------------------------------------

    async def cancel(self, order_id: int, principal: Principal) -> tuple[OrderRead, OrderCancelled]:
        """Cancel once: the conditional UPDATE lets exactly one of two simultaneous cancels through."""
        async with serialized_writes(self.session):
            event = await self._cancel(order_id, principal)
        return await self.get(order_id, principal), event

    async def _cancel(self, order_id: int, principal: Principal) -> OrderCancelled:
        cancelled = await self.session.execute(
            update(ORDER)
            .where(
                ORDER.c.id == order_id, ORDER.c.status.in_([s.value for s in CANCELLABLE]), *self._visible_to(principal)
            )
            .values(status=OrderStatus.CANCELLED.value, updated_at=_now())
            .returning(ORDER.c.id)
        )
        if cancelled.first() is None:
            await self._refuse(order_id, principal, "cancelled", "only pending or confirmed orders can be cancelled")
        lines = await self.session.execute(
            select(ITEM.c.product_id, ITEM.c.product_name, ITEM.c.quantity, ITEM.c.unit_price, ITEM.c.subtotal).where(
                ITEM.c.order_id == order_id
            )
        )
        order_lines = [
            OrderLine(product_id=r.product_id, name=r.product_name, quantity=r.quantity,
                      unit_price=to_money(r.unit_price), subtotal=to_money(r.subtotal))
            for r in lines
        ]  # fmt: skip
        await StockLedger(self.session).release({line.product_id: line.quantity for line in order_lines})
        order = await self.session.get_one(Order, order_id)
        customer = await self.session.get_one(Customer, order.customer_id)
        event = OrderCancelled(
            order_id=order_id,
            order_number=order.order_number,
            customer=_contact(customer),
            items=order_lines,
            total_amount=to_money(order.total_amount),
            cancelled_at=_now(),
            cancelled_by_staff=principal.is_staff and principal.user_id != order.customer_id,
        )
        add_to_outbox(self.session, ORDER_CANCELLED, f"{ORDER_CANCELLED}:{order_id}", event)
        await self.session.commit()
        return event

    async def advance(self, order_id: int, principal: Principal, status: OrderStatus) -> OrderRead:
        """Staff: one step along the lifecycle; anything else is 409."""
        if status == OrderStatus.CANCELLED:
            return (await self.cancel(order_id, principal))[0]
        previous = PREVIOUS_STATUS.get(status)
        moved = None
        if previous is not None:
            moved = (
                await self.session.execute(
                    update(ORDER)
                    .where(ORDER.c.id == order_id, ORDER.c.status == previous.value)
                    .values(status=status.value, updated_at=_now())
                    .returning(ORDER.c.id)
                )
            ).first()
        if moved is None:
            await self._refuse(order_id, principal, status.value, "orders move pending → confirmed → processing → "
                               "shipped → delivered, one step at a time")  # fmt: skip
        await self.session.commit()
        return await self.get(order_id, principal)

    async def _refuse(self, order_id: int, principal: Principal, target: str, rule: str) -> None:
        await self.session.rollback()
        current = await self.session.scalar(
            select(ORDER.c.status).where(ORDER.c.id == order_id, *self._visible_to(principal))
        )
        if current is None:
            raise NotFoundException(detail=f"No order with id {order_id}.")
        raise ConflictError(
            f"The order is {current} and cannot be {target}: {rule}.", problem_type="/problems/order-status"
        )


def _contact(customer: Customer) -> CustomerContact:
    return CustomerContact(
        id=customer.id,
        username=customer.username,
        first_name=customer.first_name,
        last_name=customer.last_name,
        email=customer.email,
        phone_number=customer.phone_number,
    )
