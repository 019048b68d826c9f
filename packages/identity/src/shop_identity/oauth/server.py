"""authlib's synchronous authorization server, bridged into async Litestar handlers.

The bridge (see docs/decisions.md and DESIGN.md section 7): the async handler reads the whole request
(query, form, headers) into a `BridgedRequest`, builds a `ShopAuthorizationServer` bound to the request's
`OAuthStore`, and runs authlib in a worker thread with `anyio.to_thread.run_sync`. Whenever authlib needs
storage, the server calls back into the event loop with `anyio.from_thread.run`, so every database access
happens on the loop that owns the session, all of one request's in one transaction that the handler commits
once authlib has answered (`run_authlib_in_transaction`). authlib's "responses" are plain `AuthlibResponse`
tuples that the handler turns into Litestar responses.

Over 350 lines on purpose: authlib is configured by subclassing, and each grant, endpoint and adapter is a
few lines that only make sense next to the server they register on.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.from_thread
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError
from authlib.oidc.core.grants import OpenIDCode

from shop_identity.oauth.client_auth import (
    GENERIC_FAILURE,
    authenticate_public_client,
    explain_failed_client_authentication,
)
from shop_identity.oauth.keys import SigningKeys
from shop_identity.oauth.redirects import covers_redirect_uri
from shop_identity.oauth.store import ClientView, CodeView, OAuthStore, TokenView, UserView
from shop_identity.services import hash_token

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Mapping

__all__ = (
    "SCOPES",
    "AuthlibResponse",
    "BridgedRequest",
    "OAuthConfig",
    "ShopAuthorizationServer",
    "user_claims",
)

T = TypeVar("T")

SCOPES = {
    "read": "Read the catalog, your profile and your orders",
    "write": "Place and cancel orders, update your profile (staff: manage the catalog)",
    "openid": "Sign you in with OpenID Connect",
    "profile": "Your name and username",
    "email": "Your e-mail address",
}
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
CLIENT_AUTH_METHODS = (*SECRET_METHODS, "none")


@dataclass(frozen=True)
class OAuthConfig:
    access_token_ttl: timedelta
    refresh_token_ttl: timedelta
    authorization_code_ttl: timedelta
    id_token_ttl: timedelta
    keys: SigningKeys
    refused_client_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AuthlibResponse:
    status: int
    body: Any
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        return next((value for name, value in self.headers if name.lower() == "location"), None)


class BridgedPayload(OAuth2Payload):  # type: ignore[misc]
    """Request parameters, materialised on the event loop before authlib runs in a thread."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class BridgedRequest(OAuth2Request):  # type: ignore[misc]
    """An `OAuth2Request` that needs nothing from the framework once built.

    `headers` must stay the framework's case-insensitive mapping: authlib reads `Authorization` with
    that exact spelling, so a plain dict with lower-cased keys silently breaks HTTP Basic client auth.
    """

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        *,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = BridgedPayload(query)
        self._form = BridgedPayload(form or [])
        # authorization requests carry their parameters in the query, token requests in the body
        self.payload = self._args if form is None else self._form

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data


class ClientAdapter(ClientMixin):  # type: ignore[misc]
    def __init__(self, view: ClientView) -> None:
        self.view = view
        self.client_id = view.client_id

    def get_client_id(self) -> str:
        return self.view.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.view.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes this client may have (all of its scopes when none are requested)."""
        if not scope:
            return " ".join(self.view.scopes)
        allowed = [name for name in dict.fromkeys(scope.split()) if name in self.view.scopes]
        return " ".join(allowed) if allowed else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return covers_redirect_uri(self.view.redirect_uris, redirect_uri, any_loopback_port=self.view.is_public)

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.view.secret_hash
        return stored is not None and secrets.compare_digest(stored, hash_token(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.view.is_public:
            return method == "none"
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.view.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.view.grant_types


class CodeAdapter(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, view: CodeView) -> None:
        self.view = view
        self.code_challenge = view.code_challenge
        self.code_challenge_method = view.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.view.redirect_uri

    def get_scope(self) -> str:
        return self.view.scope

    def get_nonce(self) -> str | None:
        return self.view.nonce

    def get_auth_time(self) -> int:
        return int(self.view.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


class TokenAdapter(TokenMixin):  # type: ignore[misc]
    def __init__(self, view: TokenView) -> None:
        self.view = view

    def check_client(self, client: ClientAdapter) -> bool:
        return self.view.client_id == client.view.client_id

    def get_scope(self) -> str:
        return self.view.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.view.expires_at - self.view.issued_at).total_seconds()))

    def is_expired(self) -> bool:
        return self.view.expires_at <= datetime.now(self.view.expires_at.tzinfo)

    def is_revoked(self) -> bool:
        return self.view.revoked


def user_claims(user: UserView, scope: str) -> dict[str, Any]:
    """OpenID Connect claims of `user` that `scope` releases (`sub` always)."""
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": str(user.id)}
    if "profile" in scopes:
        claims.update(
            name=f"{user.first_name} {user.last_name}".strip() or user.username,
            given_name=user.first_name,
            family_name=user.last_name,
            preferred_username=user.username,
            updated_at=int(user.updated_at.timestamp()),
        )
    if "email" in scopes:
        claims.update(email=user.email, email_verified=user.email_verified)
    return claims


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only (RFC 9700 2.1.1: `plain` offers no protection against a leaked request), and
    required of public clients. A code issued with a challenge needs the verifier; a verifier without
    a challenge is refused (downgrade protection, done by authlib)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str | None) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge"):
            if data.get("code_challenge_method") != "S256":
                raise InvalidRequestError("PKCE needs code_challenge_method=S256; plain is not supported.")
        elif grant.request.client.view.is_public:
            raise InvalidRequestError("Public clients must send a PKCE code_challenge (S256).")


class NoRequestObjects:
    """OpenID Connect request objects (`request`, `request_uri`) are not supported, as discovery says. A
    request carrying one is answered with OIDC Core's `request_not_supported` / `request_uri_not_supported`
    rather than granted on the plain parameters, which may not be what the request object asked for."""

    def __call__(self, grant: AuthorizationCodeGrant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.refuse)

    def refuse(self, grant: AuthorizationCodeGrant, redirect_uri: str | None) -> None:
        data = grant.request.payload.data
        if "request" in data:
            raise RequestNotSupportedError("Request objects (the request parameter) are not supported.")
        if "request_uri" in data:
            raise RequestURINotSupportedError("The request_uri parameter is not supported.")


class ShopOpenIDCode(OpenIDCode):  # type: ignore[misc]
    """id_tokens for the `openid` scope: RS256 with the current signing key, `nonce` and `auth_time`."""

    def __init__(self, server: ShopAuthorizationServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.server.call(self.server.store.nonce_was_used, request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: ClientAdapter) -> Any:
        return self.server.config.keys.current

    def get_client_algorithm(self, client: ClientAdapter) -> str:
        return "RS256"

    def get_encode_header(self, client: ClientAdapter) -> dict[str, str]:
        return {"alg": "RS256", "typ": "JWT", "kid": self.server.config.keys.kid}

    def get_client_claims(self, client: ClientAdapter) -> dict[str, Any]:
        now = int(time.time())
        ttl = int(self.server.config.id_token_ttl.total_seconds())
        return {"iss": self.server.issuer, "aud": [client.get_client_id()], "iat": now, "exp": now + ttl}

    def generate_user_info(self, user: UserView, scope: str) -> dict[str, Any]:
        return user_claims(user, scope)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)
    server: ShopAuthorizationServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        user: UserView = request.user
        self.server.call(
            self.server.store.save_code,
            code,
            client_id=request.client.get_client_id(),
            customer_id=user.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=user.auth_time,
            ttl=self.server.config.authorization_code_ttl,
        )

    def query_authorization_code(self, code: str, client: ClientAdapter) -> CodeAdapter | None:
        view = self.server.call(self.server.store.claim_code, code, client.get_client_id())
        return CodeAdapter(view) if view else None

    def delete_authorization_code(self, authorization_code: CodeAdapter) -> None:
        """Nothing to do: the code was marked used when it was claimed, and is kept to detect reuse."""

    def authenticate_user(self, authorization_code: CodeAdapter) -> UserView | None:
        user = self.server.call(self.server.store.get_user, authorization_code.view.customer_id)
        return replace(user, auth_time=authorization_code.view.auth_time) if user else None


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation: each exchange returns a new refresh token and spends the old one."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: ShopAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> TokenAdapter | None:
        view = self.server.call(self.server.store.find_refresh_token, refresh_token)
        if view is None or view.customer_id is None:
            return None
        self._user = self.server.call(self.server.store.get_user, view.customer_id)
        return TokenAdapter(view) if self._user else None  # a deactivated account refreshes nothing

    def authenticate_user(self, refresh_token: TokenAdapter) -> UserView | None:
        return self._user

    def revoke_old_credential(self, refresh_token: TokenAdapter) -> None:
        """Nothing to do: `save_token` spent the old refresh token in the same transaction."""


class ServiceGrant(ClientCredentialsGrant):  # type: ignore[misc]
    """Client credentials: confidential clients only; the token has a client and no user."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(SECRET_METHODS)


class _TokenLookup:
    server: ShopAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenAdapter | None:
        view = self.server.call(self.server.store.find_token, token_string, token_type_hint)
        return TokenAdapter(view) if view else None


class Revocation(_TokenLookup, RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009. Revoking a refresh token revokes its whole family; revoking an access token revokes that
    token and the refresh token issued with it (RFC 7009 section 2.1 allows both)."""

    CLIENT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)

    def revoke_token(self, token: TokenAdapter, request: OAuth2Request) -> None:
        store = self.server.store
        if token.view.kind == "refresh_token" and token.view.family_id:
            self.server.call(store.revoke_family, token.view.family_id)
        else:
            self.server.call(store.revoke_token, token.view.id)


class Introspection(_TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662, for confidential clients: about their own tokens, or any token for a resource server
    client (`may_introspect`)."""

    CLIENT_AUTH_METHODS = list(SECRET_METHODS)

    def check_permission(self, token: TokenAdapter, client: ClientAdapter, request: OAuth2Request) -> bool:
        return client.view.may_introspect or token.view.client_id == client.view.client_id

    def introspect_token(self, token: TokenAdapter) -> dict[str, Any]:
        view = token.view
        payload: dict[str, Any] = {
            "active": True,
            "scope": view.scope,
            "token_type": "Bearer" if view.kind == "access_token" else "refresh_token",
            "exp": int(view.expires_at.timestamp()),
            "iat": int(view.issued_at.timestamp()),
            "iss": self.server.issuer,
        }
        if view.client_id:
            payload["client_id"] = view.client_id
        if view.customer_id is not None:
            payload["sub"] = str(view.customer_id)
            payload["username"] = view.username
        return payload


class ShopAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """One instance per request, bound to that request's store; cheap to build (a few registrations)."""

    def __init__(self, store: OAuthStore, config: OAuthConfig, issuer: str) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.store = store
        self.config = config
        self.issuer = issuer
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=_new_token,
                refresh_token_generator=_new_token,
                expires_generator=int(config.access_token_ttl.total_seconds()),
            ),
        )
        self.register_grant(CodeGrant, [S256CodeChallenge(required=True), ShopOpenIDCode(self), NoRequestObjects()])
        self.register_grant(RefreshGrant)
        self.register_grant(ServiceGrant)
        self.register_endpoint(Revocation(self))
        self.register_endpoint(Introspection(self))
        self.register_client_auth_method("none", authenticate_public_client)

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Run a storage coroutine on the event loop from authlib's worker thread."""
        return anyio.from_thread.run(partial(fn, *args, **kwargs))

    def query_client(self, client_id: str) -> ClientAdapter | None:
        if client_id in self.config.refused_client_ids:
            return None
        view = self.call(self.store.get_client, client_id)
        return ClientAdapter(view) if view else None

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Any:
        """authlib's, with its "cannot authenticate with methods: [...]" replaced by what to send instead."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            if str(error.description).startswith(GENERIC_FAILURE):
                error.description = explain_failed_client_authentication(self.query_client, request, methods)
            raise

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        grant_type = request.payload.grant_type
        user: UserView | None = request.user
        code_id = request.authorization_code.view.id if grant_type == "authorization_code" else None
        rotated: TokenAdapter | None = request.refresh_token if grant_type == "refresh_token" else None
        saved = self.call(
            self.store.save_token,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            client_id=request.client.get_client_id(),
            customer_id=user.id if user else None,
            scope=token.get("scope", ""),
            access_ttl=self.config.access_token_ttl,
            refresh_ttl=self.config.refresh_token_ttl,
            family_id=rotated.view.family_id if rotated else None,
            code_id=code_id,
            rotated_token_id=rotated.view.id if rotated else None,
        )
        if not saved:
            raise InvalidGrantError("The refresh token was already used; its token family is revoked.")

    def create_oauth2_request(self, request: BridgedRequest) -> BridgedRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> AuthlibResponse:
        return AuthlibResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signals (client authenticated, token revoked): nothing listens."""


def _new_token(**_: Any) -> str:
    return secrets.token_urlsafe(32)
