"""A per-process snapshot of the category tree and short-lived analytics, for the hot read paths.

The whole tree is small (thousands of rows at most) and read on nearly every catalog request, so each
app keeps it in memory: one query loads it, category writes in this process drop it at once, and a
short time-to-live bounds how stale another replica's copy can be. Average prices are cached per
category for the same time and dropped on any catalog write here. Product-list totals are cached per
filter for their own, longer time (decision 98): counting a big filter costs far more than its page.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shop_catalog.direct import DirectReads
from shop_catalog.models import Category
from shop_kernel import EVERYTHING, CacheRule, response_cache_of

if TYPE_CHECKING:
    from litestar import Litestar
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_catalog.schemas import AveragePrice

__all__ = (
    "CATALOG_CACHE",
    "CATALOG_READ",
    "CATALOG_TAG",
    "PAGE_READ",
    "PRODUCT_READ",
    "CatalogCache",
    "CategoryNodeData",
    "TreeSnapshot",
    "product_tag",
    "stock_changed",
)

PATH_SEPARATOR = " > "
CATALOG_CACHE = "catalog_cache"
"""The app state key (and dependency name) of the plugin's `CatalogCache`."""
CATALOG_TAG = "catalog"
"""What every cached catalog answer shows; a catalog write changes it (`PurgePagesOnWrite`)."""
READ_CACHE_SECONDS = 60.0
"""How long a process keeps an anonymous product or category answer when no change reaches it (a safety net:
writes drop what they change in every process at once, see `shop_kernel.response_cache`)."""


def product_tag(product_id: int) -> str:
    return f"catalog:product:{product_id}"


CATALOG_READ = CacheRule(READ_CACHE_SECONDS, lambda _params: (CATALOG_TAG,))
PAGE_READ = CacheRule(2.0, lambda _params: (CATALOG_TAG,))
"""Product pages: many URLs (every filter, ordering and page), each asked a few times, so they are kept briefly;
the handler adds the tags of the products listed (`tag_answer`), so an order drops the pages showing them."""
PRODUCT_READ = CacheRule(READ_CACHE_SECONDS, lambda params: (CATALOG_TAG, product_tag(params["product_id"])))


async def stock_changed(app: Litestar, product_ids: Iterable[int]) -> None:
    """For other contexts, after they commit a change of stock (orders): a product's answer shows its stock."""
    await response_cache_of(app).changed({product_tag(product_id) for product_id in product_ids})


COUNT_TTL_SECONDS = 10.0
"""How old a product list's total may be when more pages follow (decision 98), unless configured otherwise."""


@dataclass(frozen=True)
class CategoryNodeData:
    id: int
    name: str
    parent_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass
class TreeSnapshot:
    nodes: dict[int, CategoryNodeData]
    children: dict[int | None, list[int]]
    """Child ids of each category (None: the roots), ordered by name then id."""
    ordered: list[int]
    """Every id ordered by name then id: the order of the category list."""
    paths: dict[int, str] = field(default_factory=dict)
    refs: dict[int, Any] = field(default_factory=dict)
    """Each category as products show it (`CategoryRef`), made once per snapshot on first use."""

    @classmethod
    def build(cls, rows: Iterable[Any]) -> TreeSnapshot:
        nodes = {
            row.id: CategoryNodeData(row.id, row.name, row.parent_id, row.created_at, row.updated_at) for row in rows
        }
        ordered = sorted(nodes, key=lambda i: (nodes[i].name, i))
        children: dict[int | None, list[int]] = {}
        for node_id in ordered:
            children.setdefault(nodes[node_id].parent_id, []).append(node_id)
        snapshot = cls(nodes=nodes, children=children, ordered=ordered)
        stack: list[tuple[int, str]] = [(root, nodes[root].name) for root in children.get(None, [])]
        while stack:
            node_id, path = stack.pop()
            snapshot.paths[node_id] = path
            stack.extend((child, f"{path}{PATH_SEPARATOR}{nodes[child].name}") for child in children.get(node_id, []))
        return snapshot

    def subtree(self, root_id: int) -> list[int]:
        """The category and all its descendants."""
        found, stack = [], [root_id]
        while stack:
            node_id = stack.pop()
            found.append(node_id)
            stack.extend(self.children.get(node_id, []))
        return found


class CatalogCache:
    def __init__(
        self,
        ttl_seconds: float = 2.0,
        *,
        count_ttl_seconds: float = COUNT_TTL_SECONDS,
        max_counts: int = 1024,
        large_subtree_links: int = 5000,
        price_range_share: int = 16,
    ) -> None:
        self.ttl = ttl_seconds
        self.count_ttl = count_ttl_seconds
        self.max_counts = max_counts
        self.large_subtree_links = large_subtree_links
        self.price_range_share = price_range_share
        self._tree: TreeSnapshot | None = None
        self._tree_expires = 0.0
        self._averages: dict[int, tuple[AveragePrice, float]] = {}
        self._counts: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()
        self._counting: dict[Hashable, asyncio.Lock] = {}
        self.reads = DirectReads()
        """How this process runs the hot catalog reads (`shop_catalog.direct`)."""
        self.generation = 0
        """Bumped by every catalog write in this process: a count read before it is not kept."""
        self._typos: OrderedDict[str, frozenset[str]] = OrderedDict()

    async def tree(self, session: AsyncSession, *, must_have: Iterable[int] = ()) -> TreeSnapshot:
        """The current snapshot; reloaded when expired, or when it lacks a category the caller knows exists."""
        now = time.monotonic()
        tree = self._tree
        if tree is None or now >= self._tree_expires or any(i not in tree.nodes for i in must_have):
            rows = await session.execute(
                select(Category.id, Category.name, Category.parent_id, Category.created_at, Category.updated_at)
            )
            tree = TreeSnapshot.build(rows)
            self._tree, self._tree_expires = tree, now + self.ttl
        return tree

    def average(self, category_id: int) -> AveragePrice | None:
        entry = self._averages.get(category_id)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def remember_average(self, category_id: int, value: AveragePrice) -> None:
        self._averages[category_id] = (value, time.monotonic() + self.ttl)

    def cached_count(self, key: Hashable) -> int | None:
        entry = self._counts.get(key)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        self._counts.move_to_end(key)
        return entry[0]

    def remember_count(self, key: Hashable, value: int, *, generation: int) -> None:
        """Keep `value`, counted by a read that began at `generation`, unless a write came since."""
        if generation != self.generation or self.count_ttl <= 0:
            return
        self._counts[key] = (value, time.monotonic() + self.count_ttl)
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_counts:
            self._counts.popitem(last=False)

    async def count(self, key: Hashable, compute: Callable[[], Awaitable[int]], *, generation: int) -> int:
        """The cached count for `key`, else `compute()`d once however many requests ask at the same time."""
        if (value := self.cached_count(key)) is not None:
            return value
        lock = self._counting.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if (value := self.cached_count(key)) is not None:
                    return value
                value = await compute()
                self.remember_count(key, value, generation=generation)
                return value
        finally:
            if self._counting.get(key) is lock and not lock.locked():
                del self._counting[key]

    @asynccontextmanager
    async def counting(self, key: Hashable, *, wanted: bool = True) -> AsyncIterator[bool]:
        """Whether the caller is to count `key` itself, alongside its own read (decision 157): True when it
        wants to, no count is kept and nobody is counting it; `count(key, ...)` then waits for this block, so a
        filter is still counted once however many requests miss at the same time."""
        if not wanted or key in self._counting or self.cached_count(key) is not None:
            yield False
            return
        lock = self._counting[key] = asyncio.Lock()
        try:
            async with lock:
                yield True
        finally:
            if self._counting.get(key) is lock and not lock.locked():
                del self._counting[key]

    def typos(self, word: str) -> frozenset[str] | None:
        """The indexed words one edit away from `word`, as last looked up (`shop_catalog.search`), until a write."""
        return self._typos.get(word)

    def remember_typos(self, word: str, indexed: frozenset[str], *, generation: int) -> None:
        if generation != self.generation:
            return
        self._typos[word] = indexed
        while len(self._typos) > self.max_counts:
            self._typos.popitem(last=False)

    def on_change(self, tags: frozenset[str]) -> None:
        """A `ResponseCache` listener: a catalog write in any process drops this process's snapshots."""
        if CATALOG_TAG in tags or EVERYTHING in tags:
            self.invalidate()

    def invalidate(self) -> None:
        """Call after any catalog write in this process."""
        self._tree = None
        self._averages.clear()
        self._counts.clear()
        self._typos.clear()
        self.generation += 1
