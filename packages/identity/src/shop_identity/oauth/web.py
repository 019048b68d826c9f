"""Glue between Litestar requests and the authlib server: request materialisation, responses, HTML pages."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from itsdangerous import BadData, URLSafeTimedSerializer
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import Response
from litestar.datastructures import Cookie
from litestar.enums import MediaType

from shop_identity.oauth.server import AuthlibResponse, BridgedRequest, OAuthConfig, ShopAuthorizationServer
from shop_identity.oauth.store import OAuthStore
from shop_identity.oauth.throttle import SignInThrottle
from shop_kernel import BearerTokenMiddleware, InvalidText

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from litestar import Request

    from shop_kernel import Unit

__all__ = (
    "NO_BEARER",
    "OAuthRuntime",
    "SignInCookie",
    "SignInSession",
    "html_page",
    "invalid_text_as_oauth_error",
    "oauth_json",
    "run_authlib",
    "run_authlib_in_transaction",
)

log = logging.getLogger("shop_identity.oauth")
T = TypeVar("T")

MAX_PARAMETER_LENGTH = 4096
STRICT_PARAMETERS = frozenset(
    {"response_type", "client_id", "redirect_uri", "scope", "grant_type", "code_challenge_method", "prompt"}
)
"""Parameters authlib copies into error descriptions, where `"` and `\\` are not allowed (RFC 6749 5.2)."""

NO_BEARER = {BearerTokenMiddleware.exclude_opt_key: True}
"""`opt` of the endpoints the bearer middleware leaves alone: where clients authenticate themselves (HTTP Basic,
form fields), and the browser pages."""

HTML_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # no form-action: browsers apply it to the redirect that follows the consent form
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
}


@dataclass
class OAuthRuntime:
    """What the OAuth handlers share: server configuration, issuer, sign-in throttle, templates."""

    config: OAuthConfig
    issuer: str | None
    throttle: SignInThrottle
    shop_name: str
    sign_in_session_seconds: int
    cookie: SignInCookie
    templates: Environment = field(
        default_factory=lambda: Environment(
            loader=PackageLoader("shop_identity", "templates"),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        )
    )

    def issuer_for(self, request: Request[Any, Any, Any]) -> str:
        """The configured issuer, or (development) the URL this request came to."""
        return self.issuer or str(request.base_url).rstrip("/")

    def server(self, unit: Unit, request: Request[Any, Any, Any]) -> ShopAuthorizationServer:
        return ShopAuthorizationServer(OAuthStore(unit), self.config, self.issuer_for(request))

    def render(
        self, template: str, *, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response[str]:
        return self.render_page(f"oauth/{template}", status_code=status_code, headers=headers, **context)

    def render_page(
        self, template: str, *, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response[str]:
        """Any page of the identity templates (`account/...` too), with the pages' security headers."""
        html = self.templates.get_template(template).render(shop_name=self.shop_name, **context)
        return html_page(html, status_code=status_code, headers=headers)

    def invalid_text_page(self, request: Request[Any, Any, Any], exc: InvalidText) -> Response[str]:
        """The authorize pages answer the kernel's text rule with their HTML error page, not a problem document."""
        return self.render(
            "error.html",
            status_code=400,
            title="This request is not valid",
            message="It contains characters that are not allowed. Go back to the application and start again.",
            error="invalid_request",
        )


def html_page(html: str, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        html, status_code=status_code, media_type=MediaType.HTML, headers={**HTML_HEADERS, **(headers or {})}
    )


def parameter_problem(pairs: Iterable[tuple[str, str]]) -> str | None:
    """Why the OAuth parameters are malformed (RFC 6749 appendix A: visible ASCII only), or None."""
    for name, value in pairs:
        if any(not (0x20 <= ord(char) <= 0x7E) or char in '"\\' for char in name):
            # Not echoed: an error description may not carry such characters (authlib raises, which was a 500).
            return "A parameter name contains characters that are not allowed."
        if len(value) > MAX_PARAMETER_LENGTH:
            return f"The parameter '{name}' is too long."
        if any(not (0x20 <= ord(char) <= 0x7E) for char in value):
            return f"The parameter '{name}' contains characters that are not allowed."
        if name in STRICT_PARAMETERS and ('"' in value or "\\" in value):
            return f"The parameter '{name}' contains characters that are not allowed."
    return None


def bridged_request(
    request: Request[Any, Any, Any], *, query: list[tuple[str, str]], form: list[tuple[str, str]] | None = None
) -> BridgedRequest:
    return BridgedRequest(request.method, str(request.url), request.headers, query=query, form=form)


async def run_authlib(fn: Callable[[], T]) -> T:
    """Run synchronous authlib code in a worker thread; its storage calls come back to this loop.

    authlib raises ValueError when an error description would carry characters RFC 6749 forbids; the
    parameters are checked before, and anything that still slips through is a bad request, not a 500.
    """
    try:
        return await anyio.to_thread.run_sync(fn)
    except ValueError as exc:
        log.warning("authlib refused a request: %s", exc)
        raise InvalidRequestError("The request is malformed.") from exc


async def run_authlib_in_transaction(store: OAuthStore, fn: Callable[[], AuthlibResponse]) -> AuthlibResponse:
    """`run_authlib` for a request that may write: every storage call of `fn` shares one `unit.transaction()`.

    Committed once authlib has answered, before the answer is sent, whether it grants or refuses: a refusal's
    writes are decisions too (a code spent by a failed exchange, a token family revoked because a code or a
    refresh token came back). Rolled back if authlib raised instead (nothing was answered), or if the request
    was cancelled. The unit shields its commit and rollback from cancellation.
    """
    async with store.unit.transaction():
        return await run_authlib(fn)


def oauth_json(result: AuthlibResponse) -> Response[Any]:
    """An authlib JSON answer (token, revocation, introspection, RFC 6749 error) as a Litestar response."""
    headers = {name: value for name, value in result.headers if name.lower() != "content-type"}
    return Response(result.body, status_code=result.status, media_type=MediaType.JSON, headers=headers)


def oauth_error_json(error: OAuth2Error) -> Response[Any]:
    status, body, headers = error()
    return oauth_json(AuthlibResponse(status, dict(body), list(headers)))


def invalid_text_as_oauth_error(request: Request[Any, Any, Any], exc: InvalidText) -> Response[Any]:
    """OAuth clients read RFC 6749 errors: the kernel's text rule is answered as `invalid_request` here."""
    return oauth_error_json(InvalidRequestError("A parameter is not valid text (UTF-8 without control characters)."))


def with_issuer(location: str, issuer: str) -> str:
    """RFC 9207: authorization responses name their issuer, against mix-up attacks."""
    return str(add_params_to_uri(location, [("iss", issuer)]))


def now_seconds() -> int:
    return int(time.time())


@dataclass(frozen=True)
class SignInSession:
    """What the authorize pages remember of a browser: the CSRF token of its forms, and who signed in when."""

    csrf: str | None = None
    user_id: int | None = None
    auth_time: int | None = None
    """When the user signed in (seconds since the epoch)."""

    @staticmethod
    def new_csrf() -> str:
        return secrets.token_urlsafe(32)

    @classmethod
    def start(cls, user_id: int | None = None) -> SignInSession:
        """A new session with a new CSRF token; signed in now if `user_id` is given."""
        return cls(cls.new_csrf(), user_id, now_seconds() if user_id is not None else None)


@dataclass(frozen=True)
class SignInCookie:
    """Where a browser's `SignInSession` is kept between the authorize pages.

    A small cookie signed with itsdangerous (JSON, base64url, a timestamp and an HMAC-SHA256 signature) scoped
    to `/oauth`, HttpOnly, SameSite=Lax and Secure outside plain-http development. It holds no secret: the
    CSRF token in it is also in the page, and a forged or expired cookie reads as no session. Litestar's
    session middleware could not be mounted on one router (it is deep-copied with its cipher at
    registration), and this is all the pages need.
    """

    secret: bytes
    secure: bool
    max_age: int
    name: str = "shop_oauth_session"
    path: str = "/oauth"
    _signer: URLSafeTimedSerializer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        signer = URLSafeTimedSerializer(
            self.secret, salt="shop-oauth-sign-in", signer_kwargs={"digest_method": hashlib.sha256}
        )
        object.__setattr__(self, "_signer", signer)

    def load(self, request: Request[Any, Any, Any]) -> SignInSession:
        try:
            data = self._signer.loads(request.cookies.get(self.name, ""), max_age=self.max_age)
        except BadData:
            return SignInSession()
        if not isinstance(data, dict):  # pragma: no cover - only a forged cookie with a valid signature gets here
            return SignInSession()
        csrf, user_id, auth_time = data.get("csrf"), data.get("uid"), data.get("auth_time")
        return SignInSession(
            csrf if isinstance(csrf, str) else None,
            user_id if isinstance(user_id, int) else None,
            auth_time if isinstance(auth_time, int) else None,
        )

    def cookie(self, session: SignInSession) -> Cookie:
        data: dict[str, Any] = {"csrf": session.csrf}
        if session.user_id is not None:
            data.update(uid=session.user_id, auth_time=session.auth_time)
        return Cookie(
            key=self.name,
            value=self._signer.dumps(data),
            path=self.path,
            max_age=self.max_age,
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
