"""The response cache's own rules: what it keeps, for how long, and what a change drops."""

from __future__ import annotations

import asyncio
import time

from shop_kernel import EVERYTHING, ResponseCache

HEADERS = [(b"content-type", b"application/json")]


class Bus:
    def __init__(self) -> None:
        self.sent: list[frozenset[str]] = []

    async def publish(self, tags: frozenset[str]) -> None:
        self.sent.append(tags)


def test_a_read_that_overlapped_a_change_is_not_kept() -> None:
    cache = ResponseCache()
    since = cache.generation
    asyncio.run(cache.changed({"product:1"}))  # committed while the read was running
    assert not cache.put(b"/p/1", HEADERS, b"old", 60, ["product:1"], since)
    assert cache.get(b"/p/1") is None
    assert cache.put(b"/p/1", HEADERS, b"new", 60, ["product:1"], cache.generation)
    entry = cache.get(b"/p/1")
    assert entry is not None
    assert (entry.body, entry.headers) == (b"new", HEADERS)


def test_a_change_drops_only_what_carries_its_tags_and_reaches_the_bus() -> None:
    bus = Bus()
    cache = ResponseCache(bus=bus, subscribed=True)
    heard: list[frozenset[str]] = []
    cache.listeners.append(heard.append)
    for product in (1, 2):
        cache.put(f"/p/{product}".encode(), HEADERS, b"{}", 60, [f"product:{product}"], cache.generation)
    cache.put(b"/categories", HEADERS, b"[]", 60, [], cache.generation)
    asyncio.run(cache.changed({"product:1"}))
    assert (cache.get(b"/p/1"), len(cache)) == (None, 2)
    assert bus.sent == [frozenset({"product:1"})]
    assert heard == []  # the writer keeps its own snapshots right; listeners hear other processes
    cache.drop([EVERYTHING])  # from another process
    assert len(cache) == 0
    assert heard == [frozenset({EVERYTHING})]


def test_nothing_is_served_or_kept_while_the_bus_may_miss_changes() -> None:
    cache = ResponseCache(bus=Bus(), subscribed=False)
    assert not cache.usable
    assert not cache.put(b"/p/1", HEADERS, b"{}", 60, [], cache.generation)
    cache.subscribed = True
    assert cache.put(b"/p/1", HEADERS, b"{}", 60, [], cache.generation)


def test_without_a_bus_entries_live_briefly_and_the_budget_evicts_the_oldest() -> None:
    cache = ResponseCache(ttl_without_bus=0.05, max_bytes=10, max_entry_bytes=6)
    assert not cache.put(b"/big", HEADERS, b"x" * 7, 60, [], cache.generation)  # larger than one entry may be
    cache.put(b"/a", HEADERS, b"aaaaa", 60, ["t"], cache.generation)
    cache.put(b"/b", HEADERS, b"bbbbb", 60, ["t"], cache.generation)
    assert cache.get(b"/a") is not None  # now the most recently used
    cache.put(b"/c", HEADERS, b"ccccc", 60, ["t"], cache.generation)
    assert (cache.get(b"/b"), len(cache)) == (None, 2)
    time.sleep(0.06)
    assert cache.get(b"/a") is None  # 60 s asked, 0.05 s given: no bus tells this process of changes
