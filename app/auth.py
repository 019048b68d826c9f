"""The shared authentication middleware: identity's token table behind the kernel's bearer middleware."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop_identity import make_token_resolver
from shop_kernel import BearerTokenMiddleware, Principal

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from app.settings import Settings

__all__ = ("DEMO_TOKENS", "build_auth_middleware")

DEMO_STAFF_TOKEN = "long-lasting-token-999"  # noqa: S105 - public on purpose, development only
DEMO_CUSTOMER_TOKEN = "demo-customer-token-999"  # noqa: S105
DEMO_TOKENS = frozenset({DEMO_STAFF_TOKEN, DEMO_CUSTOMER_TOKEN})


def build_auth_middleware(settings: Settings, session_maker: Callable[[], AsyncSession]) -> BearerTokenMiddleware:
    resolve = make_token_resolver(session_maker)
    if not settings.is_production:
        return BearerTokenMiddleware(resolve)

    async def resolve_without_demo_tokens(raw: str) -> Principal | None:
        # The demo tokens are printed in the README: even if a copied development database reached
        # production, they must not open it.
        if raw in DEMO_TOKENS:
            return None
        return await resolve(raw)

    return BearerTokenMiddleware(resolve_without_demo_tokens)
