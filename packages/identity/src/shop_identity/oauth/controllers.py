"""HTTP endpoints of the authorization server: `/oauth/*`, `/.well-known/*` and staff client management."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio.to_thread
import msgspec
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity.models import Customer
from shop_identity.oauth.clients import ClientCreated, ClientInfo, ClientRegistration, OAuthClientService
from shop_identity.oauth.openapi import (
    AuthorizeOperation,
    IntrospectOperation,
    RevokeOperation,
    SignInFormOperation,
    TokenOperation,
)
from shop_identity.oauth.server import CLIENT_AUTH_METHODS, SCOPES, SECRET_METHODS, user_claims
from shop_identity.oauth.store import OAuthStore, UserView
from shop_identity.oauth.web import (
    OAuthRuntime,
    bridged_request,
    invalid_text_as_oauth_error,
    oauth_error_json,
    oauth_json,
    parameter_problem,
    run_authlib,
    with_issuer,
)
from shop_identity.passwords import hash_password, verify_password
from shop_kernel import (
    BearerTokenMiddleware,
    InvalidText,
    Principal,
    bearer_security,
    require_customer,
    require_scopes,
    require_staff,
)

if TYPE_CHECKING:
    from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant

__all__ = ("AuthorizeController", "ClientAdminController", "OAuthController", "WellKnownController")

NO_BEARER = {BearerTokenMiddleware.exclude_opt_key: True}
"""Endpoints where clients authenticate themselves (HTTP Basic, form fields), not with a bearer token."""


class OAuthErrorBody(msgspec.Struct, omit_defaults=True):
    """An OAuth 2.0 error answer (RFC 6749 section 5.2), not a problem document: OAuth clients read these fields."""

    error: str
    error_description: str | None = None


OAUTH_ERRORS = {
    400: ResponseSpec(
        OAuthErrorBody,
        description="`invalid_request`, `invalid_grant`, `unsupported_grant_type`, `invalid_scope`...",
        generate_examples=False,
    ),
    401: ResponseSpec(
        OAuthErrorBody,
        description="`invalid_client`: the client failed to authenticate (`WWW-Authenticate` names the scheme).",
        generate_examples=False,
    ),
}
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


FORM_DESCRIPTION = (
    "Form-encoded (`application/x-www-form-urlencoded`) as RFC 6749 requires; clients authenticate with "
    "HTTP Basic (`client_secret_basic`) or form fields (`client_secret_post`); public clients send only "
    "`client_id`. Errors are RFC 6749 JSON (`error`, `error_description`), not problem documents."
)


class AuthorizeController(Controller):
    """The browser part: sign-in form, consent screen, redirect back with a code (RFC 6749 section 4.1)."""

    path = "/oauth/authorize"
    tags = ["OAuth2"]
    opt = NO_BEARER

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
        db_session: NamedDependency[AsyncSession],
        oauth: NamedDependency[OAuthRuntime],
    ) -> Response[Any]:
        flow = AuthorizeFlow(request, db_session, oauth)
        return flow.finish(await flow.show())

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
        db_session: NamedDependency[AsyncSession],
        oauth: NamedDependency[OAuthRuntime],
    ) -> Response[Any]:
        flow = AuthorizeFlow(request, db_session, oauth)
        return flow.finish(await flow.submit())


class AuthorizeFlow:
    """One request to the authorization endpoint."""

    def __init__(self, request: Request[Any, Any, Any], session: AsyncSession, oauth: OAuthRuntime) -> None:
        self.request = request
        self.session = session
        self.oauth = oauth
        self.store = OAuthStore(session)
        self.server = oauth.server(session, request)
        self.query = list(request.query_params.multi_items())
        self.action = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        self.data = oauth.cookie.load(request)
        self.data_changed = False

    def finish(self, response: Response[Any]) -> Response[Any]:
        if self.data_changed:
            response.set_cookie(self.oauth.cookie.cookie(self.data))
        return response

    # the pages

    async def show(self) -> Response[Any]:
        prompts = self._param("prompt").split()
        user = None if "login" in prompts else await self._signed_in_user()
        found = await self._grant(user)
        if isinstance(found, Response):
            return found
        if "none" in prompts:  # no page may be shown: we always ask for consent
            error_type = LoginRequiredError if user is None else ConsentRequiredError
            return self._error(error_type(redirect_uri=found.redirect_uri, state=self._param("state") or None))
        if user is None:
            return self._sign_in_page(found)
        return self._consent_page(found, user)

    async def submit(self) -> Response[Any]:
        form = await self.request.form()
        sent = form.get("csrf_token")
        expected = self._session().get("csrf")
        if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
            return self.oauth.render(
                "error.html",
                status_code=403,
                title="This form has expired",
                message="Go back to the application and start signing in again.",
                error="csrf",
            )
        user = await self._signed_in_user()
        found = await self._grant(user)
        if isinstance(found, Response):
            return found
        step = form.get("step")
        if step == "sign_in":
            return await self._sign_in(found, str(form.get("username") or ""), str(form.get("password") or ""))
        if step == "consent" and user is not None:
            return await self._decide(found, user, allow=form.get("decision") == "allow")
        if step == "switch_account":
            self._start_session()
        return self._sign_in_page(found)

    # steps

    async def _sign_in(self, grant: AuthorizationCodeGrant, login: str, password: str) -> Response[Any]:
        address = self.request.client.host if self.request.client else "unknown"
        throttle = self.oauth.throttle
        if (wait := await throttle.attempt(login, address)) is not None:
            return self.oauth.render(
                "error.html",
                status_code=429,
                headers={"Retry-After": str(wait)},
                title="Too many attempts",
                message=f"Too many failed sign-ins. Try again in {max(1, wait // 60)} minute(s).",
                error="too_many_attempts",
            )
        customer = await self._find_customer(login)
        stored_hash = customer.password_hash if customer else None
        valid = await anyio.to_thread.run_sync(_check_password, stored_hash, password)
        if customer is None or not valid or not customer.is_active:
            return self._sign_in_page(grant, error="Wrong username or password.", username=login, status_code=400)
        await throttle.succeeded(login, address)
        user = UserView.of(customer)
        self._start_session(user_id=user.id)
        return self._consent_page(grant, user)

    async def _decide(self, grant: AuthorizationCodeGrant, user: UserView, *, allow: bool) -> Response[Any]:
        granted = replace(user, auth_time=datetime.fromtimestamp(self._session()["auth_time"], UTC)) if allow else None
        bridged = grant.request
        result = await run_authlib(lambda: self.server.create_authorization_response(bridged, granted, grant))
        location = result.location
        if location is None:  # pragma: no cover - authlib always redirects once the request was validated
            return oauth_json(result)
        return Response(
            b"",
            status_code=302,
            headers={"Location": with_issuer(location, self.server.issuer), "Cache-Control": "no-store"},
        )

    # authlib

    async def _grant(self, user: UserView | None) -> AuthorizationCodeGrant | Response[Any]:
        """Validate the authorization request; an invalid one becomes the response (redirect or error page)."""
        if problem := parameter_problem(self.query):
            return self._error(InvalidRequestError(problem))
        try:
            bridged = bridged_request(self.request, query=self.query)
            grant: AuthorizationCodeGrant = await run_authlib(lambda: self.server.get_consent_grant(bridged, user))
        except OAuth2Error as error:
            return self._error(error)
        return grant

    def _error(self, error: OAuth2Error) -> Response[Any]:
        """RFC 6749 4.1.2.1: redirect with `error` only to a redirect URI validated for the client."""
        if error.redirect_uri:
            _, _, headers = error()
            location = dict(headers)["Location"]
            return Response(
                b"",
                status_code=302,
                headers={"Location": with_issuer(location, self.server.issuer), "Cache-Control": "no-store"},
            )
        return self.oauth.render(
            "error.html",
            status_code=400,
            title="This sign-in link is not valid",
            message=error.get_error_description() or "The application sent an invalid request.",
            error=error.error,
        )

    # pages

    def _sign_in_page(
        self, grant: AuthorizationCodeGrant, *, error: str | None = None, username: str = "", status_code: int = 200
    ) -> Response[Any]:
        return self.oauth.render(
            "sign_in.html",
            status_code=status_code,
            client_name=grant.client.view.name,
            action=self.action,
            csrf_token=self._csrf(),
            error=error,
            username=username,
        )

    def _consent_page(self, grant: AuthorizationCodeGrant, user: UserView) -> Response[Any]:
        scopes = (grant.request.scope or "").split()
        return self.oauth.render(
            "consent.html",
            client_name=grant.client.view.name,
            username=user.username,
            scopes=[{"name": name, "description": SCOPES[name]} for name in scopes if name in SCOPES],
            redirect_host=urlsplit(grant.redirect_uri or "").netloc,
            action=self.action,
            csrf_token=self._csrf(),
        )

    # the sign-in session (an encrypted cookie on /oauth only)

    def _session(self) -> dict[str, Any]:
        return self.data

    def _start_session(self, user_id: int | None = None) -> None:
        """A fresh session (new CSRF token) whenever who is signed in changes."""
        self.data = {"csrf": secrets.token_urlsafe(32)}
        if user_id is not None:
            self.data.update(uid=user_id, auth_time=int(datetime.now(UTC).timestamp()))
        self.data_changed = True

    def _csrf(self) -> str:
        if not isinstance(self.data.get("csrf"), str):
            self.data["csrf"] = secrets.token_urlsafe(32)
            self.data_changed = True
        return str(self.data["csrf"])

    async def _signed_in_user(self) -> UserView | None:
        session = self._session()
        user_id, auth_time = session.get("uid"), session.get("auth_time")
        if not isinstance(user_id, int) or not isinstance(auth_time, int):
            return None
        if datetime.now(UTC).timestamp() - auth_time > self.oauth.sign_in_session_seconds:
            return None
        return await self.store.get_user(user_id)

    async def _find_customer(self, login: str) -> Customer | None:
        login = login.strip().lower()
        if not login or len(login) > 254:
            return None
        customer: Customer | None = await self.session.scalar(
            select(Customer).where(or_(func.lower(Customer.username) == login, func.lower(Customer.email) == login))
        )
        return customer

    def _param(self, name: str) -> str:
        return next((value for key, value in self.query if key == name), "")


@cache
def _unknown_account_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _check_password(stored_hash: str | None, password: str) -> bool:
    """For an unknown account, verify against a throwaway hash anyway: both failures take as long."""
    valid = verify_password(stored_hash or _unknown_account_hash(), password)
    return valid and stored_hash is not None


class OAuthController(Controller):
    """Token, revocation, introspection (client-authenticated), userinfo (bearer) and the JWKS."""

    path = "/oauth"
    tags = ["OAuth2"]
    exception_handlers = {InvalidText: invalid_text_as_oauth_error}

    async def _form_request(
        self, request: Request[Any, Any, Any], oauth: OAuthRuntime, db_session: AsyncSession, endpoint: str
    ) -> Response[Any]:
        form = await request.form()
        pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
        names = [name for name, _ in pairs]
        if problem := parameter_problem(pairs):
            return oauth_error_json(InvalidRequestError(problem))
        if len(names) != len(set(names)):
            return oauth_error_json(InvalidRequestError("A parameter is repeated."))
        server = oauth.server(db_session, request)
        try:
            bridged = bridged_request(request, query=[], form=pairs)
            if endpoint == "token":
                result = await run_authlib(lambda: server.create_token_response(bridged))
            else:
                result = await run_authlib(lambda: server.create_endpoint_response(endpoint, bridged))
        except OAuth2Error as error:
            return oauth_error_json(error)
        return oauth_json(result)

    @post(
        "/token",
        operation_id="getToken",
        operation_class=TokenOperation,
        summary="Token endpoint",
        description=(
            "`grant_type=authorization_code` (`code`, `redirect_uri`, `code_verifier`), `refresh_token` "
            "(`refresh_token`, optional narrower `scope`; answers a new refresh token, the old one is spent and "
            "presenting it again revokes the whole token family) or `client_credentials` (confidential clients; "
            "the token has no user). " + FORM_DESCRIPTION
        ),
        opt=NO_BEARER,
        status_code=200,
        responses=OAUTH_ERRORS,
    )
    async def token(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        oauth: NamedDependency[OAuthRuntime],
    ) -> Response[Any]:
        return await self._form_request(request, oauth, db_session, "token")

    @post(
        "/revoke",
        operation_id="revokeToken",
        operation_class=RevokeOperation,
        summary="Token revocation (RFC 7009)",
        description=(
            "`token`, optional `token_type_hint`. A refresh token revokes its whole family; an access token "
            "itself and the refresh token issued with it. Unknown tokens answer 200 too. Effective on the "
            "next request in this process, within 5 seconds on other replicas. " + FORM_DESCRIPTION
        ),
        opt=NO_BEARER,
        status_code=200,
        responses=OAUTH_ERRORS,
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        oauth: NamedDependency[OAuthRuntime],
    ) -> Response[Any]:
        return await self._form_request(request, oauth, db_session, "revocation")

    @post(
        "/introspect",
        operation_id="introspectToken",
        operation_class=IntrospectOperation,
        summary="Token introspection (RFC 7662)",
        description=(
            "`token`, optional `token_type_hint`. Confidential clients may introspect their own tokens; resource "
            'server clients (`may_introspect`) any token. Answers `{"active": false}` for anything not live. '
            + FORM_DESCRIPTION
        ),
        opt=NO_BEARER,
        status_code=200,
        responses=OAUTH_ERRORS,
    )
    async def introspect(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        oauth: NamedDependency[OAuthRuntime],
    ) -> Response[Any]:
        return await self._form_request(request, oauth, db_session, "introspection")

    @get(
        "/userinfo",
        operation_id="getUserInfo",
        summary="OpenID Connect userinfo",
        description="Claims about the signed-in user: `sub` always, `profile` and `email` by scope; needs `openid`.",
        guards=[require_customer, require_scopes("openid")],
        security=bearer_security("openid"),
    )
    async def userinfo(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Response[dict[str, Any]]:
        return await _userinfo(db_session, principal)

    @post(
        "/userinfo",
        operation_id="postUserInfo",
        summary="OpenID Connect userinfo (POST)",
        guards=[require_customer, require_scopes("openid")],
        security=bearer_security("openid"),
        status_code=200,
    )
    async def userinfo_post(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Response[dict[str, Any]]:
        return await _userinfo(db_session, principal)

    @get("/jwks", operation_id="getJwks", summary="JSON Web Key Set for id_token signatures", opt=NO_BEARER)
    async def jwks(self, oauth: NamedDependency[OAuthRuntime]) -> Response[dict[str, Any]]:
        return Response(oauth.config.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


async def _userinfo(session: AsyncSession, principal: Principal) -> Response[dict[str, Any]]:
    user = await OAuthStore(session).get_user(principal.require_user_id())
    if user is None:  # pragma: no cover - the token resolver already refuses deactivated accounts
        raise NotAuthorizedException(detail="The account is not active.")
    return Response(user_claims(user, " ".join(principal.scopes)), headers={"Cache-Control": "no-store"})


class WellKnownController(Controller):
    path = "/.well-known"
    tags = ["OAuth2"]
    opt = NO_BEARER

    @get(
        "/oauth-authorization-server",
        operation_id="getAuthorizationServerMetadata",
        summary="Authorization server metadata (RFC 8414)",
    )
    async def oauth_metadata(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthRuntime]
    ) -> dict[str, Any]:
        return server_metadata(oauth.issuer_for(request))

    @get("/openid-configuration", operation_id="getOpenidConfiguration", summary="OpenID Connect discovery")
    async def openid_configuration(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthRuntime]
    ) -> dict[str, Any]:
        return server_metadata(oauth.issuer_for(request))


def server_metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(SECRET_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "at_hash",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "updated_at",
            "email",
            "email_verified",
        ],
        "prompt_values_supported": ["none", "login"],
        # OpenID Connect request objects are not supported (request_uri's default would say they are)
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


async def provide_client_service(db_session: NamedDependency[AsyncSession]) -> OAuthClientService:
    return OAuthClientService(db_session)


class ClientAdminController(Controller):
    path = "/api/oauth/clients"
    tags = ["OAuth2"]
    dependencies = {"clients": provide_client_service}

    @get(
        "/",
        operation_id="listClients",
        summary="List OAuth2 clients",
        guards=[require_staff, require_scopes("read")],
        security=bearer_security("read"),
    )
    async def list_clients(self, clients: NamedDependency[OAuthClientService]) -> list[ClientInfo]:
        return await clients.list()

    @post(
        "/",
        operation_id="createClient",
        summary="Register an OAuth2 client",
        description=(
            "Public clients (`public: true`) get no secret and must use PKCE; confidential clients get a "
            "`client_secret`, shown in this response only. Redirect URIs are matched exactly; https only "
            "(http on loopback addresses)."
        ),
        guards=[require_staff, require_scopes("write")],
        security=bearer_security("write"),
        status_code=201,
    )
    async def create_client(
        self, clients: NamedDependency[OAuthClientService], data: JSONBody[ClientRegistration]
    ) -> ClientCreated:
        return await clients.create(data)

    @post(
        "/{client_id:str}/disable/",
        operation_id="disableClient",
        summary="Disable an OAuth2 client",
        description="The client can no longer obtain tokens, and every token issued to it stops working.",
        guards=[require_staff, require_scopes("write")],
        security=bearer_security("write"),
        status_code=200,
    )
    async def disable_client(
        self, clients: NamedDependency[OAuthClientService], client_id: FromPath[str]
    ) -> ClientInfo:
        return await clients.disable(client_id)
