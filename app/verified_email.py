"""`REQUIRE_VERIFIED_EMAIL_FOR_ORDERS`: customers place orders only once their e-mail address is verified.

Composed here rather than in ordering, which knows nothing of e-mail verification: the bearer middleware has
already put the caller's `Principal` (with `email_verified`) in the scope, so the check costs no query. It is
installed only when the setting is on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from shop_kernel import principal_of, problem_response

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ("VerifiedEmailForOrdersMiddleware",)

PLACE_ORDER = re.compile(r"^/api/orders/?$")


class VerifiedEmailForOrdersMiddleware(ASGIMiddleware):
    """403 `/problems/email-not-verified` for a customer (not staff) placing an order with an unverified address."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") == "POST" and PLACE_ORDER.match(scope["path"]):
            request: Request[Any, Any, Any] = Request(scope, receive)
            principal = principal_of(request)
            if principal.is_user and not principal.is_staff and not principal.email_verified:
                response = problem_response(
                    request,
                    403,
                    "Verify your e-mail address before placing an order: follow the link we sent, or ask for a new "
                    "one at POST /api/auth/email/verify/resend/.",
                    problem_type="/problems/email-not-verified",
                )
                await response.to_asgi_response(app=None, request=request)(scope, receive, send)
                return
        await next_app(scope, receive, send)
