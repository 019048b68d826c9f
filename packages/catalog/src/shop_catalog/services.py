"""Catalog services: the tree, products, filters and analytics. Each write owns its transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import Select, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shop_catalog.models import Category, Product, product_category
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
from shop_catalog.tree import CategoryTree
from shop_kernel import ConflictError, FieldValidationError, PageRequest, money_problem, to_money

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("CategoryService", "ProductFilters", "ProductService", "StockChange")

CATEGORY = cast("Table", Category.__table__)
PRODUCT = cast("Table", Product.__table__)
ORDERINGS = {"name": PRODUCT.c.name, "price": PRODUCT.c.price, "created_at": PRODUCT.c.created_at}


def _missing(kind: str, ids: Iterable[int]) -> str:
    listed = ", ".join(str(i) for i in sorted(set(ids)))
    return f"Unknown {kind} id(s): {listed}."


class CategoryService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tree = CategoryTree(session)

    async def page(
        self, paging: PageRequest, *, parent: int | None = None, roots_only: bool = False
    ) -> tuple[list[CategoryNode], int]:
        conditions: list[Any] = []
        if roots_only:
            conditions.append(CATEGORY.c.parent_id.is_(None))
        if parent is not None:
            conditions.append(CATEGORY.c.parent_id == parent)
        count = await self.session.scalar(select(func.count()).select_from(CATEGORY).where(*conditions)) or 0
        page = await self.session.execute(
            select(CATEGORY.c.id)
            .where(*conditions)
            .order_by(CATEGORY.c.name, CATEGORY.c.id)
            .limit(paging.page_size)
            .offset(paging.offset)
        )
        return await self._nodes([row.id for row in page]), count

    async def get(self, category_id: int) -> CategoryNode:
        nodes = await self._nodes([category_id])
        if not nodes:
            raise NotFoundException(detail=f"No category with id {category_id}.")
        return nodes[0]

    async def _nodes(self, ids: Sequence[int]) -> list[CategoryNode]:
        """Each category with its full subtree: two queries whatever the depth or page size."""
        if not ids:
            return []
        rows = await self.tree.subtree_rows(ids)
        by_id = {row.id: row for row in rows}
        children: dict[int | None, list[Any]] = {}
        for row in rows:
            children.setdefault(row.parent_id, []).append(row)
        paths = await self.tree.paths(ids)

        def build(row: Any, path: str) -> CategoryNode:
            return CategoryNode(
                id=row.id,
                name=row.name,
                parent=row.parent_id,
                children=[build(child, f"{path} > {child.name}") for child in children.get(row.id, [])],
                full_path=path,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )

        return [build(by_id[i], paths[i]) for i in ids if i in by_id]

    async def _require_parent(self, parent_id: int | None) -> None:
        if parent_id is not None and await self.session.get(Category, parent_id) is None:
            raise FieldValidationError({"parent": [f'Invalid pk "{parent_id}" - object does not exist.']})

    async def create(self, data: CategoryWrite) -> CategoryNode:
        await self._require_parent(data.parent)
        category = Category(name=data.name.strip(), parent_id=data.parent)
        self.session.add(category)
        await self.session.flush()
        category_id = category.id
        await self.session.commit()
        return await self.get(category_id)

    async def update(self, category_id: int, data: CategoryWrite | CategoryPatch) -> CategoryNode:
        category = await self.session.get(Category, category_id)
        if category is None:
            raise NotFoundException(detail=f"No category with id {category_id}.")
        if data.parent is not msgspec.UNSET and data.parent != category.parent_id:
            await self._require_parent(data.parent)
            if data.parent is not None and await self.tree.is_descendant(data.parent, of_id=category_id):
                raise ConflictError(
                    "A category cannot be moved under itself or one of its descendants.",
                    problem_type="/problems/category-cycle",
                )
            category.parent_id = data.parent
        if data.name is not msgspec.UNSET:
            category.name = data.name.strip()
        await self.session.commit()
        return await self.get(category_id)

    async def delete(self, category_id: int, *, cascade: bool) -> None:
        """Refuse to orphan children or unlink products unless asked; products themselves are never deleted."""
        if await self.session.get(Category, category_id) is None:
            raise NotFoundException(detail=f"No category with id {category_id}.")
        subtree = self.tree.descendants_of([category_id])
        ids = [row[0] for row in await self.session.execute(select(subtree.c.id))]
        if not cascade:
            has_children = len(ids) > 1
            has_products = await self.session.scalar(
                select(func.count()).select_from(product_category).where(product_category.c.category_id == category_id)
            )
            if has_children or has_products:
                raise ConflictError(
                    "The category has subcategories or products; repeat with ?cascade=true to delete its subtree "
                    "(products are kept, only unlinked).",
                    problem_type="/problems/category-not-empty",
                )
        await self.session.execute(delete(product_category).where(product_category.c.category_id.in_(ids)))
        await self.session.execute(delete(CATEGORY).where(CATEGORY.c.id.in_(ids)))
        await self.session.commit()

    async def average_price(self, category_id: int) -> AveragePrice:
        category = await self.session.get(Category, category_id)
        if category is None:
            raise NotFoundException(detail=f"No category with id {category_id}.")
        in_subtree = _products_in_subtree(category_id)
        average, total = (
            await self.session.execute(
                select(func.avg(PRODUCT.c.price), func.count()).where(PRODUCT.c.is_active, PRODUCT.c.id.in_(in_subtree))
            )
        ).one()
        path = (await self.tree.paths([category_id]))[category_id]
        return AveragePrice(
            category=category.name,
            category_path=path,
            average_price=float(to_money(Decimal(str(average)))) if average is not None else 0.0,
            total_products=int(total),
        )


def _products_in_subtree(category_id: int) -> Select[Any]:
    subtree = CategoryTree.descendants_of([category_id])
    return select(product_category.c.product_id).where(product_category.c.category_id.in_(select(subtree.c.id)))


@dataclass(frozen=True)
class ProductFilters:
    search: str | None = None
    category: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    is_active: bool | None = None
    ordering: str = "-created_at"

    def order_by(self) -> list[Any]:
        descending = self.ordering.startswith("-")
        column = ORDERINGS.get(self.ordering.removeprefix("-"))
        if column is None:
            choices = ", ".join(f"{name}, -{name}" for name in ORDERINGS)
            raise FieldValidationError({"ordering": [f"Choose one of: {choices}."]})
        if descending:
            return [column.desc(), PRODUCT.c.id.desc()]
        return [column.asc(), PRODUCT.c.id.asc()]


@dataclass(frozen=True)
class StockChange:
    product_id: int
    before: int
    after: int


class ProductService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tree = CategoryTree(session)

    # ---- reads -------------------------------------------------------------------------------

    def _conditions(self, filters: ProductFilters, *, staff: bool) -> list[Any]:
        conditions: list[Any] = []
        if not staff:
            conditions.append(PRODUCT.c.is_active.is_(True))
        if filters.is_active is not None:
            conditions.append(PRODUCT.c.is_active.is_(filters.is_active))
        if filters.search:
            term = filters.search.strip()
            conditions.append(
                PRODUCT.c.name.icontains(term, autoescape=True)
                | PRODUCT.c.description.icontains(term, autoescape=True)
                | PRODUCT.c.sku.icontains(term, autoescape=True)
            )
        if filters.category is not None:
            conditions.append(PRODUCT.c.id.in_(_products_in_subtree(filters.category)))
        if filters.min_price is not None:
            conditions.append(PRODUCT.c.price >= filters.min_price)
        if filters.max_price is not None:
            conditions.append(PRODUCT.c.price <= filters.max_price)
        if filters.in_stock is True:
            conditions.append(PRODUCT.c.stock_quantity > 0)
        elif filters.in_stock is False:
            conditions.append(PRODUCT.c.stock_quantity == 0)
        return conditions

    async def page(self, filters: ProductFilters, paging: PageRequest, *, staff: bool) -> tuple[list[ProductRead], int]:
        """A page of products: four queries (count, page, links, paths) whatever the page size."""
        order = filters.order_by()
        conditions = self._conditions(filters, staff=staff)
        count = await self.session.scalar(select(func.count()).select_from(PRODUCT).where(*conditions)) or 0
        rows = list(
            await self.session.execute(
                select(PRODUCT).where(*conditions).order_by(*order).limit(paging.page_size).offset(paging.offset)
            )
        )
        return await self._render(rows), count

    async def get(self, product_id: int, *, staff: bool) -> ProductRead:
        row = (await self.session.execute(select(PRODUCT).where(PRODUCT.c.id == product_id))).first()
        if row is None or (not row.is_active and not staff):
            raise NotFoundException(detail=f"No product with id {product_id}.")
        return (await self._render([row]))[0]

    async def _render(self, rows: Sequence[Any]) -> list[ProductRead]:
        if not rows:
            return []
        links = await self.session.execute(
            select(product_category.c.product_id, CATEGORY.c.id, CATEGORY.c.name, CATEGORY.c.parent_id)
            .join(CATEGORY, CATEGORY.c.id == product_category.c.category_id)
            .where(product_category.c.product_id.in_([row.id for row in rows]))
            .order_by(CATEGORY.c.id)
        )
        by_product: dict[int, list[Any]] = {}
        for link in links:
            by_product.setdefault(link.product_id, []).append(link)
        paths = await self.tree.paths({link.id for group in by_product.values() for link in group})
        return [
            ProductRead(
                id=row.id,
                name=row.name,
                description=row.description,
                price=to_money(row.price),
                sku=row.sku,
                categories=[
                    CategoryRef(id=c.id, name=c.name, parent=c.parent_id, full_path=paths[c.id])
                    for c in by_product.get(row.id, [])
                ],
                stock_quantity=row.stock_quantity,
                is_active=row.is_active,
                created_at=row.created_at,
                updated_at=row.updated_at,
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
        self.session.add(product)
        await self.session.flush()
        product_id = product.id
        await self._link(product_id, data.categories)
        await self._commit_sku()
        return await self.get(product_id, staff=True)

    async def update(
        self, product_id: int, data: ProductWrite | ProductPatch
    ) -> tuple[ProductRead, StockChange | None]:
        product = await self.session.get(Product, product_id)
        if product is None:
            raise NotFoundException(detail=f"No product with id {product_id}.")
        values = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        errors = await self._check(
            price=values.get("price"),
            sku=values["sku"] if "sku" in values and values["sku"].strip().lower() != product.sku.lower() else None,
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
        if "categories" in values:
            await self.session.execute(delete(product_category).where(product_category.c.product_id == product_id))
            await self._link(product_id, values["categories"])
        after = product.stock_quantity
        await self._commit_sku()
        change = StockChange(product_id, before, after) if before != after else None
        return await self.get(product_id, staff=True), change

    async def delete(self, product_id: int) -> Literal["deleted", "deactivated"]:
        """Delete, or deactivate when order history references the product (the database says so)."""
        if await self.session.get(Product, product_id) is None:
            raise NotFoundException(detail=f"No product with id {product_id}.")
        try:
            await self.session.execute(delete(PRODUCT).where(PRODUCT.c.id == product_id))
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()
            await self.session.execute(update(PRODUCT).where(PRODUCT.c.id == product_id).values(is_active=False))
            await self.session.commit()
            return "deactivated"
        return "deleted"

    async def _link(self, product_id: int, category_ids: Iterable[int]) -> None:
        unique = sorted(set(category_ids))
        if unique:
            await self.session.execute(
                insert(product_category), [{"product_id": product_id, "category_id": c} for c in unique]
            )

    async def _commit_sku(self) -> None:
        try:
            await self.session.commit()
        except IntegrityError as exc:
            await self.session.rollback()
            raise FieldValidationError({"sku": ["A product with this SKU already exists."]}) from exc
