"""Placing, reading, cancelling and advancing orders. Each public method owns its transaction."""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NoReturn, cast

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import (
    JSON,
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_catalog import (
    InsufficientStock,
    Product,
    ReservedProduct,
    StockTaking,
    UnavailableProducts,
    check_stock,
    release_stock,
    reserve_stock,
)
from shop_identity import Customer
from shop_kernel import (
    MAX_ROW_ID,
    ConflictError,
    FieldValidationError,
    KeysetWindow,
    Prepared,
    Principal,
    ProblemError,
    UnprocessableError,
    add_to_outbox,
    current_request_id,
    fetch_keyset_window,
    outbox_insert,
    run_one_statement_units,
    run_unit_of_work,
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
from shop_ordering.metrics import ORDERS_PLACED, STOCK_OUT_REJECTIONS
from shop_ordering.models import Order, OrderItem
from shop_ordering.schemas import OrderItemRead, OrderProduct, OrderRead, OrderStatus, PlaceOrder

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy import Connection
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


def _item_read(row: Any) -> OrderItemRead:
    """An order line as answered: the price paid, and the product as it is now (`current_name`, `current_price`)."""
    return OrderItemRead(
        id=row.id,
        product=OrderProduct(id=row.product_id, name=row.current_name, price=to_money(row.current_price)),
        quantity=row.quantity,
        unit_price=to_money(row.unit_price),
        subtotal=to_money(row.subtotal),
    )


def _aware(value: datetime) -> datetime:
    """Core reads of a timestamp column come back naive on SQLite; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class OrderingRules:
    max_quantity_per_line: int = 1000
    idempotency_window: timedelta = timedelta(hours=24)


@dataclass
class PlacedOrder:
    order: OrderRead
    replayed: bool = False
    event: OrderPlaced | None = field(default=None)


@dataclass(frozen=True)
class _NewOrder:
    """What the placing unit of work needs; built on the event loop, consumed in `_place_in`."""

    customer_id: int
    quantities: dict[int, int]
    notes: str
    key: str | None
    fingerprint: str
    idempotency_window: timedelta


class OrderService:
    """Reads run on the request's async session; writes are synchronous Core units of work run by
    `shop_kernel.run_unit_of_work` (one hand-off to the SQLite writer thread, or `run_sync` on PostgreSQL).
    """

    def __init__(self, session: AsyncSession, rules: OrderingRules | None = None) -> None:
        self.session = session
        self.rules = rules or OrderingRules()

    @property
    def engine(self) -> AsyncEngine:
        bind = self.session.bind
        if not isinstance(bind, AsyncEngine):  # pragma: no cover - sessions are made by the SQLAlchemy plugin
            raise TypeError("OrderService needs a session bound to an AsyncEngine")
        return bind

    # ---- placing ------------------------------------------------------------------------------

    async def place(self, customer_id: int, data: PlaceOrder, idempotency_key: str | None = None) -> PlacedOrder:
        new_order = _NewOrder(
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

    async def _place_with_retries(self, new_order: _NewOrder) -> PlacedOrder:
        at_once = self.engine.dialect.name == "postgresql"
        for _ in range(5):
            try:
                if at_once:
                    placed = await run_one_statement_units(self.engine, partial(_place_at_once, new_order=new_order))
                else:
                    placed = await run_unit_of_work(self.engine, partial(_place_in, new_order=new_order))
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
            return PlacedOrder(order=(await self._render([await self.session.get_one(Order, placed)]))[0],
                               replayed=True)  # fmt: skip
        raise ConflictError("Could not allocate an order number; please retry.")  # pragma: no cover

    # ---- reading ------------------------------------------------------------------------------

    async def get(self, order_id: int, principal: Principal) -> OrderRead:
        order = await self.session.scalar(select(Order).where(Order.id == order_id, *_visible_to(principal)))
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
        statement = select(Order).where(*_visible_to(principal))
        if status is not None:
            statement = statement.where(Order.status == status.value)
        if customer is not None:
            # an id or a username; digits may be either (a username may be all digits)
            named = CUSTOMER.c.username == customer
            if customer.isdigit() and int(customer) <= MAX_ROW_ID:
                named = or_(named, CUSTOMER.c.id == int(customer))
            statement = statement.where(Order.customer_id.in_(select(CUSTOMER.c.id).where(named)))
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
            items[row.order_id].append(_item_read(row))
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
        # the unit answers the order as it left it: no read-back through the session (3 round trips)
        return await run_unit_of_work(self.engine, partial(_cancel_in, order_id=order_id, principal=principal))

    async def advance(self, order_id: int, principal: Principal, status: OrderStatus) -> OrderRead:
        """Staff: one step along the lifecycle; anything else is 409."""
        if status == OrderStatus.CANCELLED:
            return (await self.cancel(order_id, principal))[0]
        await run_unit_of_work(self.engine, partial(_advance_in, order_id=order_id, principal=principal, status=status))
        return await self.get(order_id, principal)


# ---- units of work (synchronous Core, run by `run_unit_of_work`) ---------------------------------------

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
_CONTACT = Prepared(
    select(
        CUSTOMER.c.id,
        CUSTOMER.c.username,
        CUSTOMER.c.first_name,
        CUSTOMER.c.last_name,
        CUSTOMER.c.email,
        CUSTOMER.c.phone_number,
    ).where(CUSTOMER.c.id == bindparam("customer_id"))
)


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


def _place_in(connection: Connection, new_order: _NewOrder) -> PlacedOrder | int:
    """SQLite: reserve stock, write the order, its lines and its event; or the id of the order this key placed before.

    SQLite's transaction holds the database's one write lock from its first statement (`BEGIN IMMEDIATE`), so the
    stock is taken first and the order written at the names and prices its stock was taken at.
    """
    if new_order.key is not None and (earlier := _earlier_order(connection, new_order)) is not None:
        return earlier
    contact = _contact_of(connection, new_order.customer_id)
    return _write_order(connection, new_order, contact, _stock(reserve_stock, connection, new_order.quantities))


def _place_at_once(connection: Connection, new_order: _NewOrder) -> PlacedOrder | int:
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
    """The statement of `_place_at_once` for `lines` lines, built once: catalog's stock-taking expressions
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
    def of(new_order: _NewOrder, contact: CustomerContact, products: Mapping[int, ReservedProduct]) -> _OrderRows:
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
        """The order as answered once written: `item_ids` maps each line's product to the line's id."""
        event = msgspec.structs.replace(self.event, order_id=order_id)
        read = OrderRead(
            id=order_id,
            order_number=event.order_number,
            customer=event.customer.username,
            status=OrderStatus.PENDING,
            total_amount=event.total_amount,
            notes=event.notes,
            items=[
                OrderItemRead(
                    id=item_ids[line.product_id],
                    product=OrderProduct(id=line.product_id, name=line.name, price=line.unit_price),
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    subtotal=line.subtotal,
                )
                for line in event.items
            ],
            created_at=event.placed_at,
            updated_at=event.placed_at,
        )
        return PlacedOrder(order=read, event=event)


def _write_order(
    connection: Connection, new_order: _NewOrder, contact: CustomerContact, products: dict[int, ReservedProduct]
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


def _earlier_order(connection: Connection, new_order: _NewOrder) -> int | None:
    """The order placed earlier with this key (422 if the body differs); a key older than the window is freed."""
    existing = connection.execute(_BY_KEY, {"customer_id": new_order.customer_id, "key": new_order.key}).first()
    if existing is None:
        return None
    created_at = _aware(existing.created_at)
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
    rows = _CONTACT.rows(connection, {"customer_id": customer_id})
    if not rows:  # pragma: no cover - the token's owner was deleted mid-request
        raise NotFoundException(detail="No such customer.")
    return CustomerContact(*rows[0])


def _visible_to(principal: Principal) -> list[Any]:
    return [] if principal.is_staff else [ORDER.c.customer_id == principal.require_user_id()]


_CANCELLED_LINES = (
    select(
        ITEM.c.id,
        ITEM.c.product_id,
        ITEM.c.product_name,
        ITEM.c.quantity,
        ITEM.c.unit_price,
        ITEM.c.subtotal,
        PRODUCT.c.name.label("current_name"),
        PRODUCT.c.price.label("current_price"),
    )
    .join(PRODUCT, PRODUCT.c.id == ITEM.c.product_id)
    .where(ITEM.c.order_id == bindparam("order_id"))
    .order_by(ITEM.c.id)
)


def _cancel_in(connection: Connection, order_id: int, principal: Principal) -> tuple[OrderRead, OrderCancelled]:
    now = _now()
    cancelled = connection.execute(
        update(ORDER)
        .where(ORDER.c.id == order_id, ORDER.c.status.in_([s.value for s in CANCELLABLE]), *_visible_to(principal))
        .values(status=OrderStatus.CANCELLED.value, updated_at=now)
        .returning(ORDER.c.order_number, ORDER.c.customer_id, ORDER.c.total_amount, ORDER.c.notes, ORDER.c.created_at)
    ).first()
    if cancelled is None:
        _refuse(connection, order_id, principal, "cancelled", "only pending or confirmed orders can be cancelled")
    rows = connection.execute(_CANCELLED_LINES, {"order_id": order_id}).all()
    order_lines = [
        OrderLine(product_id=r.product_id, name=r.product_name, quantity=r.quantity,
                  unit_price=to_money(r.unit_price), subtotal=to_money(r.subtotal))
        for r in rows
    ]  # fmt: skip
    release_stock(connection, {line.product_id: line.quantity for line in order_lines})
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
    read = OrderRead(
        id=order_id,
        order_number=cancelled.order_number,
        customer=customer.username,
        status=OrderStatus.CANCELLED,
        total_amount=to_money(cancelled.total_amount),
        notes=cancelled.notes,
        items=[_item_read(r) for r in rows],
        created_at=_aware(cancelled.created_at),
        updated_at=now,
    )
    return read, event


def _advance_in(connection: Connection, order_id: int, principal: Principal, status: OrderStatus) -> None:
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
        select(ORDER.c.status).where(ORDER.c.id == order_id, *_visible_to(principal))
    ).scalar_one_or_none()
    if current is None:
        raise NotFoundException(detail=f"No order with id {order_id}.")
    raise ConflictError(
        f"The order is {current} and cannot be {target}: {rule}.", problem_type="/problems/order-status"
    )
