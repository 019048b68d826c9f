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
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, case, select, update

from shop_catalog.models import Product

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("InsufficientStock", "ReservedProduct", "Shortage", "StockLedger", "UnavailableProducts")

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


class StockLedger:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def reserve(self, quantities: Mapping[int, int]) -> dict[int, ReservedProduct]:
        """Take `quantities` ({product_id: units}) out of stock, all or none; returns name and price of each.

        Raises `UnavailableProducts` or `InsufficientStock`; the caller must then roll back its transaction.
        """
        await self._lock_in_id_order(quantities)
        wanted = case(dict(quantities), value=PRODUCT.c.id)
        reserved = await self.session.execute(
            update(PRODUCT)
            .where(
                PRODUCT.c.id.in_(list(quantities)), PRODUCT.c.is_active.is_(True), PRODUCT.c.stock_quantity >= wanted
            )
            .values(stock_quantity=PRODUCT.c.stock_quantity - wanted, updated_at=datetime.now(UTC))
            .returning(PRODUCT.c.id, PRODUCT.c.name, PRODUCT.c.price)
        )
        products = {row.id: ReservedProduct(row.id, row.name, row.price) for row in reserved}
        if len(products) < len(quantities):
            await self._explain_failure(quantities, products)
        return products

    async def _explain_failure(self, quantities: Mapping[int, int], reserved: Mapping[int, ReservedProduct]) -> None:
        missing = [product_id for product_id in quantities if product_id not in reserved]
        rows = {
            row.id: row
            for row in await self.session.execute(
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

    async def release(self, quantities: Mapping[int, int]) -> None:
        """Put units back (a cancelled order); products deactivated since still get their stock back."""
        if not quantities:
            return
        returned = case(dict(quantities), value=PRODUCT.c.id)
        await self._lock_in_id_order(quantities)
        await self.session.execute(
            update(PRODUCT)
            .where(PRODUCT.c.id.in_(list(quantities)))
            .values(stock_quantity=PRODUCT.c.stock_quantity + returned, updated_at=datetime.now(UTC))
        )

    async def _lock_in_id_order(self, quantities: Mapping[int, int]) -> None:
        """On PostgreSQL, lock the rows in ascending id order first, so two orders sharing products queue
        instead of deadlocking (a multi-row UPDATE locks in scan order). `NO KEY UPDATE` leaves the key-share
        locks of foreign-key checks (order lines referencing products) unblocked. SQLite has one writer at a
        time and needs nothing.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                select(PRODUCT.c.id)
                .where(PRODUCT.c.id.in_(list(quantities)))
                .order_by(PRODUCT.c.id)
                .with_for_update(key_share=True)  # FOR NO KEY UPDATE
            )
