"""Stock reservation: the catalog owns `stock_quantity`; other contexts reserve and release through here.

A reservation is one conditional UPDATE for all the lines of an order (`stock_quantity >= wanted` per
row, checked in the database), so stock can never go negative or oversell whatever the concurrency,
and the number of statements does not grow with the number of lines. The caller's transaction
decides: roll it back and nothing was reserved.

SQLite takes the stock first (`reserve_stock`), in its one writer's transaction. On PostgreSQL an UPDATE's row
locks would be held until the caller's COMMIT, and every order for a popular product would queue on its row;
so the caller reads the products without a lock (`check_stock`) and the taking of the stock is part of the
caller's one statement, run outside a transaction (`StockTaking`, decision 160): the rows are locked only while
PostgreSQL runs that statement, and the caller's rows that reference the products (order lines) are written
after the stock was taken, in the same statement, so their foreign-key checks never meet another order's lock
on a hot product.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Integer,
    Numeric,
    String,
    Table,
    bindparam,
    case,
    column,
    func,
    select,
    update,
    values,
)

from shop_catalog.models import Product
from shop_kernel import Prepared

if TYPE_CHECKING:
    from sqlalchemy import CTE, Connection
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = (
    "InsufficientStock",
    "ReservedProduct",
    "Shortage",
    "StockTaking",
    "UnavailableProducts",
    "check_stock",
    "current_products",
    "release_stock",
    "reserve_stock",
)

PRODUCT = cast("Table", Product.__table__)


@dataclass(frozen=True)
class ReservedProduct:
    id: int
    name: str
    price: Decimal


@dataclass(frozen=True)
class Shortage:
    product_id: int
    name: str
    requested: int
    available: int


class InsufficientStock(Exception):
    def __init__(self, shortages: list[Shortage]) -> None:
        super().__init__(shortages)
        self.shortages = shortages


class UnavailableProducts(Exception):
    """Products that do not exist or are not for sale."""

    def __init__(self, product_ids: list[int]) -> None:
        super().__init__(product_ids)
        self.product_ids = product_ids


def reserve_stock(connection: Connection, quantities: Mapping[int, int]) -> dict[int, ReservedProduct]:
    """Take `quantities` ({product_id: units}) out of stock, all or none; returns name and price of each,
    as the rows were when their stock was taken.

    One statement, which on PostgreSQL locks the rows (in ascending id order when there are several, see
    `_reserve_statement`) until the caller's transaction ends. Runs in the caller's transaction (see
    `shop_kernel.run_unit_of_work`). Raises `UnavailableProducts` or `InsufficientStock`; the caller's
    transaction must then be rolled back.
    """
    ordered_locks = connection.dialect.name == "postgresql" and len(quantities) > 1
    reserved = _reserve_statement(len(quantities), ordered_locks).rows(connection, _parameters(quantities))
    products = {product_id: ReservedProduct(product_id, name, price) for product_id, name, price in reserved}
    if len(products) < len(quantities):
        _explain_failure(connection, quantities, products)
    return products


def check_stock(connection: Connection, quantities: Mapping[int, int]) -> dict[int, ReservedProduct]:
    """Name and price of each product, read without a lock; raises what `reserve_stock` would if it ran now.

    Takes nothing: the stock may change before `reserve_stock`, which decides. A caller that wrote rows from
    these names and prices compares them with `reserve_stock`'s, which are the ones its stock was taken at.
    """
    return _servable(quantities, _check_statement(len(quantities)).rows(connection, _parameters(quantities)))


@lru_cache(maxsize=128)
def _check_statement(lines: int) -> Prepared:
    return Prepared(
        select(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.price, PRODUCT.c.is_active, PRODUCT.c.stock_quantity).where(
            PRODUCT.c.id.in_([bindparam(f"id_{i}") for i in range(lines)])
        )
    )


@lru_cache(maxsize=256)
def _reserve_statement(lines: int, ordered_locks: bool) -> Prepared:
    """`UPDATE … SET stock = stock - CASE id WHEN :id_0 THEN :q_0 … END WHERE id IN (…) AND stock >= CASE … RETURNING`,
    built once per number of lines: a statement built per call costs more Python than the database work.

    `ordered_locks` (PostgreSQL, several lines): the rows are first locked in ascending id order by a
    `SELECT … ORDER BY id FOR NO KEY UPDATE` in a WITH clause of the same statement, so two orders sharing
    products queue instead of deadlocking (a multi-row UPDATE alone locks in scan order), in one round trip.
    PostgreSQL locks a `SELECT … ORDER BY … FOR …`'s rows after sorting them, and the UPDATE only touches rows
    the WITH clause has returned, hence already locked. `NO KEY UPDATE` leaves the key-share locks of
    foreign-key checks (order lines referencing products) unblocked. SQLite has one writer at a time.
    """
    ids: list[BindParameter[Any]] = [bindparam(f"id_{i}") for i in range(lines)]
    wanted = case(*((PRODUCT.c.id == bindparam(f"id_{i}"), bindparam(f"q_{i}", type_=Integer)) for i in range(lines)))
    statement = update(PRODUCT).where(PRODUCT.c.id.in_(ids))
    if ordered_locks:
        locked = (
            select(PRODUCT.c.id)
            .where(PRODUCT.c.id.in_(ids))
            .order_by(PRODUCT.c.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
            .cte("locked")
        )
        statement = update(PRODUCT).where(PRODUCT.c.id == locked.c.id)
    return Prepared(
        statement.where(PRODUCT.c.is_active.is_(True), PRODUCT.c.stock_quantity >= wanted)
        .values(stock_quantity=PRODUCT.c.stock_quantity - wanted, updated_at=bindparam("now"))
        .returning(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.price)
    )


@dataclass(frozen=True)
class StockTaking:
    """The taking of an order's stock as common table expressions, for a caller's one statement (PostgreSQL).

    - `wanted` (`id`, `quantity`, `price`, `name`): each line, with the name and price the caller read
      (`check_stock`) and wrote into its own rows;
    - `locked` (`id`, `name`, `price`, `is_active`, `stock_quantity`): the products, locked in ascending id order
      (`FOR NO KEY UPDATE`, see `_reserve_statement`), as they are now;
    - `verdict` (`taken`, boolean, one row): every line's product is active, has the stock, and still has the
      name and price the caller read;
    - `taken` (`id`): the UPDATE, which takes every line's stock when the verdict is yes and none otherwise.

    The caller writes its rows only where `verdict.taken`, selects from `locked` to learn why not (pass those rows to
    `judge`), and runs the statement outside a transaction: PostgreSQL commits it, or none of it, as it ends.
    Built once per number of lines (`StockTaking.of`); `parameters` fills its bind parameters.
    """

    lines: int
    wanted: CTE
    locked: CTE
    verdict: CTE
    taken: CTE

    @staticmethod
    @lru_cache(maxsize=64)
    def of(lines: int) -> StockTaking:
        ids: list[BindParameter[Any]] = [bindparam(f"id_{i}", type_=BigInteger) for i in range(lines)]
        wanted = (
            values(
                column("id", BigInteger),
                column("quantity", Integer),
                column("price", Numeric(10, 2)),
                column("name", String),
                name="wanted",
            )
            .data(
                [
                    (
                        ids[i],
                        bindparam(f"q_{i}", type_=Integer),
                        bindparam(f"price_{i}", type_=Numeric(10, 2)),
                        bindparam(f"name_{i}", type_=String),
                    )
                    for i in range(lines)
                ]
            )
            .cte("wanted")
        )
        locked = (
            select(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.price, PRODUCT.c.is_active, PRODUCT.c.stock_quantity)
            .where(PRODUCT.c.id.in_(ids))
            .order_by(PRODUCT.c.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
            .cte("locked")
        )
        verdict = (
            select((func.count() == lines).label("taken"))
            .select_from(locked.join(wanted, wanted.c.id == locked.c.id))
            .where(
                locked.c.is_active.is_(True),
                locked.c.stock_quantity >= wanted.c.quantity,
                locked.c.price == wanted.c.price,
                locked.c.name == wanted.c.name,
            )
            .cte("verdict")
        )
        taken = (
            update(PRODUCT)
            .where(PRODUCT.c.id == wanted.c.id, verdict.c.taken, PRODUCT.c.stock_quantity >= wanted.c.quantity)
            .values(stock_quantity=PRODUCT.c.stock_quantity - wanted.c.quantity, updated_at=bindparam("now"))
            .returning(PRODUCT.c.id)
            .cte("taken")
        )
        return StockTaking(lines, wanted, locked, verdict, taken)

    @staticmethod
    def parameters(quantities: Mapping[int, int], read: Mapping[int, ReservedProduct]) -> dict[str, Any]:
        """The bind parameters for `quantities` ({product_id: units}) at the names and prices in `read`."""
        parameters = _parameters(quantities)
        for i, product_id in enumerate(quantities):
            parameters[f"price_{i}"] = read[product_id].price
            parameters[f"name_{i}"] = read[product_id].name
        return parameters

    @staticmethod
    def judge(
        quantities: Mapping[int, int], locked: list[tuple[int, str, Decimal, bool, int]]
    ) -> dict[int, ReservedProduct]:
        """Why the stock was not taken, from the `locked` rows (`id`, `name`, `price`, `is_active`, `stock_quantity`):
        raises `UnavailableProducts` or `InsufficientStock`; or, if every line could have been served, a name or
        price had changed since the caller read it: returns them as they are now, to place the order again at."""
        return _servable(quantities, locked)


def _parameters(quantities: Mapping[int, int]) -> dict[str, Any]:
    parameters: dict[str, Any] = {"now": datetime.now(UTC)}
    for i, (product_id, units) in enumerate(quantities.items()):
        parameters[f"id_{i}"] = product_id
        parameters[f"q_{i}"] = units
    return parameters


def _explain_failure(
    connection: Connection, quantities: Mapping[int, int], reserved: Mapping[int, ReservedProduct]
) -> None:
    missing = [product_id for product_id in quantities if product_id not in reserved]
    rows = {
        row.id: row
        for row in connection.execute(
            select(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.stock_quantity, PRODUCT.c.is_active).where(
                PRODUCT.c.id.in_(missing)
            )
        )
    }
    _refuse(quantities, {pid: (row.name, row.is_active, row.stock_quantity) for pid, row in rows.items()}, missing)


def _servable(quantities: Mapping[int, int], rows: Sequence[tuple[Any, ...]]) -> dict[int, ReservedProduct]:
    """Name and price of each product in `rows` (`id`, `name`, `price`, `is_active`, `stock_quantity`), or the refusal
    of `_refuse` if any line's product is unknown, inactive or short of its units."""
    found = {pid: (name, active, stock) for pid, name, _price, active, stock in rows}
    short = [pid for pid, units in quantities.items() if pid not in found or not found[pid][1] or found[pid][2] < units]
    _refuse(quantities, found, short)
    return {pid: ReservedProduct(pid, name, price) for pid, name, price, _active, _stock in rows}


def _refuse(quantities: Mapping[int, int], found: Mapping[int, tuple[str, bool, int]], refused: list[int]) -> None:
    """Raise for the `refused` products: `UnavailableProducts` if any is unknown or inactive (`found` holds each
    product's name, is_active and stock), else `InsufficientStock` for all of them. Nothing refused, no raise."""
    refused = sorted(refused)
    if unavailable := [pid for pid in refused if pid not in found or not found[pid][1]]:
        raise UnavailableProducts(unavailable)
    if refused:
        raise InsufficientStock([Shortage(pid, found[pid][0], quantities[pid], found[pid][2]) for pid in refused])


def release_stock(connection: Connection, quantities: Mapping[int, int]) -> dict[int, ReservedProduct]:
    """Put units back (a cancelled order); products deactivated since still get their stock back. Returns each
    product's name and price as they are now."""
    if not quantities:
        return {}
    returned = case(dict(quantities), value=PRODUCT.c.id)
    _lock_in_id_order(connection, quantities)
    rows = connection.execute(
        update(PRODUCT)
        .where(PRODUCT.c.id.in_(list(quantities)))
        .values(stock_quantity=PRODUCT.c.stock_quantity + returned, updated_at=datetime.now(UTC))
        .returning(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.price)
    )
    return {pid: ReservedProduct(pid, name, price) for pid, name, price in rows}


async def current_products(session: AsyncSession, product_ids: Iterable[int]) -> dict[int, ReservedProduct]:
    """Name and price of each product as they are now, active or not (an order shows what it bought as it is today)."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    rows = await session.execute(select(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.price).where(PRODUCT.c.id.in_(ids)))
    return {pid: ReservedProduct(pid, name, price) for pid, name, price in rows}


def _lock_in_id_order(connection: Connection, quantities: Mapping[int, int]) -> None:
    """On PostgreSQL, lock the rows in ascending id order first, so two orders sharing products queue
    instead of deadlocking (a multi-row UPDATE locks in scan order). `NO KEY UPDATE` leaves the key-share
    locks of foreign-key checks (order lines referencing products) unblocked. SQLite has one writer at a
    time and needs nothing.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(PRODUCT.c.id)
            .where(PRODUCT.c.id.in_(list(quantities)))
            .order_by(PRODUCT.c.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
        )
