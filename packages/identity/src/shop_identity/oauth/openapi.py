"""The OAuth endpoints' requests and answers in the OpenAPI document.

The handlers read their forms and query strings themselves (an error must be an RFC 6749 answer, not a problem
document), so Litestar cannot infer either from their signatures: each endpoint names an `Operation` class here
that states its parameters, its `application/x-www-form-urlencoded` body, and its 200 answer, so that a generated
client can ask for a token. The constraints are the ones the endpoints enforce: OAuth parameters are visible ASCII
(RFC 6749 appendix A) up to `MAX_PARAMETER_LENGTH` characters, those copied into error descriptions without `"`
or `\\`, and a PKCE verifier or challenge 43 to 128 unreserved characters (RFC 7636 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.enums import ParamType
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)

from shop_identity.oauth.clients import GRANT_TYPES
from shop_identity.oauth.server import SCOPES
from shop_identity.oauth.web import MAX_PARAMETER_LENGTH
from shop_kernel import TEXT_PATTERN

if TYPE_CHECKING:
    from collections.abc import Mapping

    from litestar import Litestar

__all__ = (
    "AuthorizeOperation",
    "IntrospectOperation",
    "RevokeOperation",
    "SignInFormOperation",
    "TokenOperation",
    "register_oauth_schemas",
)

FORM = "application/x-www-form-urlencoded"
VISIBLE_ASCII = r"^[ -~]*$"
"""RFC 6749 appendix A: OAuth parameters are visible ASCII and space; anything else is `invalid_request`."""
STRICT_ASCII = r"^[ !#-\[\]-~]*$"
"""Visible ASCII without `"` and `\\`: parameters that authlib copies into error descriptions (RFC 6749 5.2)."""
PKCE = r"^[A-Za-z0-9._~-]{43,128}$"
"""RFC 7636 4.1: a code verifier (and an S256 challenge, 43 characters) in unreserved characters."""


def _text(description: str, *, strict: bool = False) -> Schema:
    pattern = STRICT_ASCII if strict else VISIBLE_ASCII
    return Schema(type=OpenAPIType.STRING, max_length=MAX_PARAMETER_LENGTH, pattern=pattern, description=description)


def _enum(description: str, *values: str) -> Schema:
    return Schema(type=OpenAPIType.STRING, enum=list(values), description=description)


SCOPE = _text(f"Space-separated scopes, of: {', '.join(f'`{name}`' for name in SCOPES)}.", strict=True)
CLIENT_ID = _text("The client's id. Confidential clients may send it with `client_secret` instead of HTTP Basic.")
CLIENT_SECRET = _text("`client_secret_post`: the client's secret (confidential clients only).")
TOKEN_HINT = _enum("Where to look first; the token is found either way.", "access_token", "refresh_token")
TOKEN_FORM = {
    "token": _text("An access or refresh token."),
    "token_type_hint": TOKEN_HINT,
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
}


COMPONENTS: dict[str, Schema] = {}
"""The schemas the operations below refer to, by title; `register_oauth_schemas` adds them to the document."""


def _component(schema: Schema) -> Reference:
    if schema.title is None:  # pragma: no cover - every schema here is named
        raise ValueError("A component needs a title.")
    COMPONENTS[schema.title] = schema
    return Reference(ref=f"#/components/schemas/{schema.title}")


def _form(title: str, description: str, properties: Mapping[str, Schema], required: list[str]) -> RequestBody:
    schema = Schema(
        type=OpenAPIType.OBJECT, title=title, description=description, properties=dict(properties), required=required
    )
    return RequestBody(required=True, content={FORM: OpenAPIMediaType(schema=_component(schema))})


def _answer(description: str, schema: Schema) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description, content={"application/json": OpenAPIMediaType(schema=_component(schema))}
    )


def register_oauth_schemas(app: Litestar) -> None:
    """On startup: the named schemas of the OAuth operations into the document's components (Litestar builds the
    components from its own registry, which only knows the schemas it generated)."""
    if app.openapi_config is None:
        return
    components = app.openapi_schema.components
    components.schemas = {**(components.schemas or {}), **COMPONENTS}


TOKEN_RESPONSE = Schema(
    type=OpenAPIType.OBJECT,
    title="TokenResponse",
    description="RFC 6749 section 5.1; `id_token` (OpenID Connect) when the code was issued for the `openid` scope.",
    required=["access_token", "token_type", "expires_in"],
    properties={
        "access_token": Schema(type=OpenAPIType.STRING),
        "token_type": Schema(type=OpenAPIType.STRING, enum=["Bearer"]),
        "expires_in": Schema(type=OpenAPIType.INTEGER, description="Seconds until the access token expires."),
        "scope": Schema(type=OpenAPIType.STRING, description="The granted scopes, space-separated."),
        "refresh_token": Schema(
            type=OpenAPIType.STRING, description="For the authorization code and refresh token grants; single use."
        ),
        "id_token": Schema(type=OpenAPIType.STRING, description="A signed JWT (RS256), see `/oauth/jwks`."),
    },
)
INTROSPECTION_RESPONSE = Schema(
    type=OpenAPIType.OBJECT,
    title="IntrospectionResponse",
    description='RFC 7662 section 2.2: `{"active": false}` for a token that is unknown, expired, revoked or not yours.',
    required=["active"],
    properties={
        "active": Schema(type=OpenAPIType.BOOLEAN),
        "scope": Schema(type=OpenAPIType.STRING),
        "client_id": Schema(type=OpenAPIType.STRING),
        "username": Schema(type=OpenAPIType.STRING),
        "token_type": Schema(type=OpenAPIType.STRING, enum=["Bearer", "refresh_token"]),
        "exp": Schema(type=OpenAPIType.INTEGER, description="Expiry, seconds since the epoch."),
        "iat": Schema(type=OpenAPIType.INTEGER, description="Issued at, seconds since the epoch."),
        "sub": Schema(type=OpenAPIType.STRING, description="The customer's id; absent for client credentials."),
        "iss": Schema(type=OpenAPIType.STRING),
    },
)
REVOCATION_RESPONSE = Schema(
    type=OpenAPIType.OBJECT,
    title="RevocationResponse",
    description="RFC 7009 section 2.2: an empty object, for unknown tokens too.",
    properties={},
    max_properties=0,
)

AUTHORIZATION_REQUEST = [
    Parameter(name="response_type", param_in=ParamType.QUERY, required=True, schema=_enum("Only `code`.", "code")),
    Parameter(name="client_id", param_in=ParamType.QUERY, required=True, schema=_text("The client's id.", strict=True)),
    Parameter(
        name="redirect_uri",
        param_in=ParamType.QUERY,
        schema=_text("Exactly as registered; optional when the client registered one.", strict=True),
    ),
    Parameter(name="scope", param_in=ParamType.QUERY, schema=SCOPE),
    Parameter(name="state", param_in=ParamType.QUERY, schema=_text("Returned unchanged with the code or the error.")),
    Parameter(
        name="code_challenge",
        param_in=ParamType.QUERY,
        schema=Schema(
            type=OpenAPIType.STRING,
            pattern=PKCE,
            description="PKCE (RFC 7636): BASE64URL(SHA-256(code_verifier)). Required for public clients.",
        ),
    ),
    Parameter(name="code_challenge_method", param_in=ParamType.QUERY, schema=_enum("Only `S256`.", "S256")),
    Parameter(name="nonce", param_in=ParamType.QUERY, schema=_text("OpenID Connect: copied into the id_token.")),
    Parameter(
        name="prompt",
        param_in=ParamType.QUERY,
        schema=_enum(
            "`none`: answer without any page (an error if one is needed); `login`: sign in again.", "none", "login"
        ),
    ),
]


def _pages(operation: Operation) -> None:
    """The authorization request's parameters, and the answers of the pages: HTML, or a redirect to the client."""
    operation.parameters = [*AUTHORIZATION_REQUEST]
    responses = operation.responses if operation.responses is not None else {}
    responses["200"] = OpenAPIResponse(
        description="The sign-in or consent page.",
        content={"text/html": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
    )
    responses["302"] = OpenAPIResponse(
        description=(
            "Back to the client's `redirect_uri` with `code`, `state` and `iss` (RFC 9207), or with `error` and "
            "`state` when the client and redirect URI are valid but the request is not."
        ),
        headers={"Location": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), required=True)},
    )
    operation.responses = responses


@dataclass
class AuthorizeOperation(Operation):
    """`GET /oauth/authorize`: the authorization request (RFC 6749 4.1.1, RFC 7636, OpenID Connect)."""

    def __post_init__(self) -> None:
        _pages(self)


@dataclass
class SignInFormOperation(Operation):
    """`POST /oauth/authorize`: the sign-in and consent pages' forms, the authorization request still in the query."""

    def __post_init__(self) -> None:
        _pages(self)
        self.request_body = _form(
            "AuthorizationForm",
            "What the sign-in and consent pages post; `csrf_token` comes from the page.",
            {
                "step": _enum("Which form was sent.", "sign_in", "consent", "switch_account"),
                "csrf_token": Schema(type=OpenAPIType.STRING, pattern=TEXT_PATTERN),
                "username": Schema(
                    type=OpenAPIType.STRING, pattern=TEXT_PATTERN, description="`sign_in`: the username or e-mail."
                ),
                "password": Schema(type=OpenAPIType.STRING, pattern=TEXT_PATTERN, description="`sign_in`."),
                "decision": _enum("`consent`.", "allow", "deny"),
            },
            ["step", "csrf_token"],
        )


@dataclass
class TokenOperation(Operation):
    """`POST /oauth/token` (RFC 6749 sections 4.1.3, 4.4.2 and 6)."""

    def __post_init__(self) -> None:
        self.request_body = _form(
            "TokenRequest",
            "The fields of the chosen `grant_type`; a parameter may appear once.",
            {
                "grant_type": _enum("The grant.", *GRANT_TYPES),
                "code": _text("`authorization_code`: the code from the redirect."),
                "redirect_uri": _text("`authorization_code`: the same as in the authorization request.", strict=True),
                "code_verifier": Schema(
                    type=OpenAPIType.STRING, pattern=PKCE, description="`authorization_code`: the PKCE verifier."
                ),
                "refresh_token": _text("`refresh_token`: the refresh token to spend."),
                "scope": SCOPE,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            ["grant_type"],
        )
        if self.responses is not None:
            self.responses["200"] = _answer("The tokens.", TOKEN_RESPONSE)


@dataclass
class RevokeOperation(Operation):
    """`POST /oauth/revoke` (RFC 7009)."""

    def __post_init__(self) -> None:
        self.request_body = _form(
            "RevocationRequest",
            "The token to revoke, and the client's credentials unless sent with HTTP Basic.",
            TOKEN_FORM,
            ["token"],
        )
        if self.responses is not None:
            self.responses["200"] = _answer("Revoked, or there was nothing to revoke.", REVOCATION_RESPONSE)


@dataclass
class IntrospectOperation(Operation):
    """`POST /oauth/introspect` (RFC 7662)."""

    def __post_init__(self) -> None:
        self.request_body = _form(
            "IntrospectionRequest",
            "The token to describe, and the client's credentials unless sent with HTTP Basic.",
            TOKEN_FORM,
            ["token"],
        )
        if self.responses is not None:
            self.responses["200"] = _answer("What the token is, if it is active.", INTROSPECTION_RESPONSE)
