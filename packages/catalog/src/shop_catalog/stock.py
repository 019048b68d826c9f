"""Stock reservation: the catalog owns `stock_quantity`; other contexts reserve and release through here.

A reservation is one conditional UPDATE for all the lines of an order (`stock_quantity >= wanted` per
row, checked in the database), so stock can never go negative or oversell whatever the concurrency,
and the number of statements does not grow with the number of lines. The caller's transaction
decides: roll it back and nothing was reserved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Integer, Table, bindparam, case, select, update

from shop_catalog.models import Product
from shop_kernel import Prepared

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ("InsufficientStock", "ReservedProduct", "Shortage", "UnavailableProducts", "release_stock", "reserve_stock")

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
    """Take `quantities` ({product_id: units}) out of stock, all or none; returns name and price of each.

    Runs in the caller's transaction (see `shop_kernel.run_unit_of_work`). Raises `UnavailableProducts`
    or `InsufficientStock`; the caller's transaction must then be rolled back.
    """
    _lock_in_id_order(connection, quantities)
    reserved = _reserve_statement(len(quantities)).rows(connection, _parameters(quantities))
    products = {product_id: ReservedProduct(product_id, name, price) for product_id, name, price in reserved}
    if len(products) < len(quantities):
        _explain_failure(connection, quantities, products)
    return products


@lru_cache(maxsize=128)
def _reserve_statement(lines: int) -> Prepared:
    """`UPDATE … SET stock = stock - CASE id WHEN :id_0 THEN :q_0 … END WHERE id IN (…) AND stock >= CASE … RETURNING`,
    built once per number of lines: a statement built per call costs more Python than the database work."""
    wanted = case(*((PRODUCT.c.id == bindparam(f"id_{i}"), bindparam(f"q_{i}", type_=Integer)) for i in range(lines)))
    return Prepared(
        update(PRODUCT)
        .where(
            PRODUCT.c.id.in_([bindparam(f"id_{i}") for i in range(lines)]),
            PRODUCT.c.is_active.is_(True),
            PRODUCT.c.stock_quantity >= wanted,
        )
        .values(stock_quantity=PRODUCT.c.stock_quantity - wanted, updated_at=bindparam("now"))
        .returning(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.price)
    )


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
    unavailable = sorted(pid for pid in missing if pid not in rows or not rows[pid].is_active)
    if unavailable:
        raise UnavailableProducts(unavailable)
    raise InsufficientStock(
        [Shortage(pid, rows[pid].name, quantities[pid], rows[pid].stock_quantity) for pid in sorted(missing)]
    )


def release_stock(connection: Connection, quantities: Mapping[int, int]) -> None:
    """Put units back (a cancelled order); products deactivated since still get their stock back."""
    if not quantities:
        return
    returned = case(dict(quantities), value=PRODUCT.c.id)
    _lock_in_id_order(connection, quantities)
    connection.execute(
        update(PRODUCT)
        .where(PRODUCT.c.id.in_(list(quantities)))
        .values(stock_quantity=PRODUCT.c.stock_quantity + returned, updated_at=datetime.now(UTC))
    )


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
