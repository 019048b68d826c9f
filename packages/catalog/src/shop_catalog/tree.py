"""Exact tree questions asked of the database with recursive CTEs (portable to SQLite and PostgreSQL).

Reads of names and paths use the in-memory snapshot (`cache.py`); what must never be stale (a move that
could create a cycle, the subtree a delete removes) is asked here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CTE, Select, Table, select

from shop_catalog.models import Category

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("CategoryTree",)
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

    async def is_descendant(self, candidate_id: int, of_id: int) -> bool:
        """True when `candidate_id` is `of_id` itself or lies below it."""
        subtree = self.descendants_of([of_id])
        found = await self.session.scalar(select(subtree.c.id).where(subtree.c.id == candidate_id).limit(1))
        return found is not None
