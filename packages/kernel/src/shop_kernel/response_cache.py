"""Whole answers to anonymous reads, kept in each process and dropped by tag when what they show changes.

A route opts in with `opt={RESPONSE_CACHE: CacheRule(...)}`; `ResponseCacheMiddleware` (installed by
`install_shared`, the innermost app-level middleware, so the request id, metrics, auth and rate limits still
run for every request) then answers a repeated anonymous `GET` from memory, without dependencies, a session
or serialisation. Only `200` answers are kept, and only for requests without an `Authorization` header: a
signed-in caller may see more than the public (staff see inactive products).

Correctness rests on two rules:

- **Writers say what changed, after they commit.** `await ResponseCache.changed(tags)` drops the entries
  carrying any of the tags in this process at once, and hands the tags to the bus (`InvalidationBus`, the
  app's Redis pub/sub), which drops them in every other process within the time one message takes.
- **A read that overlapped a change is not kept.** Each miss remembers the cache's generation when it began;
  any change since (here or from the bus) bumps it, and the answer is sent but not stored, so a read that
  saw the data before a commit cannot outlive that commit's invalidation.

With a bus configured, the cache serves only while the bus is subscribed (a process that could miss
invalidations must not answer from memory) and forgets everything when it (re)connects. Without a bus
(a context mounted alone, one process), entries live at most `ttl_without_bus` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "EVERYTHING",
    "RESPONSE_CACHE",
    "CacheRule",
    "InvalidationBus",
    "ResponseCache",
    "ResponseCacheMiddleware",
    "response_cache_of",
    "tag_answer",
)

RESPONSE_CACHE = "response_cache"
"""The route `opt` key holding a route's `CacheRule`, and the app state key holding the `ResponseCache`."""

EVERYTHING = "*"
"""The tag of every entry: changing it empties the cache."""

ANSWER_TAGS = "shop.answer_tags"
"""Scope key of the tags a handler adds to its answer (`tag_answer`)."""


@dataclass(frozen=True)
class CacheRule:
    """How long a route's anonymous answers may be kept, and what they show (their tags)."""

    seconds: float
    tags: Callable[[dict[str, Any]], Iterable[str]] | None = None
    """From the route's path parameters, the tags of one answer (beyond `EVERYTHING`); the handler can add
    the tags only its result knows (`tag_answer`: a page, the products on it)."""


class InvalidationBus(Protocol):
    """Carries tags between the processes serving one database (the app provides one over Redis)."""

    async def publish(self, tags: frozenset[str]) -> None: ...


@dataclass(slots=True)
class _Entry:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    expires: float
    tags: tuple[str, ...]


@dataclass
class ResponseCache:
    max_bytes: int = 32 * 1024 * 1024
    max_entry_bytes: int = 256 * 1024
    ttl_without_bus: float = 2.0
    bus: InvalidationBus | None = None
    subscribed: bool = False
    """Set by the bus while it receives every change; with a bus and without it, nothing is served or kept."""
    generation: int = 0
    listeners: list[Callable[[frozenset[str]], None]] = field(default_factory=list)
    """Called with the tags of every change another process made (e.g. to drop the catalog's own snapshots)."""
    _entries: OrderedDict[bytes, _Entry] = field(default_factory=OrderedDict)
    _tagged: dict[str, set[bytes]] = field(default_factory=dict)
    _bytes: int = 0

    @property
    def usable(self) -> bool:
        return self.bus is None or self.subscribed

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(
        self,
        key: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        seconds: float,
        tags: Iterable[str],
        since: int,
    ) -> bool:
        """Keep an answer unless a change happened since the read began (`since`: the generation then)."""
        if since != self.generation or not self.usable or len(body) > self.max_entry_bytes:
            return False
        if self.bus is None:
            seconds = min(seconds, self.ttl_without_bus)
        if key in self._entries:
            self._remove(key)
        entry = _Entry(headers, body, time.monotonic() + seconds, tuple(tags))
        self._entries[key] = entry
        self._bytes += len(body)
        for tag in entry.tags:
            self._tagged.setdefault(tag, set()).add(key)
        while self._bytes > self.max_bytes and self._entries:
            self._remove(next(iter(self._entries)))
        return True

    def drop(self, tags: Collection[str]) -> None:
        """Another process changed `tags` (the bus calls this): forget the entries carrying any of them, and
        tell the listeners."""
        self._forget(tags)
        changed = frozenset(tags)
        for listener in self.listeners:
            listener(changed)

    async def changed(self, tags: Iterable[str]) -> None:
        """A write in this process committed: forget what shows `tags` here, then in every other process. (The
        writer keeps its own snapshots right itself, so the listeners are not called.)"""
        tags = frozenset(tags)
        self._forget(tags)
        if self.bus is not None:
            await self.bus.publish(tags)

    def _forget(self, tags: Collection[str]) -> None:
        self.generation += 1
        if EVERYTHING in tags:
            self.clear()
        else:
            for tag in tags:
                for key in list(self._tagged.get(tag, ())):
                    self._remove(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._tagged.clear()
        self._bytes = 0

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry.body)
        for tag in entry.tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]


def tag_answer(scope: Scope, tags: Iterable[str]) -> None:
    """From a handler of a cached route: what else its answer shows, e.g. the products listed on a page, so
    a change of any of them drops the answer. Outside a cached read it does nothing."""
    extra = scope.get(ANSWER_TAGS)
    if isinstance(extra, list):
        extra.extend(tags)


def response_cache_of(app: Litestar) -> ResponseCache:
    cache: ResponseCache = app.state[RESPONSE_CACHE]
    return cache


def _cache_key(scope: Scope) -> bytes | None:
    """The path, query and whether gzip is accepted; None when the request must not be answered from memory."""
    gzip = b"0"
    for name, value in scope["headers"]:
        if name == b"authorization":
            return None
        if name == b"accept-encoding" and b"gzip" in value:
            gzip = b"1"
    path = scope.get("raw_path") or scope["path"].encode()  # `raw_path` is optional in ASGI
    return b"%s?%s#%s" % (path, scope["query_string"], gzip)


class ResponseCacheMiddleware(ASGIMiddleware):
    """Answers anonymous `GET`s of routes with a `CacheRule` from the app's `ResponseCache`."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        rule: CacheRule | None = scope["route_handler"].opt.get(RESPONSE_CACHE)
        if rule is None or scope.get("method") != "GET":
            await next_app(scope, receive, send)
            return
        cache: ResponseCache = scope["litestar_app"].state[RESPONSE_CACHE]
        key = _cache_key(scope) if cache.usable else None
        if key is None:
            await next_app(scope, receive, send)
            return
        entry = cache.get(key)
        if entry is not None:
            await send({"type": "http.response.start", "status": 200, "headers": list(entry.headers)})
            await send({"type": "http.response.body", "body": entry.body, "more_body": False})
            return
        since = cache.generation
        headers: list[tuple[bytes, bytes]] | None = None
        chunks: list[bytes] = []
        extra: list[str] = []
        scope[ANSWER_TAGS] = extra  # type: ignore[literal-required]

        async def keep(message: Message) -> None:
            nonlocal headers
            if message["type"] == "http.response.start":
                headers = list(message["headers"]) if message["status"] == 200 else None
            elif headers is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    tags = [*rule.tags(scope["path_params"]), *extra] if rule.tags else extra
                    cache.put(key, headers, b"".join(chunks), rule.seconds, tags, since)
            await send(message)

        await next_app(scope, receive, keep)
