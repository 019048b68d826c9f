"""The product list at catalog scale: its filters, and how a page of them is read (decisions 98-99).

A page must cost about the same on a catalog of 1,000,000 products as on one of 2,000. Each `ordering`
has an index `(is_active, column, id)`, so the usual page is read in index order and stops after its
rows. Two filters can make that walk long where reading their few matches and sorting them is short:
a small category subtree, and (SQLite) a narrow price range. The databases cannot tell which case
they face (a subtree is a list of ids; SQLite, built without STAT4, guesses price ranges), so the
list counts, up to `large_subtree_links` rows, what the filter would have it read, and picks the
driver. The choice changes only how fast a page comes, never its rows.

Longer than our ~350-line rule: each filter's statement, the plan that picks between them and the relevance
tiers' walk are one decision table, read together when a page is slow.

Every statement is built once per `ListShape` (which filters are present, the ordering, the plan, the
dialect) with bound parameters for the values, so a page nobody asked before pays no statement building or
cache-key generation, and `shop_catalog.direct` can run it straight on the driver (decision 145).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    any_,
    bindparam,
    exists,
    func,
    literal_column,
    not_,
    select,
    true,
)
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from shop_catalog.models import Product, product_category
from shop_catalog.queries import products_with_categories
from shop_catalog.search import (
    FTS,
    SearchQuery,
    Tier,
    found,
    matches,
    parse_search,
    search_values,
    sku_is,
    sku_starts,
)
from shop_kernel import FieldValidationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_catalog.cache import CatalogCache
    from shop_catalog.direct import DirectReads

__all__ = (
    "ListPlan",
    "ListShape",
    "ProductFilters",
    "choose_plan",
    "count_statement",
    "page_statement",
    "page_with_total_statement",
    "products_by_ids",
    "tier_statement",
)

PRODUCT = cast("Table", Product.__table__)
LINK = product_category
ORDERINGS = {"name": PRODUCT.c.name, "price": PRODUCT.c.price, "created_at": PRODUCT.c.created_at}

Driver = Literal["order", "subtree", "prices"]
RELEVANCE = "relevance"
"""The ordering of a list with `search` and no `ordering`: tiers of relevance, newest first within each."""


@dataclass(frozen=True)
class ProductFilters:
    search: str | None = None
    category: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    is_active: bool | None = None
    ordering: str = "-created_at"

    def query(self) -> SearchQuery | None:
        """The words of `search`; None when it has none (no search at all)."""
        return parse_search(self.search)

    def shape(self, *, staff: bool) -> ListShape:
        return ListShape(
            staff=staff,
            ordering=self.ordering,
            search=self.query() is not None,
            category=self.category is not None,
            min_price=self.min_price is not None,
            max_price=self.max_price is not None,
            in_stock=self.in_stock,
            is_active=self.is_active is not None,
        )

    def values(self, subtree: list[int] | None, dialect: str, query: SearchQuery | None = None) -> dict[str, Any]:
        """The bound values of this list's statements, by parameter name; `query`: `self.query()` with its typos."""
        values: dict[str, Any] = {
            "min_price": self.min_price,
            "max_price": self.max_price,
            "is_active": self.is_active,
            "subtree": subtree,
        }
        if query := query or self.query():
            values.update(search_values(query, dialect))
        return values

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
        """The column to sort by, and whether descending (id for relevance); 400 for an unknown `ordering`."""
        if self.ordering == RELEVANCE and self.query():
            return PRODUCT.c.id, True
        column = ORDERINGS.get(self.ordering.removeprefix("-"))
        if column is None:
            choices = ", ".join(f"{name}, -{name}" for name in ORDERINGS)
            raise FieldValidationError({"ordering": [f"Choose one of: {choices}."]})
        return column, self.ordering.startswith("-")


ORDERING_TERMS = {
    name: (ORDERINGS[name.removeprefix("-")], name.startswith("-"))
    for name in ("name", "-name", "price", "-price", "created_at", "-created_at")
}


@dataclass(frozen=True)
class ListShape:
    """What the SQL of a product list depends on besides its values: which filters are there, and how."""

    staff: bool
    ordering: str
    search: bool = False
    category: bool = False
    min_price: bool = False
    max_price: bool = False
    in_stock: bool | None = None
    is_active: bool = False
    """The staff-only `is_active` filter is given (its value is bound)."""

    def order_by(self, *, sorted_after: bool = False) -> list[Any]:
        """Ties break on id. `sorted_after`: SQLite must sort the matches, not walk an index for the order."""
        column, descending = ORDERING_TERMS[self.ordering]
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


def _ordered_by_price(shape: ListShape) -> bool:
    return shape.ordering in ("price", "-price")


def _plus(column: Any) -> Any:
    """SQLite's unary `+`: the same value, but no index is used for it."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def _in_subtree(column: Any, dialect: str, name: str = "subtree") -> ColumnElement[bool]:
    """`column` is one of the bound `subtree` ids. PostgreSQL gets them as one array parameter (a big subtree's
    thousand bound values cost more to render than the page to read); SQLite as a list expanded per call."""
    if dialect == "postgresql":
        return cast("ColumnElement[bool]", column == any_(bindparam(name, type_=ARRAY(BigInteger))))
    return cast("ColumnElement[bool]", column.in_(bindparam(name, expanding=True)))


def _linked_to(dialect: str, *, spelled_out: bool) -> ColumnElement[bool]:
    """The product of the enclosing query has a link into the subtree, found from its own links (the primary
    key leads with product_id). OFFSET 0 keeps PostgreSQL from turning the test into a join of the whole
    subtree (it never flattens an EXISTS with an offset); SQLite (`spelled_out`) would otherwise look each
    subtree id up in the category index, once per product."""
    category = _plus(LINK.c.category_id) if spelled_out else LINK.c.category_id
    in_subtree = _in_subtree(category, dialect)
    return exists(select(literal_column("1")).where(LINK.c.product_id == PRODUCT.c.id, in_subtree).offset(0))


def conditions(shape: ListShape, dialect: str, plan: ListPlan | None = None) -> list[Any]:
    """The WHERE terms of a list, values bound by name (`ProductFilters.values`); without a plan, as the
    databases plan them best for a count."""
    spelled = plan is not None and plan.spelled_out
    sorted_after = plan is not None and plan.driver != "order"
    terms: list[Any] = []
    # `= true`, not `IS true`: PostgreSQL uses an index only for the former (the column is NOT NULL)
    is_active = _plus(PRODUCT.c.is_active) if spelled and sorted_after else PRODUCT.c.is_active
    if not shape.staff:
        terms.append(is_active == true())
    if shape.is_active:
        terms.append(is_active == bindparam("is_active", type_=Boolean()))
    if shape.search:
        terms.append(found(dialect))
    if shape.category:
        if plan is not None and plan.driver != "subtree":
            terms.append(_linked_to(dialect, spelled_out=spelled))
        else:
            terms.append(PRODUCT.c.id.in_(select(LINK.c.product_id).where(_in_subtree(LINK.c.category_id, dialect))))
    # the price index is the driver's own (`prices`), or the order's (`order` by price); else SQLite keeps off it
    by_price = _ordered_by_price(shape)
    price_indexed = plan is not None and (plan.driver == "prices" or (plan.driver == "order" and by_price))
    price = _plus(PRODUCT.c.price) if spelled and not price_indexed else PRODUCT.c.price
    if shape.min_price:
        terms.append(price >= bindparam("min_price", type_=PRODUCT.c.price.type))
    if shape.max_price:
        terms.append(price <= bindparam("max_price", type_=PRODUCT.c.price.type))
    if shape.in_stock is True:
        terms.append(PRODUCT.c.stock_quantity > 0)
    elif shape.in_stock is False:
        terms.append(PRODUCT.c.stock_quantity == 0)
    return terms


@cache
def page_statement(shape: ListShape, plan: ListPlan, dialect: str) -> Select[Any]:
    """A page with its category ids: the page's ids first (bound `limit` and `offset`), so per-row work is
    done for the page only, never for every match."""
    order = shape.order_by(sorted_after=plan.spelled_out and plan.driver != "order")
    page_ids = (
        select(PRODUCT.c.id)
        .where(*conditions(shape, dialect, plan))
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer()))
        .offset(bindparam("offset", type_=Integer()))
        .subquery()
    )
    return products_with_categories(dialect).join(page_ids, page_ids.c.id == PRODUCT.c.id).order_by(*shape.order_by())


@cache
def count_statement(shape: ListShape, dialect: str) -> Select[Any]:
    """Every match is visited by a count: the subtree as a join, which both databases do best. A search counts
    its text matches from the index (SQLite's FTS5 drives the join), plus the SKUs that start with the query
    and match no text: one OR of the two would have SQLite test every product."""
    if not shape.search:
        return select(func.count()).select_from(PRODUCT).where(*conditions(shape, dialect))
    filters = conditions(replace(shape, search=False), dialect)
    if dialect == "sqlite":
        match = FTS.c.catalog_product_search.op("MATCH")(bindparam("search_match", type_=String()))
        text = select(func.count()).select_from(FTS.join(PRODUCT, PRODUCT.c.id == FTS.c.rowid)).where(match, *filters)
    else:
        text = select(func.count()).select_from(PRODUCT).where(matches(dialect, "search_match"), *filters)
    skus = (
        select(func.count())
        .select_from(PRODUCT)
        .where(sku_starts(dialect), not_(matches(dialect, "search_match")), *filters)
    )
    return select(text.scalar_subquery() + skus.scalar_subquery())


@cache
def page_with_total_statement(shape: ListShape, plan: ListPlan, dialect: str) -> Select[Any]:
    """The page, each row carrying the filter's exact count as its last column (decision 157): one round trip
    where the page and its total took two. The count is an uncorrelated scalar subquery, so PostgreSQL runs it
    once (an InitPlan) with its own plan, the one `count_statement` gets, while the page keeps the walk of its
    ordering's index; an empty page runs no count."""
    total = count_statement(shape, dialect).scalar_subquery().label("total")
    return page_statement(shape, plan, dialect).add_columns(total)


@cache
def _capped(kind: str, shape: ListShape, dialect: str) -> Select[Any]:
    """How many rows, up to the bound `cap`, a driver would have the database read: the subtree's links, the
    products in a price range, or all products the caller may see."""
    rows: Select[Any]
    if kind == "subtree":
        rows = select(literal_column("1")).where(_in_subtree(LINK.c.category_id, dialect))
    elif kind == "active":
        rows = select(literal_column("1")).where(*conditions(ListShape(staff=shape.staff, ordering="name"), dialect))
    else:
        in_range = ListShape(
            staff=shape.staff, ordering="-created_at", min_price=shape.min_price, max_price=shape.max_price
        )
        rows = select(literal_column("1")).where(*conditions(in_range, dialect))
    return select(func.count()).select_from(rows.limit(bindparam("cap", type_=Integer())).subquery())


async def choose_plan(
    session: AsyncSession,
    reads: DirectReads,
    cache: CatalogCache,
    filters: ProductFilters,
    values: dict[str, Any],
    *,
    staff: bool,
    generation: int,
) -> ListPlan:
    """Count, up to `cache.large_subtree_links` rows, what a filter would have the database read and sort;
    cached as totals are (decision 98), so a filter's first page pays for it and the next ones do not."""
    limit = cache.large_subtree_links
    dialect = session.get_bind().dialect.name
    sqlite = dialect == "sqlite"
    shape = filters.shape(staff=staff)

    async def capped(key: tuple[Any, ...], kind: str, cap: int) -> int:
        async def compute() -> int:
            return int(await reads.scalar(session, _capped(kind, shape, dialect), {**values, "cap": cap}) or 0)

        return await cache.count(key, compute, generation=generation)

    if shape.category and (
        not values["subtree"] or await capped(("subtree-links", filters.category), "subtree", limit) < limit
    ):
        return ListPlan("subtree", spelled_out=sqlite)
    ranged = shape.min_price or shape.max_price
    by_price = _ordered_by_price(shape)
    if sqlite and ranged and not by_price:
        in_range = await capped(("price-range", staff, filters.min_price, filters.max_price), "prices", limit)
        # Reading a range and sorting it beats walking the order's index only when the range is a small part
        # of the catalog: the walk reads about (offset + limit) / share rows, which for a wide range is a page
        # or two. So the range is read first when there are `price_range_share` times as many products.
        if in_range < limit:
            enough = 1 << max(in_range * cache.price_range_share, 1).bit_length()  # a power of two: few cache keys
            if await capped(("active-at-least", staff, enough), "active", enough) >= enough:
                return ListPlan("prices", spelled_out=True)
    return ListPlan("order", spelled_out=sqlite)


# ---- relevance (decision 172) -------------------------------------------------------------------------------

TierStatement = Literal["sku_exact", "sku_prefix", "text", "text_after"]


def statement_of(tier: Tier, dialect: str) -> TierStatement:
    """The SKU tiers have their own statements; the text tiers share one, with a different bound match (on
    PostgreSQL, the tiers after the first also leave out what the one before matched, `tier_before`)."""
    if tier in ("sku_exact", "sku_prefix"):
        return tier
    return "text_after" if dialect == "postgresql" and tier != "name" else "text"


@cache
def tier_statement(shape: ListShape, tier: TierStatement, dialect: str) -> Select[Any]:
    """The ids of one tier of relevance, newest first (bound `limit` and `offset`), with the list's other filters.

    A text tier walks its matches in id order and stops after the page: SQLite's FTS5 hands out rowids in
    order, so the index drives the join; PostgreSQL walks the primary key backwards testing the tsvector when
    the match is common, and reads the GIN index then sorts when it is rare. A product whose SKU starts with
    the query is in a SKU tier, so the text tiers leave it out."""
    sqlite = dialect == "sqlite"
    filters = conditions(replace(shape, search=False), dialect, ListPlan("order", spelled_out=sqlite))
    if tier == "sku_exact":
        ids = select(PRODUCT.c.id).where(sku_is(dialect), *filters)
    elif tier == "sku_prefix":
        ids = select(PRODUCT.c.id).where(sku_starts(dialect), not_(sku_is(dialect)), *filters)
    elif sqlite:
        match = FTS.c.catalog_product_search.op("MATCH")(bindparam("tier_match", type_=String()))
        ids = (
            select(PRODUCT.c.id)
            .select_from(FTS.join(PRODUCT, PRODUCT.c.id == FTS.c.rowid))
            .where(match, not_(sku_starts(dialect)), *filters)
        )
        return ids.order_by(FTS.c.rowid.desc()).limit(_limit()).offset(_offset())
    else:
        ids = select(PRODUCT.c.id).where(matches(dialect, "tier_match"), not_(sku_starts(dialect)), *filters)
        if tier == "text_after":
            ids = ids.where(not_(matches(dialect, "tier_before")))
    return ids.order_by(PRODUCT.c.id.desc()).limit(_limit()).offset(_offset())


@cache
def tier_size_statement(shape: ListShape, tier: TierStatement, dialect: str) -> Select[Any]:
    """How many products a tier has, up to the bound `cap`: the tiers a deep page skips whole."""
    ids = tier_statement(shape, tier, dialect).order_by(None).limit(bindparam("cap", type_=Integer())).offset(None)
    return select(func.count()).select_from(ids.subquery())


@cache
def products_by_ids(dialect: str) -> Select[Any]:
    """The products of the bound `ids`, with their category ids (in no order: the caller orders them)."""
    return products_with_categories(dialect).where(_in_subtree(PRODUCT.c.id, dialect, "ids"))


def _limit() -> Any:
    return bindparam("limit", type_=Integer())


def _offset() -> Any:
    return bindparam("offset", type_=Integer())
