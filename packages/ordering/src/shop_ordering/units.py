"""Ordering's writes: synchronous Core units of work, run by `shop_kernel.run_unit_of_work` (SQLite's writer
thread, or `run_sync` on PostgreSQL) or, for placing an order on PostgreSQL, `run_one_statement_units`.

Each unit reads other contexts only through their public APIs: catalog's stock functions and `StockTaking`,
identity's `contact_of`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NoReturn, cast

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import JSON, Integer, String, Table, bindparam, func, insert, literal_column, select, true, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB

from shop_catalog import (
    InsufficientStock,
    ReservedProduct,
    StockTaking,
    UnavailableProducts,
    check_stock,
    release_stock,
    reserve_stock,
)
from shop_identity import contact_of
from shop_kernel import (
    ConflictError,
    FieldValidationError,
    Prepared,
    Principal,
    ProblemError,
    UnprocessableError,
    add_to_outbox,
    current_request_id,
    outbox_insert,
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
from shop_ordering.metrics import STOCK_OUT_REJECTIONS
from shop_ordering.models import Order, OrderItem
from shop_ordering.rendering import LineFacts, OrderFacts, aware, order_read
from shop_ordering.schemas import OrderRead, OrderStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy import Connection

__all__ = (
    "CANCELLABLE",
    "ORDER_NUMBER_ALPHABET",
    "InsufficientStockError",
    "NewOrder",
    "PlacedOrder",
    "advance_in",
    "cancel_in",
    "new_order_number",
    "place_at_once",
    "place_in",
    "visible_to",
)

ORDER = cast("Table", Order.__table__)
ITEM = cast("Table", OrderItem.__table__)

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


def new_order_number() -> str:
    """`ORD-` and 8 random characters: about 8.5e11 possibilities, so numbers reveal no sales volume."""
    return "ORD-" + "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(8))


def _now() -> datetime:
    return datetime.now(UTC)


def visible_to(principal: Principal) -> list[Any]:
    """The orders `principal` may see: a customer's own, or (staff) everybody's."""
    return [] if principal.is_staff else [ORDER.c.customer_id == principal.require_user_id()]


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


_ORDER_COLUMNS = (
    "order_number",
    "customer_id",
    "status",
    "total_amount",
    "notes",
    "idempotency_key",
    "request_fingerprint",
    "created_at",
    "updated_at",
)
_INSERT_ORDER = Prepared(insert(ORDER).returning(ORDER.c.id), _ORDER_COLUMNS)
_PLACED_BINDS = dict(
    zip(
        _ORDER_COLUMNS,
        ("p_number", "p_customer", "p_status", "p_total", "p_notes", "p_key", "p_fingerprint", "p_now", "p_now"),
        strict=True,
    )
)
"""`_placing_statement`'s bind parameter for each column of the order (none may be named as a column)."""
_ITEM_SHARED = {"order_id": "order_id", "created_at": "now", "updated_at": "now"}
_ITEM_COLUMNS = ("product_id", "product_name", "quantity", "unit_price", "subtotal")


@lru_cache(maxsize=128)
def _insert_items(lines: int) -> Prepared:
    """One multi-row INSERT for an order's lines (`product_id_0`, `quantity_0`, ...), built once per line count."""
    rows = [
        {column: bindparam(name, type_=ITEM.c[column].type) for column, name in _ITEM_SHARED.items()}
        | {column: bindparam(f"{column}_{i}", type_=ITEM.c[column].type) for column in _ITEM_COLUMNS}
        for i in range(lines)
    ]
    return Prepared(insert(ITEM).values(rows).returning(ITEM.c.product_id, ITEM.c.id))


_BY_KEY = select(ORDER.c.id, ORDER.c.created_at, ORDER.c.request_fingerprint).where(
    ORDER.c.customer_id == bindparam("customer_id"), ORDER.c.idempotency_key == bindparam("key")
)


def place_in(connection: Connection, new_order: NewOrder) -> PlacedOrder | int:
    """SQLite: reserve stock, write the order, its lines and its event; or the id of the order this key placed before.

    SQLite's transaction holds the database's one write lock from its first statement (`BEGIN IMMEDIATE`), so the
    stock is taken first and the order written at the names and prices its stock was taken at.
    """
    if new_order.key is not None and (earlier := _earlier_order(connection, new_order)) is not None:
        return earlier
    contact = _contact_of(connection, new_order.customer_id)
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
    contact = _contact_of(connection, new_order.customer_id)
    read = _stock(check_stock, connection, new_order.quantities)
    statement = _placing_statement(len(new_order.quantities))
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


@lru_cache(maxsize=64)
def _placing_statement(lines: int) -> Prepared:
    """The statement of `place_at_once` for `lines` lines, built once: catalog's stock-taking expressions
    (`StockTaking`), then the order (only if the stock was taken), its lines (from the products whose stock was
    taken), its event in the outbox (its key and payload given their order id by PostgreSQL), and as its answer
    the locked products, each with the order's id and its line's id (both NULL when nothing was written)."""
    stock = StockTaking.of(lines)
    placed = (
        insert(ORDER)
        .from_select(
            _ORDER_COLUMNS,
            select(*(bindparam(name, type_=ORDER.c[column].type) for column, name in _PLACED_BINDS.items())).where(
                stock.verdict.c.taken
            ),
            include_defaults=False,
        )
        .returning(ORDER.c.id)
        .cte("placed")
    )
    wanted, taken = stock.wanted, stock.taken
    line_rows = (
        insert(ITEM)
        .from_select(
            (
                "order_id",
                "product_id",
                "product_name",
                "quantity",
                "unit_price",
                "subtotal",
                "created_at",
                "updated_at",
            ),
            select(
                placed.c.id,
                taken.c.id,
                wanted.c.name,
                wanted.c.quantity,
                wanted.c.price,
                wanted.c.price * wanted.c.quantity,
                bindparam("p_now", type_=ITEM.c.created_at.type),
                bindparam("p_now", type_=ITEM.c.updated_at.type),
            )
            .join_from(taken, wanted, wanted.c.id == taken.c.id)
            .join(placed, true()),
            include_defaults=False,
        )
        .returning(ITEM.c.product_id, ITEM.c.id)
        .cte("line_rows")
    )
    payload = func.jsonb_set(
        sql_cast(bindparam("p_payload", type_=JSON), JSONB), literal_column("'{order_id}'"), func.to_jsonb(placed.c.id)
    )
    event = outbox_insert(
        select(
            bindparam("p_topic", type_=String),
            bindparam("p_event_key", type_=String) + sql_cast(placed.c.id, String),
            sql_cast(payload, JSON),
            bindparam("p_now", type_=ORDER.c.created_at.type),
            sql_cast(0, Integer),
            bindparam("p_request_id", type_=String),
        )
    ).cte("event")
    locked = stock.locked
    answer = (
        select(
            locked.c.id,
            locked.c.name,
            locked.c.price,
            locked.c.is_active,
            locked.c.stock_quantity,
            select(placed.c.id).scalar_subquery(),
            line_rows.c.id,
        )
        .outerjoin_from(locked, line_rows, line_rows.c.product_id == locked.c.id)
        .add_cte(event)
    )
    return Prepared(answer)


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
    [(order_id,)] = _INSERT_ORDER.rows(
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
    item_ids = dict(_insert_items(len(event.items)).rows(connection, item_values))
    placed = order.placed(order_id, item_ids)
    add_to_outbox(connection, ORDER_PLACED, f"{ORDER_PLACED}:{order_id}", cast("OrderPlaced", placed.event))
    return placed


def _earlier_order(connection: Connection, new_order: NewOrder) -> int | None:
    """The order placed earlier with this key (422 if the body differs); a key older than the window is freed."""
    existing = connection.execute(_BY_KEY, {"customer_id": new_order.customer_id, "key": new_order.key}).first()
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


def _contact_of(connection: Connection, customer_id: int) -> CustomerContact:
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
    customer = _contact_of(connection, cancelled.customer_id)
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
