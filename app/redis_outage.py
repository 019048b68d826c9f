"""Redis on the request path speeds things up and shares counts between replicas; it is never required.

Three things a request does use Redis: the rate limiter's counts, the sign-in throttle's counts and the
public page cache. Each goes through the one `RedisOutage` the composed app creates:

- an operation that fails with a Redis or socket error is done without Redis instead of failing the
  request (counts are kept in this process, a cache read is a miss, a cache write or purge is skipped);
- the first failure opens an outage: one WARNING line, `shop_redis_outages_total` + 1, `shop_redis_up` 0.
  While it lasts, at most one operation every `probe_seconds` tries Redis again; the others go straight
  to the fallback (`shop_redis_fallbacks_total{use}`), so no request waits on a connection that cannot
  succeed, however Redis fails (refused, or silent until the 1 s timeout);
- the first success ends it: one INFO line with its length, `shop_redis_up` 1.

Clients made by `request_path_redis` give up after 1 s and retry once at once on a broken connection,
so a pooled connection that Redis closed while it was away is replaced instead of failing a request
(redis-py retries nothing unless told to).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from litestar.stores.base import Store
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.observability import REDIS_FALLBACKS, REDIS_OUTAGES, REDIS_UP

if TYPE_CHECKING:
    from datetime import timedelta
    from types import TracebackType

__all__ = ("UNREACHABLE", "FailSoftStore", "RedisOutage", "request_path_redis")

T = TypeVar("T")
logger = logging.getLogger("shop.redis")

UNREACHABLE = (RedisError, OSError)
"""What a stopped, restarting, unreachable or refusing Redis raises (socket errors arrive wrapped or not)."""


def request_path_redis(url: str, timeout_seconds: float = 1.0) -> Redis:
    """A client for work done inside a request: fails fast, survives a Redis restart."""
    return Redis.from_url(
        url,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class RedisOutage:
    """Whether this process finds Redis unreachable; shared by every request-path use of one Redis."""

    def __init__(self, probe_seconds: float = 1.0) -> None:
        self.probe_seconds = probe_seconds
        self._up: bool | None = None  # unknown until the first operation
        self._down_since = 0.0
        self._next_probe = 0.0

    @property
    def down(self) -> bool:
        return self._up is False

    async def either(self, use: str, with_redis: Callable[[], Awaitable[T]], without: Callable[[], Awaitable[T]]) -> T:
        """`with_redis()`, or `without()` when Redis fails now or failed less than `probe_seconds` ago."""
        if self._may_try():
            try:
                result = await with_redis()
            except UNREACHABLE as error:
                self._failed(use, error)
            else:
                self._succeeded()
                return result
        REDIS_FALLBACKS.labels(use).inc()
        return await without()

    def _may_try(self) -> bool:
        if self._up is not False:
            return True
        now = time.monotonic()
        if now < self._next_probe:
            return False
        self._next_probe = now + self.probe_seconds  # this operation probes; the others keep to the fallback
        return True

    def _failed(self, use: str, error: BaseException) -> None:
        now = time.monotonic()
        self._next_probe = now + self.probe_seconds
        if self._up is False:
            return
        self._up = False
        self._down_since = now
        REDIS_UP.set(0)
        REDIS_OUTAGES.inc()
        logger.warning(
            "redis unreachable (%s, %s): until it answers, rate limits and sign-in throttling count in this "
            "process only and public pages are served uncached from the database",
            use,
            _describe(error),
        )

    def _succeeded(self) -> None:
        if self._up is True:
            return
        if self._up is False:
            logger.info("redis reachable again after %.1f s", time.monotonic() - self._down_since)
        self._up = True
        REDIS_UP.set(1)


async def _none() -> None:
    return None


async def _false() -> bool:
    return False


class FailSoftStore(Store):
    """A store that an unreachable Redis turns into an empty one: reads miss, writes and deletes are skipped.

    For the response cache: a page that cannot be read from the cache is built from the database. A purge
    that cannot reach Redis leaves entries Redis still holds to expire on their own (2 s for pages).
    """

    def __init__(self, store: Store, outage: RedisOutage, use: str = "response_cache") -> None:
        self.store = store
        self.outage = outage
        self.use = use

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        await self.outage.either(self.use, lambda: self.store.set(key, value, expires_in), _none)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        return await self.outage.either(self.use, lambda: self.store.get(key, renew_for), _none)

    async def delete(self, key: str) -> None:
        await self.outage.either(self.use, lambda: self.store.delete(key), _none)

    async def delete_all(self) -> None:
        await self.outage.either(self.use, self.store.delete_all, _none)

    async def exists(self, key: str) -> bool:
        return await self.outage.either(self.use, lambda: self.store.exists(key), _false)

    async def expires_in(self, key: str) -> int | None:
        return await self.outage.either(self.use, lambda: self.store.expires_in(key), _none)

    async def __aenter__(self) -> None:
        await self.store.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        await self.store.__aexit__(exc_type, exc_val, exc_tb)
