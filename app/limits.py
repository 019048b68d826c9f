"""Rate limits shared by every replica: Litestar's rate-limit middleware with an atomic counter in Redis.

Litestar's `RateLimitMiddleware` keeps a list of timestamps per client and writes it back after
reading it, guarded by a lock that only exists inside one process: two replicas (or two requests
racing between the read and the write) both count one hit. Here each tier counts with one atomic
Redis operation (INCR, and EXPIRE on the first hit of a window: a fixed window of one minute), so
the limit holds across processes. Responses carry `RateLimit-Limit`, `RateLimit-Remaining`,
`RateLimit-Reset` and `RateLimit-Policy` (IETF draft, as Litestar names them); over the limit the
answer is 429 problem+json with `Retry-After`.

Tiers (app/settings.py `RateLimits`):
- `auth`: registration, password change and reset, and the OAuth sign-in and token endpoints, per client
  address;
- `orders`: placing and cancelling orders and retrying a notification (each sends an SMS), per user;
- `general`: every other API request, per user when signed in, else per address.

Without Redis the limits still hold, per process (decision 92): `FallbackCounter` and
`FallbackFailureCounter` count in this process's memory while Redis is unreachable (app/redis_outage.py
logs the outage once and counts it), and go back to Redis as soon as it answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from litestar.datastructures import MutableScopeHeaders
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from redis.asyncio import Redis

from app.redis_outage import RedisOutage, request_path_redis
from shop_identity import FailureCounter
from shop_kernel import principal_of, problem_response

if TYPE_CHECKING:
    from litestar import Request
    from litestar.middleware.base import DefineMiddleware
    from litestar.types import Message, Receive, Scope, Send

    from app.settings import RateLimits

__all__ = (
    "FallbackCounter",
    "FallbackFailureCounter",
    "MemoryCounter",
    "RedisCounter",
    "RedisFailureCounter",
    "WindowCounter",
    "rate_limit_middleware",
)

WINDOW_SECONDS = 60
EXCLUDED = ["^/api/health", "^/api/ready", "^/metrics", "^/schema"]

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class WindowCounter(Protocol):
    async def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one request for `key`; returns (requests in the current window, seconds until it ends)."""
        ...

    async def close(self) -> None: ...


class RedisCounter:
    """Fixed windows in Redis: one round trip per request, atomic (a Lua script)."""

    def __init__(self, url: str, namespace: str = "shop:ratelimit") -> None:
        self.url = url
        self.namespace = namespace
        self._client: Redis | None = None

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        if self._client is None:  # created on first use, on the loop that serves requests
            self._client = request_path_redis(self.url)
        count, ttl = await self._client.eval(_HIT, 1, f"{self.namespace}:{key}", window)
        return int(count), max(int(ttl), 1)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_DISCOUNT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""


class RedisFailureCounter:
    """Sign-in attempts counted in Redis, so every replica sees every one (shop_identity.FailureCounter), with
    the rate limits' atomic fixed-window script."""

    def __init__(self, url: str, namespace: str = "shop:sign-in-failures") -> None:
        self.url = url
        self.namespace = namespace
        self._client: Redis | None = None

    def _redis(self) -> Redis:
        if self._client is None:  # created on first use, on the loop that serves requests
            self._client = request_path_redis(self.url)
        return self._client

    async def add(self, key: str, window_seconds: int) -> tuple[int, int]:
        count, ttl = await self._redis().eval(_HIT, 1, f"{self.namespace}:{key}", window_seconds)
        return int(count), max(int(ttl), 1)

    async def discount(self, key: str) -> None:
        await self._redis().eval(_DISCOUNT, 1, f"{self.namespace}:{key}")

    async def forget(self, key: str) -> None:
        await self._redis().delete(f"{self.namespace}:{key}")

    async def clear(self) -> None:
        keys = [key async for key in self._redis().scan_iter(f"{self.namespace}:*")]
        if keys:
            await self._redis().delete(*keys)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class MemoryCounter:
    """Fixed windows in this process only: for a single process without Redis, and while Redis is away."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._windows: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        now = time.monotonic()
        if len(self._windows) >= self.max_keys:  # ended windows go first; a flood of new keys empties it
            self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            if len(self._windows) >= self.max_keys:
                self._windows.clear()
        count, ends = self._windows.get(key, (0, now + window))
        if ends <= now:
            count, ends = 0, now + window
        self._windows[key] = (count + 1, ends)
        return count + 1, max(int(ends - now), 1)

    async def close(self) -> None:
        self._windows.clear()


class FallbackCounter:
    """Counts in Redis (shared by every replica); in this process while Redis is unreachable."""

    def __init__(self, shared: WindowCounter, local: WindowCounter, outage: RedisOutage) -> None:
        self.shared = shared
        self.local = local
        self.outage = outage

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        return await self.outage.either(
            "rate_limit", lambda: self.shared.hit(key, window), lambda: self.local.hit(key, window)
        )

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()


class FallbackFailureCounter:
    """Sign-in attempts counted in Redis (every replica), in this process while Redis is unreachable: the
    throttle is a security control and must not vanish with Redis (shop_identity.FailureCounter)."""

    def __init__(self, shared: RedisFailureCounter, local: FailureCounter, outage: RedisOutage) -> None:
        self.shared = shared
        self.local = local
        self.outage = outage

    async def add(self, key: str, window_seconds: int) -> tuple[int, int]:
        return await self.outage.either(
            "sign_in_throttle",
            lambda: self.shared.add(key, window_seconds),
            lambda: self.local.add(key, window_seconds),
        )

    async def discount(self, key: str) -> None:
        await self.outage.either(
            "sign_in_throttle", lambda: self.shared.discount(key), lambda: self.local.discount(key)
        )

    async def forget(self, key: str) -> None:
        await self.local.forget(key)  # what was counted here during an outage goes too
        await self.outage.either("sign_in_throttle", lambda: self.shared.forget(key), _nothing)

    async def clear(self) -> None:
        await self.local.clear()
        await self.outage.either("sign_in_throttle", self.shared.clear, _nothing)

    async def close(self) -> None:
        await self.shared.close()


async def _nothing() -> None:
    return None


def _address(request: Request[Any, Any, Any]) -> str:
    client = request.client
    return f"ip:{client.host if client else 'unknown'}"


def _user_or_address(request: Request[Any, Any, Any]) -> str:
    principal = principal_of(request)
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if principal.client_id is not None:
        return f"client:{principal.client_id}"
    return _address(request)


@dataclass
class TierConfig(RateLimitConfig):
    name: str = "general"
    counter: WindowCounter = field(default_factory=MemoryCounter)
    applies: Callable[[Request[Any, Any, Any]], bool] = field(default=lambda _request: True)


class SharedRateLimitMiddleware(RateLimitMiddleware):
    config: TierConfig

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request: Request[Any, Any, Any] = scope["litestar_app"].request_class(scope)
        if not self.config.applies(request):
            await self.app(scope, receive, send)
            return
        identifier = self.config.identifier_for_request(request)
        count, reset = await self.config.counter.hit(f"{self.config.name}:{identifier}", WINDOW_SECONDS)
        headers = {
            "RateLimit-Policy": f"{self.max_requests}; w={WINDOW_SECONDS}",
            "RateLimit-Limit": str(self.max_requests),
            "RateLimit-Remaining": str(max(self.max_requests - count, 0)),
            "RateLimit-Reset": str(reset),
        }
        if count > self.max_requests:
            # Answered here rather than raised, so the metrics middleware above records a 429.
            response = problem_response(
                request,
                429,
                f"Too many requests: at most {self.max_requests} a minute here. Retry in {reset} s.",
                problem_type="/problems/rate-limited",
                headers={**headers, "Retry-After": str(reset)},
            )
            await response.to_asgi_response(app=None, request=request)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


_AUTH_PATHS = re.compile(
    r"^/(api/auth/(register|password|password/reset|password/reset/confirm)|account/reset-password"
    r"|oauth/(token|authorize|revoke|introspect))/?$"
)
_SMS_PATHS = re.compile(r"^/api/(orders/?|orders/\d+/cancel/?|notifications/\d+/retry/?)$")


def _is_auth(request: Request[Any, Any, Any]) -> bool:
    return request.method == "POST" and bool(_AUTH_PATHS.match(request.url.path))


def _sends_sms(request: Request[Any, Any, Any]) -> bool:
    return request.method == "POST" and bool(_SMS_PATHS.match(request.url.path))


def rate_limit_middleware(limits: RateLimits, counter: WindowCounter) -> list[DefineMiddleware]:
    """The tiers, strictest first: its headers are the ones a client sees when several apply."""
    if not limits.enabled:
        return []
    tiers = [
        TierConfig(
            rate_limit=("minute", limits.auth_per_minute),
            name="auth",
            applies=_is_auth,
            identifier_for_request=_address,
            counter=counter,
        ),
        TierConfig(
            rate_limit=("minute", limits.orders_per_minute),
            name="orders",
            applies=_sends_sms,
            identifier_for_request=_user_or_address,
            counter=counter,
        ),
        TierConfig(
            rate_limit=("minute", limits.general_per_minute),
            name="general",
            identifier_for_request=_user_or_address,
            counter=counter,
        ),
    ]
    for tier in tiers:
        tier.middleware_class = SharedRateLimitMiddleware
        tier.exclude = EXCLUDED
    return [tier.middleware for tier in tiers]
