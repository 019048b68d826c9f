"""Redis on the request path speeds things up and shares counts between replicas; it is never required.

Two things a request does use Redis: the rate limiter's counts and the sign-in throttle's counts. Both go
through the one `RedisOutage` the composed app creates (the response cache's invalidation bus has its own
rule: a process that is not subscribed serves nothing from memory, `app.cache_bus`):

- an operation that fails with a Redis or socket error is done without Redis instead of failing the
  request (counts are kept in this process);
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
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.observability import REDIS_FALLBACKS, REDIS_OUTAGES, REDIS_UP

__all__ = ("UNREACHABLE", "RedisOutage", "request_path_redis")

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
