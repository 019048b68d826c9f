"""The authorization endpoint's HTML pages (`/oauth/authorize`): they render what `AuthorizeService` decides."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec

from shop_identity.oauth.authorize import (
    AuthorizeRequest,
    AuthorizeService,
    ConsentPage,
    Outcome,
    Redirect,
    SignInPage,
)
from shop_identity.oauth.openapi import AuthorizeOperation, SignInFormOperation
from shop_identity.oauth.web import NO_BEARER, OAuthRuntime
from shop_identity.services import CustomerService
from shop_kernel import Unit

__all__ = ("AuthorizeController",)

AUTHORIZE_ERRORS = {
    400: ResponseSpec(
        str,
        media_type="text/html",
        description=(
            "No valid client or redirect URI, so nothing to redirect to, or text that is not valid (not UTF-8, "
            "control characters) in the query or the form: an HTML error page."
        ),
        generate_examples=False,
    ),
    403: ResponseSpec(
        str,
        media_type="text/html",
        description="The form's CSRF token is missing or expired: an HTML error page.",
        generate_examples=False,
    ),
    429: ResponseSpec(
        str,
        media_type="text/html",
        description="Too many failed sign-ins for this account or from this address: an HTML page.",
        generate_examples=False,
    ),
}


FORM_FIELDS = ("csrf_token", "step", "username", "password", "decision")
"""What the authorize pages' forms send."""


async def provide_authorize_service(
    request: Request[Any, Any, Any], unit: NamedDependency[Unit], oauth: NamedDependency[OAuthRuntime]
) -> AuthorizeService:
    asked = AuthorizeRequest(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        address=request.client.host if request.client else "unknown",
        session=oauth.cookie.load(request),
    )
    return AuthorizeService(
        asked,
        server=oauth.server(unit, request),
        customers=CustomerService(unit),
        throttle=oauth.throttle,
        sign_in_session_seconds=oauth.sign_in_session_seconds,
    )


def _answer(request: Request[Any, Any, Any], oauth: OAuthRuntime, outcome: Outcome) -> Response[Any]:
    """The outcome as HTML or a redirect, with the sign-in cookie when the session changed."""
    page = outcome.page
    action = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response: Response[Any]
    if isinstance(page, Redirect):
        response = Response(b"", status_code=302, headers={"Location": page.location, "Cache-Control": "no-store"})
    elif isinstance(page, SignInPage):
        response = oauth.render(
            "sign_in.html",
            status_code=page.status_code,
            client_name=page.client_name,
            action=action,
            csrf_token=page.csrf_token,
            error=page.error,
            username=page.username,
        )
    elif isinstance(page, ConsentPage):
        response = oauth.render(
            "consent.html",
            client_name=page.client_name,
            username=page.username,
            scopes=[{"name": name, "description": grants} for name, grants in page.scopes],
            redirect_host=page.redirect_host,
            action=action,
            csrf_token=page.csrf_token,
        )
    else:
        response = oauth.render(
            "error.html",
            status_code=page.status_code,
            headers={"Retry-After": str(page.retry_after)} if page.retry_after is not None else None,
            title=page.title,
            message=page.message,
            error=page.error,
        )
    if outcome.session is not None:
        response.set_cookie(oauth.cookie.cookie(outcome.session))
    return response


class AuthorizeController(Controller):
    """The browser part: sign-in form, consent screen, redirect back with a code (RFC 6749 section 4.1)."""

    path = "/oauth/authorize"
    tags = ["OAuth2"]
    opt = NO_BEARER
    dependencies = {"authorize": Provide(provide_authorize_service)}

    @get(
        "/",
        operation_id="authorize",
        operation_class=AuthorizeOperation,
        summary="Authorization endpoint (sign-in and consent pages)",
        description=(
            "Starts the authorization code flow: `response_type=code`, `client_id`, `redirect_uri` (exactly as "
            "registered), `scope`, `state`, `code_challenge` + `code_challenge_method=S256` (PKCE, required for "
            "public clients), `nonce` (OpenID Connect), `prompt` (`none`, `login`). Answers an HTML sign-in form, "
            "then a consent screen listing the requested scopes. Errors redirect to the client with `error` and "
            "`state` when the client and redirect URI are valid, and show an error page otherwise."
        ),
        media_type="text/html",
        responses=AUTHORIZE_ERRORS,
    )
    async def show(
        self,
        request: Request[Any, Any, Any],
        oauth: NamedDependency[OAuthRuntime],
        authorize: NamedDependency[AuthorizeService],
    ) -> Response[Any]:
        return _answer(request, oauth, await authorize.show())

    @post(
        "/",
        operation_id="decideAuthorization",
        operation_class=SignInFormOperation,
        summary="Sign-in and consent form submissions",
        description=(
            "The HTML forms post here, with the authorization request still in the query string: "
            "`step=sign_in` (`username`, `password`), `step=consent` (`decision=allow|deny`) or "
            "`step=switch_account`, each with the page's `csrf_token`. Repeated failed sign-ins for an account "
            "or from an address answer 429 for a while."
        ),
        media_type="text/html",
        status_code=200,
        responses=AUTHORIZE_ERRORS,
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        oauth: NamedDependency[OAuthRuntime],
        authorize: NamedDependency[AuthorizeService],
    ) -> Response[Any]:
        form = await request.form()
        fields = {name: value for name in FORM_FIELDS if isinstance(value := form.get(name), str)}
        return _answer(request, oauth, await authorize.submit(fields))
