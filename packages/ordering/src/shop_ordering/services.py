"""Placing, reading, cancelling and advancing orders. Each public method owns its transaction.

The writes are Core units of work (`shop_ordering.placing`, `shop_ordering.units`) run through the request's
`shop_kernel.Unit`, the reads queries on its session (`shop_ordering.reads`); this service adds what belongs to
neither: the Idempotency-Key claim of this process and the retries of a unit that lost a race.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import msgspec
from sqlalchemy.exc import IntegrityError

from shop_kernel import (
    ConflictError,
    FieldValidationError,
    Principal,
    Unit,
)
from shop_ordering.metrics import ORDERS_PLACED
from shop_ordering.models import Order
from shop_ordering.placing import (
    ORDER_NUMBER_ALPHABET,
    NewOrder,
    PlacedOrder,
    new_order_number,
    place_at_once,
    place_in,
)
from shop_ordering.reads import OrderReads
from shop_ordering.schemas import OrderRead, OrderStatus, PlaceOrder
from shop_ordering.units import advance_in, cancel_in

__all__ = ("ORDER_NUMBER_ALPHABET", "OrderService", "OrderingRules", "PlacedOrder", "new_order_number")

_in_flight: set[tuple[int, str]] = set()
"""(customer, Idempotency-Key) pairs being processed by this process right now."""


@dataclass(frozen=True)
class OrderingRules:
    max_quantity_per_line: int = 1000
    idempotency_window: timedelta = timedelta(hours=24)


class OrderService:
    """Reads are `self.reads` (`shop_ordering.reads.OrderReads`), on the unit's async session. Writes are
    synchronous Core units of work: `unit.run` (one hand-off to the SQLite writer thread, or `run_sync` on
    PostgreSQL), or, for placing an order on PostgreSQL, `unit.run_one_statement`.
    """

    def __init__(self, unit: Unit, rules: OrderingRules | None = None) -> None:
        self.unit = unit
        self.rules = rules or OrderingRules()
        self.reads = OrderReads(unit.session)

    # ---- placing ------------------------------------------------------------------------------

    async def place(self, customer_id: int, data: PlaceOrder, idempotency_key: str | None = None) -> PlacedOrder:
        new_order = NewOrder(
            customer_id=customer_id,
            quantities=self._merge_lines(data),
            notes=data.notes,
            key=idempotency_key,
            fingerprint=hashlib.sha256(msgspec.json.encode(data)).hexdigest(),
            idempotency_window=self.rules.idempotency_window,
        )
        if idempotency_key is None:
            return await self._place_with_retries(new_order)
        claim = (customer_id, idempotency_key)
        if claim in _in_flight:
            raise ConflictError(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                problem_type="/problems/idempotency-in-flight",
            )
        _in_flight.add(claim)
        try:
            return await self._place_with_retries(new_order)
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

    async def _place_with_retries(self, new_order: NewOrder) -> PlacedOrder:
        at_once = self.unit.engine.dialect.name == "postgresql"
        for _ in range(5):
            try:
                if at_once:
                    placed = await self.unit.run_one_statement(partial(place_at_once, new_order=new_order))
                else:
                    placed = await self.unit.run(partial(place_in, new_order=new_order))
            except IntegrityError as exc:
                message = str(exc.orig).lower()
                if "order_number" in message:
                    continue  # two orders drew the same number: draw again
                if "idempotency" in message:
                    continue  # another process placed this key first: the retry replays its order
                raise
            if isinstance(placed, PlacedOrder):
                ORDERS_PLACED.inc()
                return placed
            earlier = await self.unit.session.get_one(Order, placed)
            return PlacedOrder(order=(await self.reads.render([earlier]))[0], replayed=True)
        raise ConflictError("Could not allocate an order number; please retry.")  # pragma: no cover

    # ---- changing -----------------------------------------------------------------------------

    async def cancel(self, order_id: int, principal: Principal) -> OrderRead:
        """Cancel once: the conditional UPDATE lets exactly one of two simultaneous cancels through; its event
        goes out through the outbox."""
        # the unit answers the order as it left it: no read-back through the session (3 round trips)
        order, _event = await self.unit.run(partial(cancel_in, order_id=order_id, principal=principal))
        return order

    async def advance(self, order_id: int, principal: Principal, status: OrderStatus) -> OrderRead:
        """Staff: one step along the lifecycle; anything else is 409."""
        if status == OrderStatus.CANCELLED:
            return await self.cancel(order_id, principal)
        await self.unit.run(partial(advance_in, order_id=order_id, principal=principal, status=status))
        return await self.reads.get(order_id, principal)
