"""The catalog's caching, all of it: what is kept, for how long, and what drops it.

Two layers, both per serving process:

- **Whole answers** (`shop_kernel.response_cache`): anonymous `GET`s of a product, a product page, the category
  list, a category and an average price are answered from memory. The rules below say for how long and with
  which tags: every catalog answer carries `CATALOG_TAG`, a product's answer and the pages listing it carry
  `product_tag(id)` (`tag_page`).
- **Snapshots** (`CatalogCache`) that the services read instead of the database: the whole category tree (small,
  read by nearly every request; reloaded when older than `ttl_seconds` or when it lacks a category the caller
  knows exists), average prices (same time-to-live), product-list totals per filter (decision 98, their own
  longer time), the plan choices counted for big filters, and typo look-ups of search words.

What drops them: every catalog write is `async with cache.writing(unit) as session:`, the transaction of its unit of
work (`shop_kernel.Unit`) with one after-commit hook (`_committed`). Once the write commits, and never if
it rolls back, the hook drops this process's snapshots and empties every process's catalog answers
(`ResponseCache.changed`, carried by the app's Redis bus), before the write's answer is sent. Other processes drop
their snapshots when that message reaches them (`on_change`); an order that changes stock drops only the answers
showing those products (`stock_changed`, ordering's call). A snapshot read while a write committed is used by its
request but not kept (`generation`), so no read that began before a commit refills a snapshot with the rows it
replaced.

The plugin wires it all with `install`; the controllers' providers find the cache in the app's state
(`cache_of`), one dependency level each (see `shop_catalog.controllers`).
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
from shop_kernel import EVERYTHING, RESPONSE_CACHE, CacheRule, ResponseCache, response_cache_of, tag_answer

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.types import Scope
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_catalog.schemas import AveragePrice, ProductRead
    from shop_kernel import Unit

__all__ = (
    "CATALOG_READ",
    "CATALOG_TAG",
    "COUNT_TTL_SECONDS",
    "PAGE_READ",
    "PRODUCT_READ",
    "CatalogCache",
    "CategoryNodeData",
    "TreeSnapshot",
    "cache_of",
    "product_tag",
    "stock_changed",
    "tag_page",
)

PATH_SEPARATOR = " > "
CATALOG_CACHE = "catalog_cache"
"""The app state key of the plugin's `CatalogCache`."""
CATALOG_TAG = "catalog"
"""What every cached catalog answer shows; any catalog write drops it (`CatalogCache.writing`)."""
READ_CACHE_SECONDS = 60.0
"""How long a process keeps an anonymous product or category answer when no change reaches it (a safety net:
writes drop what they change in every process at once, see `shop_kernel.response_cache`)."""


def product_tag(product_id: int) -> str:
    return f"catalog:product:{product_id}"


CATALOG_READ = CacheRule(READ_CACHE_SECONDS, lambda _params: (CATALOG_TAG,))
PAGE_READ = CacheRule(2.0, lambda _params: (CATALOG_TAG,))
"""Product pages: many URLs (every filter, ordering and page), each asked a few times, so they are kept briefly;
the handler adds the tags of the products listed (`tag_page`), so an order drops the pages showing them."""
PRODUCT_READ = CacheRule(READ_CACHE_SECONDS, lambda params: (CATALOG_TAG, product_tag(params["product_id"])))


def tag_page(scope: Scope, products: Iterable[ProductRead]) -> None:
    """From a page's handler: the page shows these products, so a change of any of them drops it."""
    tag_answer(scope, [product_tag(product.id) for product in products])


async def stock_changed(app: Litestar, product_ids: Iterable[int]) -> None:
    """For other contexts, after they commit a change of stock (orders): a product's answer shows its stock."""
    await response_cache_of(app).changed({product_tag(product_id) for product_id in product_ids})


def cache_of(state: Any) -> CatalogCache:
    """The app's `CatalogCache` (`install`), for the controllers' providers."""
    cache: CatalogCache = state[CATALOG_CACHE]
    return cache


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
        """Bumped whenever the snapshots are dropped: a count or typo look-up read before is not kept."""
        self._typos: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._answers: ResponseCache | None = None
        """The app's response cache (`install`); None for a cache used outside an app (scripts, the demo data)."""

    def install(self, app_config: AppConfig) -> None:
        """Wire into an app (after `install_shared`): the providers find this cache in the state, and it hears
        the catalog changes of other processes and tells them of this one's through the app's response cache."""
        answers: ResponseCache = app_config.state[RESPONSE_CACHE]
        answers.listeners.append(self.on_change)
        app_config.state[CATALOG_CACHE] = self
        self._answers = answers

    @asynccontextmanager
    async def writing(self, unit: Unit) -> AsyncIterator[AsyncSession]:
        """A catalog write: `unit`'s transaction. Once it commits, this process's snapshots and every process's
        cached catalog answers are dropped (`_committed`); nothing if it rolls back."""
        async with unit.transaction() as session:
            unit.after_commit(self._committed)
            yield session

    async def _committed(self) -> None:
        self.invalidate()
        if self._answers is not None:
            await self._answers.changed({CATALOG_TAG})

    async def tree(self, session: AsyncSession, *, must_have: Iterable[int] = ()) -> TreeSnapshot:
        """The current snapshot; reloaded when expired, or when it lacks a category the caller knows exists."""
        now = time.monotonic()
        tree = self._tree
        if tree is None or now >= self._tree_expires or any(i not in tree.nodes for i in must_have):
            generation = self.generation
            rows = await session.execute(
                select(Category.id, Category.name, Category.parent_id, Category.created_at, Category.updated_at)
            )
            tree = TreeSnapshot.build(rows)
            if generation == self.generation:  # else a write committed meanwhile: this tree may predate it
                self._tree, self._tree_expires = tree, now + self.ttl
        return tree

    def average(self, category_id: int) -> AveragePrice | None:
        entry = self._averages.get(category_id)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def remember_average(self, category_id: int, value: AveragePrice, *, generation: int) -> None:
        """Keep `value`, read by a request that began at `generation`, unless a write came since."""
        if generation == self.generation:
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
        """A `ResponseCache` listener: a catalog write in another process drops this process's snapshots."""
        if CATALOG_TAG in tags or EVERYTHING in tags:
            self.invalidate()

    def invalidate(self) -> None:
        """Drop every snapshot of this process (a write committed; tests emptying the database)."""
        self._tree = None
        self._averages.clear()
        self._counts.clear()
        self._typos.clear()
        self.generation += 1
