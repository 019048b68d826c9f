"""Placing an order: the units of work that write an order, its lines and its event and take its stock.

SQLite: one transaction in the writer thread (`place_in`). PostgreSQL: one statement outside a transaction
(`place_at_once`, decision 160). Both answer the order through `shop_ordering.rendering`, or the id of the order an
Idempotency-Key placed before.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import update

from shop_catalog import (
    InsufficientStock,
    ReservedProduct,
    StockTaking,
    UnavailableProducts,
    check_stock,
    reserve_stock,
)
from shop_kernel import (
    ConflictError,
    FieldValidationError,
    ProblemError,
    UnprocessableError,
    add_to_outbox,
    current_request_id,
    to_money,
)
from shop_ordering.events import ORDER_PLACED, CustomerContact, OrderLine, OrderPlaced
from shop_ordering.metrics import STOCK_OUT_REJECTIONS
from shop_ordering.rendering import LineFacts, OrderFacts, aware, order_read
from shop_ordering.schemas import OrderRead, OrderStatus
from shop_ordering.statements import BY_KEY, INSERT_ORDER, insert_items, placing_statement
from shop_ordering.units import ORDER, _now, contact_of_customer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy import Connection

__all__ = (
    "ORDER_NUMBER_ALPHABET",
    "InsufficientStockError",
    "NewOrder",
    "PlacedOrder",
    "new_order_number",
    "place_at_once",
    "place_in",
)

ORDER_NUMBER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""No 0/O, 1/I/L: numbers are read aloud on the phone."""


def new_order_number() -> str:
    """`ORD-` and 8 random characters: about 8.5e11 possibilities, so numbers reveal no sales volume."""
    return "ORD-" + "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(8))


@dataclass
class PlacedOrder:
    order: OrderRead
    replayed: bool = False
    event: OrderPlaced | None = field(default=None)


@dataclass(frozen=True)
class NewOrder:
    """What the placing unit of work needs; built on the event loop, consumed in `place_in` / `place_at_once`."""

    customer_id: int
    quantities: dict[int, int]
    notes: str
    key: str | None
    fingerprint: str
    idempotency_window: timedelta


def place_in(connection: Connection, new_order: NewOrder) -> PlacedOrder | int:
    """SQLite: reserve stock, write the order, its lines and its event; or the id of the order this key placed before.

    SQLite's transaction holds the database's one write lock from its first statement (`BEGIN IMMEDIATE`), so the
    stock is taken first and the order written at the names and prices its stock was taken at.
    """
    if new_order.key is not None and (earlier := _earlier_order(connection, new_order)) is not None:
        return earlier
    contact = contact_of_customer(connection, new_order.customer_id)
    return _write_order(connection, new_order, contact, _stock(reserve_stock, connection, new_order.quantities))


def place_at_once(connection: Connection, new_order: NewOrder) -> PlacedOrder | int:
    """PostgreSQL: the order, its lines, its event and the taking of its stock in one statement (decision 160).

    Run outside a transaction (`run_one_statement_units`), after unlocked reads of the earlier order for the key, the
    customer's contact and the products' names and prices (`check_stock`, which also refuses what is plainly short
    or unavailable): PostgreSQL locks the products in id order, takes the stock only if every line can be served at
    the name and price read, writes the rest only then, and commits as the statement ends. So a hot product's row
    lock is held for the statement's own run inside PostgreSQL, not across a round trip to this process and its
    event loop, and the lines' foreign-key checks come after the stock statement has locked the rows, so they never
    meet another order's lock (no MultiXacts). A name or price that changed since it was read: placed again at the
    new ones (the statement answers them); stock short: the same 400 as `reserve_stock`.
    """
    if new_order.key is not None and (earlier := _earlier_order(connection, new_order)) is not None:
        return earlier
    contact = contact_of_customer(connection, new_order.customer_id)
    read = _stock(check_stock, connection, new_order.quantities)
    statement = placing_statement(len(new_order.quantities))
    for _ in range(5):
        order = _OrderRows.of(new_order, contact, read)
        parameters = StockTaking.parameters(new_order.quantities, read) | {
            "p_number": order.event.order_number,
            "p_customer": new_order.customer_id,
            "p_status": OrderStatus.PENDING.value,
            "p_total": order.event.total_amount,
            "p_notes": new_order.notes,
            "p_key": new_order.key,
            "p_fingerprint": new_order.fingerprint if new_order.key else None,
            "p_now": order.event.placed_at,
            "p_topic": ORDER_PLACED,
            "p_event_key": f"{ORDER_PLACED}:",
            "p_payload": msgspec.to_builtins(order.event),
            "p_request_id": current_request_id(),
        }
        rows = statement.rows(connection, parameters)
        order_id = rows[0][5] if rows else None
        if order_id is not None:
            item_ids = {row[0]: row[6] for row in rows}
            return order.placed(order_id, item_ids)
        read = _stock(partial(_judged, locked=[row[:5] for row in rows]), connection, new_order.quantities)
    raise ConflictError("The products changed while the order was placed; please retry.")  # pragma: no cover


def _judged(
    _connection: Connection, quantities: Mapping[int, int], locked: list[tuple[Any, ...]]
) -> dict[int, ReservedProduct]:
    return StockTaking.judge(quantities, cast("list[tuple[int, str, Decimal, bool, int]]", locked))


@dataclass(frozen=True)
class _OrderRows:
    """An order about to be written: its event, complete but for the order's id (0 until the order is written)."""

    event: OrderPlaced

    @staticmethod
    def of(new_order: NewOrder, contact: CustomerContact, products: Mapping[int, ReservedProduct]) -> _OrderRows:
        lines = [
            OrderLine(
                product_id=pid,
                name=products[pid].name,
                quantity=quantity,
                unit_price=to_money(products[pid].price),
                subtotal=to_money(products[pid].price) * quantity,
            )
            for pid, quantity in new_order.quantities.items()
        ]
        return _OrderRows(
            OrderPlaced(
                order_id=0,
                order_number=new_order_number(),
                customer=contact,
                items=lines,
                total_amount=sum((line.subtotal for line in lines), Decimal("0.00")),
                notes=new_order.notes,
                placed_at=_now(),
            )
        )

    def placed(self, order_id: int, item_ids: Mapping[int, int]) -> PlacedOrder:
        """The order as answered once written: `item_ids` maps each line's product to the line's id; each line's
        product is shown at the name and price it was bought at, which are the catalog's at this moment."""
        event = msgspec.structs.replace(self.event, order_id=order_id)
        facts = OrderFacts(order_id, event.order_number, OrderStatus.PENDING.value, event.total_amount, event.notes,
                           event.placed_at, event.placed_at)  # fmt: skip
        lines = [
            LineFacts(
                item_ids[line.product_id], line.product_id, line.name, line.quantity, line.unit_price, line.subtotal
            )
            for line in event.items
        ]
        products = {
            line.product_id: ReservedProduct(line.product_id, line.name, line.unit_price) for line in event.items
        }
        return PlacedOrder(order=order_read(facts, event.customer.username, lines, products), event=event)


def _write_order(
    connection: Connection, new_order: NewOrder, contact: CustomerContact, products: dict[int, ReservedProduct]
) -> PlacedOrder:
    order = _OrderRows.of(new_order, contact, products)
    event, now = order.event, order.event.placed_at
    [(order_id,)] = INSERT_ORDER.rows(
        connection,
        {
            "order_number": event.order_number,
            "customer_id": new_order.customer_id,
            "status": OrderStatus.PENDING.value,
            "total_amount": event.total_amount,
            "notes": new_order.notes,
            "idempotency_key": new_order.key,
            "request_fingerprint": new_order.fingerprint if new_order.key else None,
            "created_at": now,
            "updated_at": now,
        },
    )
    # Products are unique per order (lines were merged), so the returned ids map back by product.
    item_values: dict[str, Any] = {"order_id": order_id, "now": now}
    for i, line in enumerate(event.items):
        item_values.update(
            {
                f"product_id_{i}": line.product_id,
                f"product_name_{i}": line.name,
                f"quantity_{i}": line.quantity,
                f"unit_price_{i}": line.unit_price,
                f"subtotal_{i}": line.subtotal,
            }
        )
    item_ids = dict(insert_items(len(event.items)).rows(connection, item_values))
    placed = order.placed(order_id, item_ids)
    add_to_outbox(connection, ORDER_PLACED, f"{ORDER_PLACED}:{order_id}", cast("OrderPlaced", placed.event))
    return placed


def _earlier_order(connection: Connection, new_order: NewOrder) -> int | None:
    """The order placed earlier with this key (422 if the body differs); a key older than the window is freed."""
    existing = connection.execute(BY_KEY, {"customer_id": new_order.customer_id, "key": new_order.key}).first()
    if existing is None:
        return None
    created_at = aware(existing.created_at)
    if created_at < _now() - new_order.idempotency_window:
        connection.execute(update(ORDER).where(ORDER.c.id == existing.id).values(idempotency_key=None))
        return None
    if existing.request_fingerprint != new_order.fingerprint:
        raise UnprocessableError(
            "This Idempotency-Key was already used with a different request body.",
            problem_type="/problems/idempotency-mismatch",
        )
    return int(existing.id)


class InsufficientStockError(ProblemError):
    """400, as in the original API (its test asserts it): the order is well-formed, but the stock is short.

    Its own problem type tells it apart from a field error; `errors.items` names each product with the quantity
    available. Nothing was written."""

    status_code = HTTPStatus.BAD_REQUEST
    problem_type = "/problems/insufficient-stock"


def _stock(
    take: Callable[[Connection, Mapping[int, int]], dict[int, ReservedProduct]],
    connection: Connection,
    quantities: dict[int, int],
) -> dict[int, ReservedProduct]:
    """`reserve_stock` or `check_stock`, their refusals as the API's 400s."""
    try:
        return take(connection, quantities)
    except UnavailableProducts as exc:
        listed = ", ".join(map(str, exc.product_ids))
        raise FieldValidationError({"items": [f"Unknown or unavailable product id(s): {listed}."]}) from exc
    except InsufficientStock as exc:
        STOCK_OUT_REJECTIONS.inc()
        raise InsufficientStockError(
            "Not enough stock: "
            + "; ".join(
                f"{s.name} (product {s.product_id}): requested {s.requested}, available {s.available}"
                for s in exc.shortages
            )
            + ".",
            errors={
                "items": [
                    f"Product {s.product_id}: requested {s.requested}, available {s.available}." for s in exc.shortages
                ]
            },
        ) from exc
