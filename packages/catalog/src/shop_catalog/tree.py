"""Reading the category tree with recursive CTEs: portable (SQLite and PostgreSQL), never stale."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CTE, Select, Table, literal, select

from shop_catalog.models import Category

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("PATH_SEPARATOR", "CategoryTree")

PATH_SEPARATOR = " > "
CATEGORY = cast("Table", Category.__table__)


class CategoryTree:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def descendants_of(root_ids: Iterable[int] | Select[Any], *, name: str = "subtree") -> CTE:
        """A CTE of the ids (and parents) of the given categories and everything below them."""
        category = CATEGORY
        start = root_ids if isinstance(root_ids, Select) else list(root_ids)
        base = select(category.c.id, category.c.parent_id).where(category.c.id.in_(start))
        cte = base.cte(name, recursive=True)
        return cte.union_all(select(category.c.id, category.c.parent_id).where(category.c.parent_id == cte.c.id))

    async def paths(self, category_ids: Iterable[int]) -> dict[int, str]:
        """`"Electronics > Smartphones"` for each id, in one query whatever the depth."""
        ids = set(category_ids)
        if not ids:
            return {}
        category = CATEGORY
        base = select(
            category.c.id.label("start_id"),
            category.c.parent_id,
            category.c.name,
            literal(0).label("depth"),
        ).where(category.c.id.in_(ids))
        up = base.cte("ancestry", recursive=True)
        up = up.union_all(
            select(up.c.start_id, category.c.parent_id, category.c.name, up.c.depth + 1).where(
                category.c.id == up.c.parent_id
            )
        )
        rows = await self.session.execute(select(up.c.start_id, up.c.name, up.c.depth))
        names: dict[int, list[tuple[int, str]]] = {}
        for start_id, category_name, depth in rows:
            names.setdefault(start_id, []).append((depth, category_name))
        return {
            start_id: PATH_SEPARATOR.join(name for _, name in sorted(parts, reverse=True))
            for start_id, parts in names.items()
        }

    async def subtree_rows(self, root_ids: Iterable[int]) -> list[Any]:
        """The given categories and everything below them (all columns), in one query."""
        ids = list(root_ids)
        if not ids:
            return []
        subtree = self.descendants_of(ids)
        category = CATEGORY
        statement = (
            select(category).where(category.c.id.in_(select(subtree.c.id))).order_by(category.c.name, category.c.id)
        )
        return list(await self.session.execute(statement))

    async def is_descendant(self, candidate_id: int, of_id: int) -> bool:
        """True when `candidate_id` is `of_id` itself or lies below it."""
        subtree = self.descendants_of([of_id])
        found = await self.session.scalar(select(subtree.c.id).where(subtree.c.id == candidate_id).limit(1))
        return found is not None
