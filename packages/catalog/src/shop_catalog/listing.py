"""The product list at catalog scale: its filters, and how a page of them is read (decisions 98-99).

A page must cost about the same on a catalog of 1,000,000 products as on one of 2,000. Each `ordering`
has an index `(is_active, column, id)`, so the usual page is read in index order and stops after its
rows. Two filters can make that walk long where reading their few matches and sorting them is short:
a small category subtree, and (SQLite) a narrow price range. The databases cannot tell which case
they face (a subtree is a list of ids; SQLite, built without STAT4, guesses price ranges), so the
list counts, up to `large_subtree_links` rows, what the filter would have it read, and picks the
driver. The choice changes only how fast a page comes, never its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    Table,
    any_,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from shop_catalog.models import Product, product_category
from shop_kernel import FieldValidationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_catalog.cache import CatalogCache

__all__ = ("ListPlan", "ProductFilters", "choose_plan", "count_statement", "page_ids_statement")

PRODUCT = cast("Table", Product.__table__)
LINK = product_category
ORDERINGS = {"name": PRODUCT.c.name, "price": PRODUCT.c.price, "created_at": PRODUCT.c.created_at}

Driver = Literal["order", "subtree", "prices"]


@dataclass(frozen=True)
class ProductFilters:
    search: str | None = None
    category: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    is_active: bool | None = None
    ordering: str = "-created_at"

    def count_key(self, *, staff: bool) -> tuple[Any, ...]:
        """What the total of a list depends on: every filter but the ordering, and who is asking."""
        return (
            "products",
            staff,
            self.search,
            self.category,
            self.min_price,
            self.max_price,
            self.in_stock,
            self.is_active,
        )

    def order_column(self) -> tuple[Any, bool]:
        """The column to sort by, and whether descending; 400 for an unknown `ordering`."""
        column = ORDERINGS.get(self.ordering.removeprefix("-"))
        if column is None:
            choices = ", ".join(f"{name}, -{name}" for name in ORDERINGS)
            raise FieldValidationError({"ordering": [f"Choose one of: {choices}."]})
        return column, self.ordering.startswith("-")

    def order_by(self, *, sorted_after: bool = False) -> list[Any]:
        """Ties break on id. `sorted_after`: SQLite must sort the matches, not walk an index for the order."""
        column, descending = self.order_column()
        if sorted_after:
            column = _plus(column)
        if descending:
            return [column.desc(), PRODUCT.c.id.desc()]
        return [column.asc(), PRODUCT.c.id.asc()]


@dataclass(frozen=True)
class ListPlan:
    driver: Driver = "order"
    """`order`: walk the ordering's index, testing each product (a category by the product's own links).
    `subtree`: the products of a small subtree, from the link index, then sorted. `prices`: the products
    of a narrow price range, from the price index, then sorted (SQLite only)."""
    spelled_out: bool = False
    """SQLite: write the plan into the statement (unary `+` takes a term or a sort off the indexes), so it
    holds whether or not the database has statistics; PostgreSQL plans from its own, kept by autovacuum."""


def _plus(column: Any) -> Any:
    """SQLite's unary `+`: the same value, but no index is used for it."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def _linked_to(category_ids: list[int], *, spelled_out: bool) -> ColumnElement[bool]:
    """The product of the enclosing query has a link into `category_ids`, found from its own links (the
    primary key leads with product_id). OFFSET 0 keeps PostgreSQL from turning the test into a join of the
    whole subtree (it never flattens an EXISTS with an offset); SQLite (`spelled_out`) would otherwise look
    each subtree id up in the category index, once per product. PostgreSQL gets the ids as one array
    parameter: a big subtree's thousand bound values cost more to render than the page to read."""
    if spelled_out:
        in_subtree = _plus(LINK.c.category_id).in_(category_ids)
    else:
        in_subtree = LINK.c.category_id == any_(bindparam("subtree", category_ids, type_=ARRAY(BigInteger)))
    return exists(select(literal_column("1")).where(LINK.c.product_id == PRODUCT.c.id, in_subtree).offset(0))


def conditions(
    filters: ProductFilters, subtree: list[int] | None, *, staff: bool, plan: ListPlan | None = None
) -> list[Any]:
    """The WHERE terms of a list; without a plan, as the databases plan them best for a count."""
    spelled = plan is not None and plan.spelled_out
    sorted_after = plan is not None and plan.driver != "order"
    terms: list[Any] = []
    # `= true`, not `IS true`: PostgreSQL uses an index only for the former (the column is NOT NULL)
    is_active = _plus(PRODUCT.c.is_active) if spelled and sorted_after else PRODUCT.c.is_active
    if not staff:
        terms.append(is_active == true())
    if filters.is_active is not None:
        terms.append(is_active == filters.is_active)
    if filters.search:
        term = filters.search.strip()
        terms.append(
            PRODUCT.c.name.icontains(term, autoescape=True)
            | PRODUCT.c.description.icontains(term, autoescape=True)
            | PRODUCT.c.sku.icontains(term, autoescape=True)
        )
    if subtree is not None:
        if plan is not None and plan.driver != "subtree":
            terms.append(_linked_to(subtree, spelled_out=spelled))
        else:
            terms.append(PRODUCT.c.id.in_(select(LINK.c.product_id).where(LINK.c.category_id.in_(subtree))))
    # the price index is the driver's own (`prices`), or the order's (`order` by price); else SQLite keeps off it
    by_price = filters.order_column()[0] is PRODUCT.c.price
    price_indexed = plan is not None and (plan.driver == "prices" or (plan.driver == "order" and by_price))
    price = _plus(PRODUCT.c.price) if spelled and not price_indexed else PRODUCT.c.price
    if filters.min_price is not None:
        terms.append(price >= filters.min_price)
    if filters.max_price is not None:
        terms.append(price <= filters.max_price)
    if filters.in_stock is True:
        terms.append(PRODUCT.c.stock_quantity > 0)
    elif filters.in_stock is False:
        terms.append(PRODUCT.c.stock_quantity == 0)
    return terms


def page_ids_statement(
    filters: ProductFilters, subtree: list[int] | None, plan: ListPlan, *, staff: bool, limit: int, offset: int
) -> Select[Any]:
    terms = conditions(filters, subtree, staff=staff, plan=plan)
    order = filters.order_by(sorted_after=plan.spelled_out and plan.driver != "order")
    return select(PRODUCT.c.id).where(*terms).order_by(*order).limit(limit).offset(offset)


def count_statement(filters: ProductFilters, subtree: list[int] | None, *, staff: bool) -> Select[Any]:
    """Every match is visited by a count: the subtree as a join, which both databases do best."""
    return select(func.count()).select_from(PRODUCT).where(*conditions(filters, subtree, staff=staff))


async def choose_plan(
    session: AsyncSession,
    cache: CatalogCache,
    filters: ProductFilters,
    subtree: list[int] | None,
    *,
    staff: bool,
    generation: int,
) -> ListPlan:
    """Count, up to `cache.large_subtree_links` rows, what a filter would have the database read and sort;
    cached as totals are (decision 98), so a filter's first page pays for it and the next ones do not."""
    limit = cache.large_subtree_links
    sqlite = session.get_bind().dialect.name == "sqlite"

    async def is_small(key: tuple[Any, ...], rows: Select[Any]) -> bool:
        async def capped() -> int:
            return int(await session.scalar(select(func.count()).select_from(rows.limit(limit).subquery())) or 0)

        return await cache.count(key, capped, generation=generation) < limit

    if subtree is not None:
        links: Select[Any] = select(literal_column("1")).where(LINK.c.category_id.in_(subtree))
        if not subtree or await is_small(("subtree-links", filters.category), links):
            return ListPlan("subtree", spelled_out=sqlite)
    ranged = filters.min_price is not None or filters.max_price is not None
    if sqlite and ranged and filters.order_column()[0] is not PRODUCT.c.price:
        prices = ProductFilters(min_price=filters.min_price, max_price=filters.max_price)
        in_range: Select[Any] = select(literal_column("1")).where(*conditions(prices, None, staff=staff))
        if await is_small(("price-range", staff, filters.min_price, filters.max_price), in_range):
            return ListPlan("prices", spelled_out=True)
    return ListPlan("order", spelled_out=sqlite)
