"""Who is calling: the `Principal`, the bearer-token middleware that finds it, and the guards that check it.

The middleware is generic: it is given a `TokenResolver` (identity provides one backed by its token
table; a sibling service may provide one that introspects tokens remotely), so no context depends on
how tokens are stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware

if TYPE_CHECKING:
    from litestar import Request
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = (
    "ANONYMOUS",
    "BearerTokenMiddleware",
    "Principal",
    "TokenResolver",
    "bearer_challenge",
    "bearer_security",
    "principal_of",
    "provide_principal",
    "require_authenticated",
    "require_customer",
    "require_scopes",
    "require_staff",
)

REALM = "shop"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller of one request.

    A customer or staff member has a `user_id`; a service client (client-credentials grant) has only
    a `client_id`. The anonymous principal has neither and no scopes.
    """

    user_id: int | None = None
    username: str | None = None
    scopes: frozenset[str] = frozenset()
    is_staff: bool = False
    client_id: str | None = None
    email_verified: bool = False
    """The person confirmed their e-mail address (a host may require it before some operations)."""

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None or self.client_id is not None

    @property
    def is_user(self) -> bool:
        return self.user_id is not None

    def has_scopes(self, required: Iterable[str]) -> bool:
        return set(required) <= self.scopes

    def require_user_id(self) -> int:
        """The user's id; a handler guarded by `require_customer` can rely on it."""
        if self.user_id is None:
            raise PermissionDeniedException(detail="This operation needs a user, not a service client.")
        return self.user_id


ANONYMOUS = Principal()

TokenResolver = Callable[[str], Awaitable[Principal | None]]
"""Turns a raw bearer token into a principal, or None when the token is unknown, expired or revoked."""


def bearer_security(*scopes: str) -> list[dict[str, list[str]]]:
    """OpenAPI `security` for a handler that needs a bearer token with `scopes`."""
    return [{"BearerToken": []}, {"OAuth2": list(scopes)}]


def bearer_challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    """A `WWW-Authenticate` value per RFC 6750 section 3."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


class BearerTokenMiddleware(ASGIMiddleware):
    """Sets `scope["user"]` to the caller's `Principal` (anonymous without an Authorization header).

    A header that is present but malformed, or names a token the resolver does not accept, answers 401:
    a client that sent credentials must learn they are bad instead of silently browsing anonymously.
    """

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = "skip_bearer_auth"
    """Handlers with this key in their `opt` are left alone: OAuth2 endpoints where clients authenticate with
    HTTP Basic or form fields, and pages for browsers."""

    def __init__(self, resolve: TokenResolver) -> None:
        self.resolve = resolve

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        authorization = Headers.from_scope(scope).get("authorization")
        if authorization is None:
            scope["user"] = ANONYMOUS
            scope["auth"] = None
        else:
            token = _parse_bearer(authorization)
            principal = await self.resolve(token)
            if principal is None:
                raise NotAuthorizedException(
                    detail="The access token is invalid, expired or revoked.",
                    headers={"WWW-Authenticate": bearer_challenge("invalid_token", "The access token is not valid")},
                )
            scope["user"] = principal
            scope["auth"] = token
        await next_app(scope, receive, send)


def _parse_bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise NotAuthorizedException(
            detail="Use 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": bearer_challenge("invalid_request", "Malformed Authorization header")},
        )
    return token


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The request's principal; anonymous when no authentication middleware ran."""
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else ANONYMOUS


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency: the calling principal (anonymous when nobody authenticated)."""
    return principal_of(request)


# Guards are coroutines on purpose: Litestar runs a plain-function guard in a worker thread, a thread hand-off
# per guard on every request.


async def require_authenticated(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require_authenticated(connection)


def _require_authenticated(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    if not principal_of(connection).is_authenticated:
        raise NotAuthorizedException(
            detail="Authentication credentials were not provided.",
            headers={"WWW-Authenticate": bearer_challenge()},
        )


async def require_customer(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A signed-in person (customer or staff); service clients without a user are refused."""
    _require_authenticated(connection)
    if not principal_of(connection).is_user:
        raise PermissionDeniedException(detail="This operation needs a user, not a service client.")


async def require_staff(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require_authenticated(connection)
    if not principal_of(connection).is_staff:
        raise PermissionDeniedException(detail="This operation is reserved to staff.")


def require_scopes(
    *required: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard that needs an authenticated principal whose token carries every scope in `required`."""
    needed = " ".join(required)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        _require_authenticated(connection)
        if not principal_of(connection).has_scopes(required):
            raise PermissionDeniedException(
                detail=f"The access token lacks the required scope: {needed}.",
                headers={"WWW-Authenticate": bearer_challenge("insufficient_scope", scope=needed)},
            )

    guard.__name__ = f"require_scopes({needed})"
    return guard
