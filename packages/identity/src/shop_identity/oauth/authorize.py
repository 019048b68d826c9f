"""The authorization endpoint's flow (RFC 6749 section 4.1): sign-in, consent and the redirect back.

`AuthorizeService` decides; it knows nothing of HTTP. It takes what the request said (`AuthorizeRequest`, read
on the event loop) and answers an `Outcome`: the page to show or where to redirect, and the browser's sign-in
session to store when it changed. The controllers only render and redirect.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError

from shop_identity.oauth.server import SCOPES, BridgedRequest
from shop_identity.oauth.store import UserView
from shop_identity.oauth.web import (
    SignInSession,
    parameter_problem,
    run_authlib,
    run_authlib_in_transaction,
    with_issuer,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant

    from shop_identity.oauth.server import ShopAuthorizationServer
    from shop_identity.oauth.throttle import SignInThrottle
    from shop_identity.services import CustomerService

__all__ = (
    "AuthorizeRequest",
    "AuthorizeService",
    "ConsentPage",
    "ErrorPage",
    "Outcome",
    "Redirect",
    "SignInPage",
)


@dataclass(frozen=True)
class SignInPage:
    client_name: str
    csrf_token: str
    error: str | None = None
    username: str = ""
    status_code: int = 200


@dataclass(frozen=True)
class ConsentPage:
    client_name: str
    username: str
    scopes: tuple[tuple[str, str], ...]
    """(scope, what it grants), in the order requested."""
    redirect_host: str
    csrf_token: str


@dataclass(frozen=True)
class ErrorPage:
    status_code: int
    title: str
    message: str
    error: str
    retry_after: int | None = None


@dataclass(frozen=True)
class Redirect:
    """Back to the client (a code or an error, with `iss`): only ever to a redirect URI validated for it."""

    location: str


Page = SignInPage | ConsentPage | ErrorPage | Redirect


@dataclass(frozen=True)
class Outcome:
    page: Page
    session: SignInSession | None = None
    """The sign-in session to store in the browser; None when it did not change."""


@dataclass(frozen=True)
class AuthorizeRequest:
    """What the flow needs of one request to the authorization endpoint."""

    method: str
    url: str
    headers: Mapping[str, str]
    """The framework's case-insensitive headers (see `BridgedRequest`)."""
    query: list[tuple[str, str]]
    address: str
    session: SignInSession

    def param(self, name: str) -> str:
        return next((value for key, value in self.query if key == name), "")


EXPIRED_FORM = ErrorPage(
    403,
    title="This form has expired",
    message="Go back to the application and start signing in again.",
    error="csrf",
)


class AuthorizeService:
    """One request to the authorization endpoint: validated by authlib, answered with an `Outcome`."""

    def __init__(
        self,
        request: AuthorizeRequest,
        *,
        server: ShopAuthorizationServer,
        customers: CustomerService,
        throttle: SignInThrottle,
        sign_in_session_seconds: int,
    ) -> None:
        self.request = request
        self.server = server
        self.customers = customers
        self.throttle = throttle
        self.sign_in_session_seconds = sign_in_session_seconds
        self.session = request.session
        self.session_changed = False

    async def show(self) -> Outcome:
        """`GET`: the sign-in form, or the consent screen for a browser already signed in."""
        prompts = self.request.param("prompt").split()
        user = None if "login" in prompts else await self._signed_in_user()
        found = await self._grant(user)
        if not isinstance(found, Page):
            if "none" in prompts:  # no page may be shown: we always ask for consent
                error_type = LoginRequiredError if user is None else ConsentRequiredError
                state = self.request.param("state") or None
                found = self._error(error_type(redirect_uri=found.redirect_uri, state=state))
            else:
                found = self._sign_in_page(found) if user is None else self._consent_page(found, user)
        return self._outcome(found)

    async def submit(self, form: Mapping[str, str]) -> Outcome:
        """`POST`: one of the pages' forms (`step` = `sign_in`, `consent` or `switch_account`)."""
        sent, expected = form.get("csrf_token"), self.session.csrf
        if sent is None or not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
            return self._outcome(EXPIRED_FORM)
        user = await self._signed_in_user()
        found = await self._grant(user)
        if not isinstance(found, Page):
            step = form.get("step")
            if step == "sign_in":
                found = await self._sign_in(found, form.get("username", ""), form.get("password", ""))
            elif step == "consent" and user is not None:
                found = await self._decide(found, user, allow=form.get("decision") == "allow")
            else:
                if step == "switch_account":
                    self._start_session()
                found = self._sign_in_page(found)
        return self._outcome(found)

    # steps

    async def _sign_in(self, grant: AuthorizationCodeGrant, login: str, password: str) -> Page:
        address = self.request.address
        if (wait := await self.throttle.attempt(login, address)) is not None:
            return ErrorPage(
                429,
                title="Too many attempts",
                message=f"Too many failed sign-ins. Try again in {max(1, wait // 60)} minute(s).",
                error="too_many_attempts",
                retry_after=wait,
            )
        customer = await self.customers.authenticate(login, password)
        if customer is None:
            return self._sign_in_page(grant, error="Wrong username or password.", username=login, status_code=400)
        await self.throttle.succeeded(login, address)
        user = UserView.of(customer)
        self._start_session(user_id=user.id)
        return self._consent_page(grant, user)

    async def _decide(self, grant: AuthorizationCodeGrant, user: UserView, *, allow: bool) -> Page:
        signed_in_at = datetime.fromtimestamp(self.session.auth_time or 0, UTC)
        granted = replace(user, auth_time=signed_in_at) if allow else None
        bridged = grant.request
        server = self.server
        result = await run_authlib_in_transaction(
            server.store, lambda: server.create_authorization_response(bridged, granted, grant)
        )
        # authlib always redirects once the request was validated: with the code, or `access_denied`
        return Redirect(with_issuer(result.location or "", self.server.issuer))

    # authlib

    async def _grant(self, user: UserView | None) -> AuthorizationCodeGrant | Page:
        """The validated authorization request, or the page that refuses it (a redirect or an error page)."""
        request = self.request
        if problem := parameter_problem(request.query):
            return self._error(InvalidRequestError(problem))
        try:
            bridged = BridgedRequest(request.method, request.url, request.headers, query=request.query)
            grant: AuthorizationCodeGrant = await run_authlib(lambda: self.server.get_consent_grant(bridged, user))
        except OAuth2Error as error:
            return self._error(error)
        return grant

    def _error(self, error: OAuth2Error) -> Page:
        """RFC 6749 4.1.2.1: redirect with `error` only to a redirect URI validated for the client."""
        if error.redirect_uri:
            _, _, headers = error()
            return Redirect(with_issuer(dict(headers)["Location"], self.server.issuer))
        return ErrorPage(
            400,
            title="This sign-in link is not valid",
            message=error.get_error_description() or "The application sent an invalid request.",
            error=error.error,
        )

    # pages

    def _sign_in_page(
        self, grant: AuthorizationCodeGrant, *, error: str | None = None, username: str = "", status_code: int = 200
    ) -> SignInPage:
        return SignInPage(grant.client.view.name, self._csrf(), error=error, username=username, status_code=status_code)

    def _consent_page(self, grant: AuthorizationCodeGrant, user: UserView) -> ConsentPage:
        requested = (grant.request.scope or "").split()
        return ConsentPage(
            client_name=grant.client.view.name,
            username=user.username,
            scopes=tuple((name, SCOPES[name]) for name in requested if name in SCOPES),
            redirect_host=urlsplit(grant.redirect_uri or "").netloc,
            csrf_token=self._csrf(),
        )

    # the browser's sign-in session

    def _outcome(self, page: Page) -> Outcome:
        return Outcome(page, self.session if self.session_changed else None)

    def _start_session(self, user_id: int | None = None) -> None:
        """A fresh session (new CSRF token) whenever who is signed in changes."""
        self.session = SignInSession.start(user_id)
        self.session_changed = True

    def _csrf(self) -> str:
        if self.session.csrf is None:
            self.session = replace(self.session, csrf=SignInSession.new_csrf())
            self.session_changed = True
        return self.session.csrf or ""

    async def _signed_in_user(self) -> UserView | None:
        user_id, auth_time = self.session.user_id, self.session.auth_time
        if user_id is None or auth_time is None:
            return None
        if datetime.now(UTC).timestamp() - auth_time > self.sign_in_session_seconds:
            return None
        return await self.server.store.get_user(user_id)
