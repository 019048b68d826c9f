"""HTTP endpoints of the authorization server for clients (`/oauth/token` & co.), `/.well-known/*` and staff client
management. The browser pages of `/oauth/authorize` are in `shop_identity.oauth.pages`."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation
from litestar.params import FromPath, JSONBody

from shop_identity.oauth.clients import ClientCreated, ClientInfo, ClientRegistration, OAuthClientService
from shop_identity.oauth.openapi import (
    IntrospectOperation,
    RevokeOperation,
    TokenOperation,
)
from shop_identity.oauth.server import (
    CLIENT_AUTH_METHODS,
    SCOPES,
    SECRET_METHODS,
    ShopAuthorizationServer,
    user_claims,
)
from shop_identity.oauth.store import OAuthStore
from shop_identity.oauth.web import (
    NO_BEARER,
    OAuthRuntime,
    bridged_request,
    invalid_text_as_oauth_error,
    oauth_error_json,
    oauth_json,
    parameter_problem,
    run_authlib_in_transaction,
)
from shop_kernel import (
    InvalidText,
    Principal,
    Unit,
    bearer_security,
    require_customer,
    require_scopes,
    require_staff,
)

__all__ = ("ClientAdminController", "OAuthController", "WellKnownController")


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
FORM_DESCRIPTION = (
    "Form-encoded (`application/x-www-form-urlencoded`) as RFC 6749 requires; clients authenticate with "
    "HTTP Basic (`client_secret_basic`) or form fields (`client_secret_post`); public clients send only "
    "`client_id`. Errors are RFC 6749 JSON (`error`, `error_description`), not problem documents."
)


async def provide_authorization_server(
    request: Request[Any, Any, Any], unit: NamedDependency[Unit], oauth: NamedDependency[OAuthRuntime]
) -> ShopAuthorizationServer:
    """authlib's server for this request, on the request's unit of work."""
    return oauth.server(unit, request)


def _client_endpoint(
    path: str,
    endpoint: Literal["token", "revocation", "introspection"],
    *,
    operation_id: str,
    operation_class: type[Operation],
    summary: str,
    description: str,
) -> HTTPRouteHandler:
    """One of the endpoints where clients authenticate themselves and post a form (RFC 6749 section 3.2): the
    token endpoint, or one of authlib's registered endpoints (revocation, introspection)."""

    async def answer(
        self: Controller,
        request: Request[Any, Any, Any],
        authorization_server: NamedDependency[ShopAuthorizationServer],
    ) -> Response[Any]:
        form = await request.form()
        pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
        names = [name for name, _ in pairs]
        if problem := parameter_problem(pairs):
            return oauth_error_json(InvalidRequestError(problem))
        if len(names) != len(set(names)):
            return oauth_error_json(InvalidRequestError("A parameter is repeated."))
        server = authorization_server
        try:
            bridged = bridged_request(request, query=[], form=pairs)
            if endpoint == "token":
                result = await run_authlib_in_transaction(server.store, lambda: server.create_token_response(bridged))
            else:
                result = await run_authlib_in_transaction(
                    server.store, lambda: server.create_endpoint_response(endpoint, bridged)
                )
        except OAuth2Error as error:
            return oauth_error_json(error)
        return oauth_json(result)

    answer.__name__ = answer.__qualname__ = endpoint
    return post(
        path,
        operation_id=operation_id,
        operation_class=operation_class,
        summary=summary,
        description=f"{description} {FORM_DESCRIPTION}",
        opt=NO_BEARER,
        status_code=200,
        responses=OAUTH_ERRORS,
    )(answer)


class OAuthController(Controller):
    """Token, revocation, introspection (client-authenticated), userinfo (bearer) and the JWKS."""

    path = "/oauth"
    tags = ["OAuth2"]
    exception_handlers = {InvalidText: invalid_text_as_oauth_error}
    dependencies = {"authorization_server": Provide(provide_authorization_server)}

    token = _client_endpoint(
        "/token",
        "token",
        operation_id="getToken",
        operation_class=TokenOperation,
        summary="Token endpoint",
        description=(
            "`grant_type=authorization_code` (`code`, `redirect_uri`, `code_verifier`), `refresh_token` "
            "(`refresh_token`, optional narrower `scope`; answers a new refresh token, the old one is spent and "
            "presenting it again revokes the whole token family) or `client_credentials` (confidential clients; "
            "the token has no user)."
        ),
    )
    revoke = _client_endpoint(
        "/revoke",
        "revocation",
        operation_id="revokeToken",
        operation_class=RevokeOperation,
        summary="Token revocation (RFC 7009)",
        description=(
            "`token`, optional `token_type_hint`. A refresh token revokes its whole family; an access token "
            "itself and the refresh token issued with it. Unknown tokens answer 200 too. Effective on the "
            "next request in this process, within 5 seconds on other replicas."
        ),
    )
    introspect = _client_endpoint(
        "/introspect",
        "introspection",
        operation_id="introspectToken",
        operation_class=IntrospectOperation,
        summary="Token introspection (RFC 7662)",
        description=(
            "`token`, optional `token_type_hint`. Confidential clients may introspect their own tokens; resource "
            'server clients (`may_introspect`) any token. Answers `{"active": false}` for anything not live.'
        ),
    )

    @get(
        "/userinfo",
        operation_id="getUserInfo",
        summary="OpenID Connect userinfo",
        description="Claims about the signed-in user: `sub` always, `profile` and `email` by scope; needs `openid`.",
        guards=[require_customer, require_scopes("openid")],
        security=bearer_security("openid"),
    )
    async def userinfo(
        self, authorization_server: NamedDependency[ShopAuthorizationServer], principal: NamedDependency[Principal]
    ) -> Response[dict[str, Any]]:
        return await _userinfo(authorization_server.store, principal)

    @post(
        "/userinfo",
        operation_id="postUserInfo",
        summary="OpenID Connect userinfo (POST)",
        guards=[require_customer, require_scopes("openid")],
        security=bearer_security("openid"),
        status_code=200,
    )
    async def userinfo_post(
        self, authorization_server: NamedDependency[ShopAuthorizationServer], principal: NamedDependency[Principal]
    ) -> Response[dict[str, Any]]:
        return await _userinfo(authorization_server.store, principal)

    @get("/jwks", operation_id="getJwks", summary="JSON Web Key Set for id_token signatures", opt=NO_BEARER)
    async def jwks(self, oauth: NamedDependency[OAuthRuntime]) -> Response[dict[str, Any]]:
        return Response(oauth.config.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


async def _userinfo(store: OAuthStore, principal: Principal) -> Response[dict[str, Any]]:
    user = await store.get_user(principal.require_user_id())
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


async def provide_client_service(unit: NamedDependency[Unit]) -> OAuthClientService:
    return OAuthClientService(unit)


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
