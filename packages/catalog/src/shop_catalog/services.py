"""Catalog services: the tree, products, filters and analytics. Each write is one transaction of the request's
unit of work (`shop_kernel.Unit`), and drops the caches once it commits (`CatalogCache.writing`).

Longer than our ~350-line rule: `CategoryService` and `ProductService` share the tree (subtree ids, paths), the
cache invalidations and the product answer's builder; splitting them would make each import the other's
internals. The statements live elsewhere (`listing`, `search`, `direct`, `stock`, `bulk`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import Select, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shop_catalog.cache import CatalogCache, TreeSnapshot
from shop_catalog.listing import (
    RELEVANCE,
    ListShape,
    ProductFilters,
    choose_plan,
    count_statement,
    page_statement,
    page_with_total_statement,
    products_by_ids,
    statement_of,
    tier_size_statement,
    tier_statement,
)
from shop_catalog.models import Category, Product, product_category
from shop_catalog.queries import product_by_id, products_with_categories
from shop_catalog.schemas import (
    AveragePrice,
    CategoryNode,
    CategoryPatch,
    CategoryRef,
    CategoryWrite,
    ProductPatch,
    ProductRead,
    ProductWrite,
)
from shop_catalog.search import SearchQuery, indexed_words, tier_values, typo_variants
from shop_catalog.tree import CategoryTree
from shop_kernel import ConflictError, FieldValidationError, PageRequest, money_problem, to_money

if TYPE_CHECKING:
    from shop_kernel import Unit

__all__ = ("CategoryService", "ProductFilters", "ProductService", "StockChange")

CATEGORY = cast("Table", Category.__table__)
PRODUCT = cast("Table", Product.__table__)
_IDS_PER_STATEMENT = 1000
"""Bound parameters per `IN (...)` when reading products back by id (a bulk upload's 10,000 rows)."""
_COLUMN = {column.key: i for i, column in enumerate(products_with_categories("sqlite").selected_columns)}
_ID, _NAME, _DESCRIPTION, _PRICE, _SKU = (_COLUMN[k] for k in ("id", "name", "description", "price", "sku"))
_STOCK, _ACTIVE, _CREATED, _UPDATED = (_COLUMN[k] for k in ("stock_quantity", "is_active", "created_at", "updated_at"))
_CATEGORY_IDS = _COLUMN["category_ids"]


def _missing(kind: str, ids: Iterable[int]) -> str:
    listed = ", ".join(str(i) for i in sorted(set(ids)))
    return f"Unknown {kind} id(s): {listed}."


class CategoryService:
    def __init__(self, unit: Unit, cache: CatalogCache | None = None) -> None:
        self.unit = unit
        self.session = unit.session
        """For reads; writes go through `unit.transaction()`."""
        self.cache = cache or CatalogCache(ttl_seconds=0, count_ttl_seconds=0)
        self.tree = CategoryTree(self.session)

    async def page(
        self, paging: PageRequest, *, parent: int | None = None, roots_only: bool = False
    ) -> tuple[list[CategoryNode], int]:
        """A page of the category list from the tree snapshot: no query while the snapshot is fresh."""
        tree = await self.cache.tree(self.session)
        ids = tree.ordered
        if roots_only:
            ids = [i for i in ids if tree.nodes[i].parent_id is None]
        if parent is not None:
            ids = [i for i in ids if tree.nodes[i].parent_id == parent]
        window = ids[paging.offset : paging.offset + paging.page_size]
        return [_node(tree, i) for i in window], len(ids)

    async def get(self, category_id: int) -> CategoryNode:
        tree = await self._tree_with(category_id)
        return _node(tree, category_id)

    async def _tree_with(self, category_id: int) -> TreeSnapshot:
        """The snapshot, reloaded if a category created elsewhere since is missing from it; 404 if none."""
        tree = await self.cache.tree(self.session)
        if category_id not in tree.nodes:
            if await self.session.get(Category, category_id) is None:
                raise NotFoundException(detail=f"No category with id {category_id}.")
            tree = await self.cache.tree(self.session, must_have=[category_id])
        return tree

    async def _require_parent(self, parent_id: int | None) -> None:
        if parent_id is not None and await self.session.get(Category, parent_id) is None:
            raise FieldValidationError({"parent": [f'Invalid pk "{parent_id}" - object does not exist.']})

    async def create(self, data: CategoryWrite) -> CategoryNode:
        async with self.cache.writing(self.unit) as session:
            await self._require_parent(data.parent)
            category = Category(name=data.name.strip(), parent_id=data.parent)
            session.add(category)
            await session.flush()
            category_id = category.id
        return await self.get(category_id)  # after the commit: the snapshot is reloaded from committed rows

    async def update(self, category_id: int, data: CategoryWrite | CategoryPatch) -> CategoryNode:
        async with self.cache.writing(self.unit) as session:
            category = await session.get(Category, category_id)
            if category is None:
                raise NotFoundException(detail=f"No category with id {category_id}.")
            if data.parent is not msgspec.UNSET and data.parent != category.parent_id:
                await self._require_parent(data.parent)
                # checked against the database, never the snapshot: a stale tree must not allow a cycle
                if data.parent is not None and await self.tree.is_descendant(data.parent, of_id=category_id):
                    raise ConflictError(
                        "A category cannot be moved under itself or one of its descendants.",
                        problem_type="/problems/category-cycle",
                    )
                category.parent_id = data.parent
            if data.name is not msgspec.UNSET:
                category.name = data.name.strip()
        return await self.get(category_id)

    async def delete(self, category_id: int, *, cascade: bool) -> None:
        """Refuse to orphan children or unlink products unless asked; products themselves are never deleted."""
        async with self.cache.writing(self.unit) as session:
            if await session.get(Category, category_id) is None:
                raise NotFoundException(detail=f"No category with id {category_id}.")
            subtree = self.tree.descendants_of([category_id])
            ids = [row[0] for row in await session.execute(select(subtree.c.id))]
            if not cascade:
                has_children = len(ids) > 1
                has_products = await session.scalar(
                    select(func.count())
                    .select_from(product_category)
                    .where(product_category.c.category_id == category_id)
                )
                if has_children or has_products:
                    raise ConflictError(
                        "The category has subcategories or products; repeat with ?cascade=true to delete its "
                        "subtree (products are kept, only unlinked).",
                        problem_type="/problems/category-not-empty",
                    )
            await session.execute(delete(product_category).where(product_category.c.category_id.in_(ids)))
            await session.execute(delete(CATEGORY).where(CATEGORY.c.id.in_(ids)))

    async def average_price(self, category_id: int) -> AveragePrice:
        """Over the distinct active products of the subtree; cached for the snapshot's time-to-live."""
        if cached := self.cache.average(category_id):
            return cached
        generation = self.cache.generation
        tree = await self._tree_with(category_id)
        average, total = (
            await self.session.execute(
                select(func.avg(PRODUCT.c.price), func.count()).where(
                    PRODUCT.c.is_active, PRODUCT.c.id.in_(_products_in(tree.subtree(category_id)))
                )
            )
        ).one()
        result = AveragePrice(
            category=tree.nodes[category_id].name,
            category_path=tree.paths[category_id],
            average_price=float(to_money(Decimal(str(average)))) if average is not None else 0.0,
            total_products=int(total),
        )
        self.cache.remember_average(category_id, result, generation=generation)
        return result


def _node(tree: TreeSnapshot, category_id: int) -> CategoryNode:
    node = tree.nodes[category_id]
    return CategoryNode(
        id=node.id,
        name=node.name,
        parent=node.parent_id,
        children=[_node(tree, child) for child in tree.children.get(category_id, [])],
        full_path=tree.paths[category_id],
        created_at=node.created_at,
        updated_at=node.updated_at,
    )


def _products_in(category_ids: list[int]) -> Select[Any]:
    return select(product_category.c.product_id).where(product_category.c.category_id.in_(category_ids))


@dataclass(frozen=True)
class StockChange:
    product_id: int
    before: int
    after: int


class ProductService:
    def __init__(self, unit: Unit, cache: CatalogCache | None = None) -> None:
        self.unit = unit
        self.session = unit.session
        """For reads; writes go through `unit.transaction()`."""
        self.cache = cache or CatalogCache(ttl_seconds=0, count_ttl_seconds=0)

    # ---- reads -------------------------------------------------------------------------------

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def page(self, filters: ProductFilters, paging: PageRequest, *, staff: bool) -> tuple[list[ProductRead], int]:
        """A page of products with their categories in one statement, and its total (decision 98).

        One row past the page tells whether another page follows. When none does, the total is exact
        from the page itself; when one does, it is the filter's count, cached for a few seconds and never
        below what the page proves; on PostgreSQL, a count nobody keeps comes in the page's own statement. A
        page past the end is 404 from its own (empty) rows, never from a cached total.
        """
        filters.order_column()  # an unknown ordering is 400 before any query
        generation = self.cache.generation  # counts read before a write that comes after this are not kept
        subtree = None
        if filters.category is not None:
            tree = await self.cache.tree(self.session)
            subtree = tree.subtree(filters.category) if filters.category in tree.nodes else []
        reads, dialect, shape = self.cache.reads, self._dialect(), filters.shape(staff=staff)
        query = filters.query()
        if query is not None and query.typo_words:
            query = await self._with_typos(query, generation)
        values = filters.values(subtree, dialect, query)
        key = filters.count_key(staff=staff)
        rows: list[tuple[Any, ...]] = []
        counted: int | None = None  # the filter's exact count, when it came with the page

        async def total() -> int:
            return int(await reads.scalar(self.session, count_statement(shape, dialect), values) or 0)

        if subtree != [] and shape.ordering == RELEVANCE and query is not None:
            counted = await self.cache.count(key, total, generation=generation)
            rows = await self._by_relevance(query, shape, values, paging, counted)
        elif subtree != []:  # an unknown category lists nothing
            plan = await choose_plan(
                self.session, reads, self.cache, filters, values, staff=staff, generation=generation
            )
            params = {**values, "limit": paging.page_size + 1, "offset": paging.offset}
            # PostgreSQL: a total nobody keeps or is counting rides along in the page's statement, one round trip
            # instead of two (decision 157); SQLite answers both inline, with no round trip to save
            async with self.cache.counting(key, wanted=dialect == "postgresql") as fold:
                if fold:
                    rows = await reads.all(self.session, page_with_total_statement(shape, plan, dialect), params)
                    if rows:
                        counted = int(rows[0][-1])
                        rows = [row[:-1] for row in rows]
                        self.cache.remember_count(key, counted, generation=generation)
                else:
                    rows = await reads.all(self.session, page_statement(shape, plan, dialect), params)
        if not rows and paging.page > 1:
            raise NotFoundException(detail="Invalid page.")
        more = len(rows) > paging.page_size
        rows = rows[: paging.page_size]
        shown = paging.offset + len(rows)
        if not more:
            self.cache.remember_count(key, shown, generation=generation)
            return await self._render(rows), shown
        if counted is None:
            counted = await self.cache.count(key, total, generation=generation)
        return await self._render(rows), max(counted, shown + 1)

    async def _with_typos(self, query: SearchQuery, generation: int) -> SearchQuery:
        """The query with the indexed words one edit away from its long words, looked up once per word until
        the next catalog write (`CatalogCache.typos`)."""
        indexed: set[str] = set()
        unknown = []
        for word in query.typo_words:
            known = self.cache.typos(word)
            if known is None:
                unknown.append(word)
            else:
                indexed |= known
        if unknown:
            variants = {word: typo_variants(word) for word in unknown}
            every = sorted({v for found in variants.values() for v in found})
            rows = await self.cache.reads.all(self.session, indexed_words(self._dialect()), {"variants": every})
            found = {row[0] for row in rows}
            for word, candidates in variants.items():
                self.cache.remember_typos(word, frozenset(found.intersection(candidates)), generation=generation)
            indexed |= found
        return query.with_typos(indexed)

    async def _by_relevance(
        self, query: SearchQuery, shape: ListShape, values: dict[str, Any], paging: PageRequest, total: int
    ) -> list[tuple[Any, ...]]:
        """The page's products (and one more) tier by tier, best first (decision 172): each tier's statement reads
        only as far as the page goes, and a tier the page lies wholly past is only counted, up to the offset.

        Once the tiers read hold all `total` matches (the list's count), the later ones are known to be empty
        and are not read: a tier's statement walks the ids testing each product, and one with no product left
        (the description-only tier of a word every match has in its name) would otherwise walk them all."""
        reads, dialect = self.cache.reads, self._dialect()
        offset, wanted = paging.offset, paging.page_size + 1
        ids: list[int] = []
        before = 0  # the products of the tiers read to their end
        for tier in query.tiers():
            if not wanted or before >= total:
                break
            statement = statement_of(tier, dialect)
            params = {**values, **tier_values(query, tier, dialect)}
            page = {**params, "limit": wanted, "offset": offset}
            found = [row[0] for row in await reads.all(self.session, tier_statement(shape, statement, dialect), page)]
            if found:
                ids += found
                wanted -= len(found)
                before += offset + len(found)
                offset = 0
            elif offset:
                size = tier_size_statement(shape, statement, dialect)
                skipped = int(await reads.scalar(self.session, size, {**params, "cap": offset}) or 0)
                offset -= skipped
                before += skipped
        if not ids:
            return []
        rows = await reads.all(self.session, products_by_ids(dialect), {"ids": ids})
        position = {product_id: i for i, product_id in enumerate(ids)}
        return sorted(rows, key=lambda row: position[row[_ID]])

    async def get(self, product_id: int, *, staff: bool) -> ProductRead:
        statement = product_by_id(self._dialect())
        rows = await self.cache.reads.all(self.session, statement, {"product_id": product_id})
        if not rows or (not rows[0][_ACTIVE] and not staff):
            raise NotFoundException(detail=f"No product with id {product_id}.")
        return (await self._render(rows))[0]

    async def get_many(self, product_ids: Sequence[int]) -> list[ProductRead]:
        """Products as staff see them (inactive ones too), in the order of `product_ids` (each once)."""
        found: dict[int, ProductRead] = {}
        with_categories = products_with_categories(self._dialect())
        for start in range(0, len(product_ids), _IDS_PER_STATEMENT):
            chunk = product_ids[start : start + _IDS_PER_STATEMENT]
            rows = [tuple(row) for row in await self.session.execute(with_categories.where(PRODUCT.c.id.in_(chunk)))]
            found.update((product.id, product) for product in await self._render(rows))
        return [found[product_id] for product_id in product_ids if product_id in found]

    async def _render(self, rows: Sequence[tuple[Any, ...]]) -> list[ProductRead]:
        """Rows of `products_with_categories` (its column order) as the API shows them."""
        if not rows:
            return []
        linked = {
            row[_ID]: sorted(int(i) for i in row[_CATEGORY_IDS].split(",")) if row[_CATEGORY_IDS] else []
            for row in rows
        }
        tree = await self.cache.tree(self.session, must_have={c for ids in linked.values() for c in ids})
        refs = tree.refs
        for ids in linked.values():
            for c in ids:
                if c not in refs and c in tree.nodes:
                    node = tree.nodes[c]
                    refs[c] = CategoryRef(id=c, name=node.name, parent=node.parent_id, full_path=tree.paths[c])
        return [
            ProductRead(
                id=row[_ID],
                name=row[_NAME],
                description=row[_DESCRIPTION],
                price=row[_PRICE],  # Numeric(10, 2): whole cents as read, whatever the driver
                sku=row[_SKU],
                categories=[refs[c] for c in linked[row[_ID]] if c in refs],
                stock_quantity=row[_STOCK],
                is_active=bool(row[_ACTIVE]),
                created_at=row[_CREATED],
                updated_at=row[_UPDATED],
            )
            for row in rows
        ]

    # ---- writes ------------------------------------------------------------------------------

    async def missing_categories(self, ids: Iterable[int]) -> set[int]:
        wanted = set(ids)
        if not wanted:
            return set()
        found = await self.session.scalars(select(CATEGORY.c.id).where(CATEGORY.c.id.in_(wanted)))
        return wanted - set(found)

    async def taken_skus(self, skus: Iterable[str], *, except_id: int | None = None) -> dict[str, int]:
        """Lower-cased SKUs already in the catalog, with the id of the product that has each."""
        lowered = list({sku.lower() for sku in skus})
        taken: dict[str, int] = {}
        for start in range(0, len(lowered), 1000):
            chunk = lowered[start : start + 1000]
            statement = select(func.lower(PRODUCT.c.sku), PRODUCT.c.id).where(func.lower(PRODUCT.c.sku).in_(chunk))
            if except_id is not None:
                statement = statement.where(PRODUCT.c.id != except_id)
            taken.update({row[0]: row[1] for row in await self.session.execute(statement)})
        return taken

    async def _check(
        self, *, price: Decimal | None, sku: str | None, categories: list[int] | None, except_id: int | None = None
    ) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        if price is not None and (problem := money_problem(price)):
            errors["price"] = [problem]
        if sku is not None:
            if not sku.strip():
                errors["sku"] = ["This field may not be blank."]
            elif await self.taken_skus([sku.strip()], except_id=except_id):
                errors["sku"] = ["A product with this SKU already exists."]
        if categories and (missing := await self.missing_categories(categories)):
            errors["categories"] = [_missing("category", missing)]
        return errors

    async def create(self, data: ProductWrite) -> ProductRead:
        async with self.cache.writing(self.unit) as session:
            if errors := await self._check(price=data.price, sku=data.sku, categories=data.categories):
                raise FieldValidationError(errors)
            product = Product(
                name=data.name.strip(),
                description=data.description,
                price=to_money(data.price),
                sku=data.sku.strip(),
                stock_quantity=data.stock_quantity,
                is_active=data.is_active,
            )
            session.add(product)
            await self._flush_sku()  # a concurrent request may have taken the SKU since `_check`
            product_id = product.id
            await self._link(product_id, data.categories)
        return await self.get(product_id, staff=True)  # after the commit: what any reader now sees

    async def update(
        self, product_id: int, data: ProductWrite | ProductPatch
    ) -> tuple[ProductRead, StockChange | None]:
        async with self.cache.writing(self.unit) as session:
            product = await session.get(Product, product_id)
            if product is None:
                raise NotFoundException(detail=f"No product with id {product_id}.")
            values = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
            new_sku = "sku" in values and values["sku"].strip().lower() != product.sku.lower()
            errors = await self._check(
                price=values.get("price"),
                sku=values["sku"] if new_sku else None,
                categories=values.get("categories"),
                except_id=product_id,
            )
            if errors:
                raise FieldValidationError(errors)
            before = product.stock_quantity
            for field in ("name", "description", "sku"):
                if field in values:
                    setattr(product, field, values[field].strip() if field != "description" else values[field])
            if "price" in values:
                product.price = to_money(values["price"])
            if "stock_quantity" in values:
                product.stock_quantity = values["stock_quantity"]
            if "is_active" in values:
                product.is_active = values["is_active"]
            await self._flush_sku()  # before the link statements, which would flush it outside the SKU handling
            if "categories" in values:
                await session.execute(delete(product_category).where(product_category.c.product_id == product_id))
                await self._link(product_id, values["categories"])
            after = product.stock_quantity
        change = StockChange(product_id, before, after) if before != after else None
        return await self.get(product_id, staff=True), change

    async def delete(self, product_id: int) -> Literal["deleted", "deactivated"]:
        """Delete, or deactivate when order history references the product (the database says so: the DELETE
        runs in a savepoint, which its foreign-key violation rolls back alone)."""
        outcome: Literal["deleted", "deactivated"] = "deleted"
        async with self.cache.writing(self.unit) as session:
            if await session.get(Product, product_id) is None:
                raise NotFoundException(detail=f"No product with id {product_id}.")
            try:
                async with session.begin_nested():
                    await session.execute(delete(PRODUCT).where(PRODUCT.c.id == product_id))
            except IntegrityError:
                await session.execute(update(PRODUCT).where(PRODUCT.c.id == product_id).values(is_active=False))
                outcome = "deactivated"
        return outcome

    async def _link(self, product_id: int, category_ids: Iterable[int]) -> None:
        unique = sorted(set(category_ids))
        if unique:
            await self.session.execute(
                insert(product_category), [{"product_id": product_id, "category_id": c} for c in unique]
            )

    async def _flush_sku(self) -> None:
        """Flush the open transaction; a unique violation (the SKU index) is the client's 400, and the unit of
        work rolls the transaction back as the error leaves it."""
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise FieldValidationError({"sku": ["A product with this SKU already exists."]}) from exc
