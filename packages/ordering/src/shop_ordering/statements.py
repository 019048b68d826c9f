"""The statements that write an order, built once (per number of lines) with bound parameters: the SQLite unit's
INSERTs (run as `shop_kernel.Prepared` on the writer's sqlite3 connection), and PostgreSQL's one statement
(`placing_statement`, decision 160)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import JSON, Integer, String, bindparam, func, insert, literal_column, select, true
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB

from shop_catalog import StockTaking
from shop_kernel import Prepared, outbox_insert
from shop_ordering.units import ITEM, ORDER

__all__ = ("BY_KEY", "INSERT_ORDER", "insert_items", "placing_statement")

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
INSERT_ORDER = Prepared(insert(ORDER).returning(ORDER.c.id), _ORDER_COLUMNS)
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
def insert_items(lines: int) -> Prepared:
    """One multi-row INSERT for an order's lines (`product_id_0`, `quantity_0`, ...), built once per line count."""
    rows = [
        {column: bindparam(name, type_=ITEM.c[column].type) for column, name in _ITEM_SHARED.items()}
        | {column: bindparam(f"{column}_{i}", type_=ITEM.c[column].type) for column in _ITEM_COLUMNS}
        for i in range(lines)
    ]
    return Prepared(insert(ITEM).values(rows).returning(ITEM.c.product_id, ITEM.c.id))


BY_KEY = select(ORDER.c.id, ORDER.c.created_at, ORDER.c.request_fingerprint).where(
    ORDER.c.customer_id == bindparam("customer_id"), ORDER.c.idempotency_key == bindparam("key")
)


@lru_cache(maxsize=64)
def placing_statement(lines: int) -> Prepared:
    """The statement of `shop_ordering.placing.place_at_once` for `lines` lines, built once: catalog's
    stock-taking expressions (`StockTaking`), then the order (only if the stock was taken), its lines (from the
    products whose stock was taken), its event in the outbox (its key and payload given their order id by
    PostgreSQL), and as its answer the locked products, each with the order's id and its line's id (both NULL
    when nothing was written)."""
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
