"""Registering, listing and disabling OAuth2 clients (used by the staff API and the `shop` CLI)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import select, update

from shop_identity.models import AccessToken, OAuthClient
from shop_identity.oauth.redirects import is_loopback
from shop_identity.oauth.server import SCOPES
from shop_identity.oauth.store import ClientView
from shop_identity.services import forget_when_committed, hash_token
from shop_kernel import TEXT_PATTERN, FieldValidationError

if TYPE_CHECKING:
    from shop_kernel import Unit

__all__ = ("ClientCreated", "ClientInfo", "ClientRegistration", "OAuthClientService")

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANT_TYPES = ["authorization_code", "refresh_token"]
DEFAULT_SCOPES = ["openid", "profile", "email", "read", "write"]

# `validate_registration` checks these itself, so that one answer lists every problem; the document states them.
GrantTypes = Annotated[
    list[str],
    msgspec.Meta(
        description=(
            "`refresh_token` needs `authorization_code`; `client_credentials` needs a confidential client; "
            "`authorization_code` needs at least one redirect URI."
        ),
        extra_json_schema={
            "extra": {
                "min_items": 1,
                "items": {"type": "string", "enum": list(GRANT_TYPES)},
                "default": DEFAULT_GRANT_TYPES,
            },
        },
    ),
]
Scopes = Annotated[
    list[str],
    msgspec.Meta(
        extra_json_schema={
            "extra": {
                "min_items": 1,
                "items": {"type": "string", "enum": list(SCOPES)},
                "default": DEFAULT_SCOPES,
            }
        },
    ),
]
REDIRECT_URI_RULE = "An absolute https URL (http only on a loopback address), without fragment, user info or `*`."
RedirectUris = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=2000)]],
    msgspec.Meta(
        max_length=20,
        # Litestar does not carry the bounds of list items into the document; state them (and the text rule).
        extra_json_schema={
            "extra": {
                "items": {
                    "type": "string",
                    "maxLength": 2000,
                    "pattern": TEXT_PATTERN,
                    "description": REDIRECT_URI_RULE,
                }
            }
        },
    ),
]


class ClientRegistration(msgspec.Struct, forbid_unknown_fields=True):
    """A new client. Public clients (browser or native apps) get no secret and must use PKCE."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Shop mobile app"])]
    public: bool = False
    grant_types: GrantTypes = msgspec.field(default_factory=lambda: list(DEFAULT_GRANT_TYPES))
    redirect_uris: RedirectUris = msgspec.field(default_factory=list)
    scopes: Scopes = msgspec.field(default_factory=lambda: list(DEFAULT_SCOPES))
    may_introspect: bool = False


class ClientInfo(msgspec.Struct):
    client_id: str
    name: str
    public: bool
    grant_types: list[str]
    redirect_uris: list[str]
    scopes: list[str]
    may_introspect: bool
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, view: ClientView) -> ClientInfo:
        return cls(
            client_id=view.client_id,
            name=view.name,
            public=view.is_public,
            grant_types=[grant for grant in GRANT_TYPES if grant in view.grant_types],
            redirect_uris=list(view.redirect_uris),
            scopes=list(view.scopes),
            may_introspect=view.may_introspect,
            is_active=view.is_active,
            created_at=view.created_at,
        )


class ClientCreated(ClientInfo):
    client_secret: str | None = None
    """Shown once, at creation; only its SHA-256 is stored."""


def _redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be registered (OWASP API7, RFC 6749 3.1.2, RFC 8252 7.3, RFC 9700 4.1.3).

    An absolute https URL, or http on a loopback address for native apps; no fragment, no user info
    (`https://app.example@evil.example/` reads as one host and goes to another), no wildcards (redirect
    URIs match exactly), nothing invisible. We never fetch it: it is only compared and redirected to.
    """
    if not uri.isprintable() or any(char.isspace() for char in uri) or '"' in uri or "\\" in uri:
        return f"{uri!r} contains spaces, control characters, quotes or backslashes."
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return f"{uri!r} is not a valid URL."
    refusals = (
        (bool(parts.fragment) or "#" in uri, "must not contain a fragment"),
        ("@" in parts.netloc, "must not contain a user name or password"),
        ("*" in uri, "must not contain wildcards: redirect URIs are matched exactly"),
        (
            not host or not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))),
            "must be an https URL (http only on localhost or a loopback address)",
        ),
    )
    return next((f"{uri!r} {why}." for refused, why in refusals if refused), None)


def validate_registration(data: ClientRegistration) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    grants = set(data.grant_types)
    if not grants:
        errors["grant_types"] = ["At least one grant type is required."]
    if unknown := sorted(grants - set(GRANT_TYPES)):
        errors.setdefault("grant_types", []).append(
            f"Unsupported: {', '.join(unknown)}. Choose from {', '.join(GRANT_TYPES)}."
        )
    if "refresh_token" in grants and "authorization_code" not in grants:
        errors.setdefault("grant_types", []).append("refresh_token needs authorization_code.")
    if "client_credentials" in grants and data.public:
        errors.setdefault("grant_types", []).append("client_credentials needs a confidential client.")
    if "authorization_code" in grants and not data.redirect_uris:
        errors["redirect_uris"] = ["authorization_code needs at least one redirect URI."]
    for uri in data.redirect_uris:
        if problem := _redirect_uri_problem(uri):
            errors.setdefault("redirect_uris", []).append(problem)
    if not data.scopes:
        errors["scopes"] = ["At least one scope is required."]
    if unknown := sorted(set(data.scopes) - set(SCOPES)):
        errors.setdefault("scopes", []).append(f"Unknown: {', '.join(unknown)}. Choose from {', '.join(SCOPES)}.")
    return errors


class OAuthClientService:
    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.session = unit.session

    async def create(self, data: ClientRegistration, *, client_id: str | None = None) -> ClientCreated:
        """Register a client; `client_id` is for well-known development clients, others get a random one."""
        if errors := validate_registration(data):
            raise FieldValidationError(errors)
        secret = None if data.public else secrets.token_urlsafe(32)
        client = OAuthClient(
            client_id=client_id or secrets.token_hex(12),
            client_secret_hash=hash_token(secret) if secret else None,
            name=data.name.strip(),
            redirect_uris="\n".join(dict.fromkeys(data.redirect_uris)),
            grant_types=" ".join(grant for grant in GRANT_TYPES if grant in data.grant_types),
            scope=" ".join(scope for scope in SCOPES if scope in data.scopes),
            may_introspect=data.may_introspect,
        )
        async with self.unit.transaction() as session:
            session.add(client)
            await session.flush()
            info = ClientInfo.of(ClientView.of(client))  # read before the commit: a host may expire objects on it
        return ClientCreated(**msgspec.structs.asdict(info), client_secret=secret)

    async def list(self) -> list[ClientInfo]:
        clients = await self.session.scalars(select(OAuthClient).order_by(OAuthClient.id))
        return [ClientInfo.of(ClientView.of(client)) for client in clients]

    async def disable(self, client_id: str) -> ClientInfo:
        """Disable the client and revoke every token issued to it, effective on the next request."""
        async with self.unit.transaction() as session:
            client = await session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
            if client is None:
                raise NotFoundException(detail="No such client.")
            client.is_active = False
            live = AccessToken.client_id == client_id, AccessToken.revoked_at.is_(None)
            hashes = (await session.scalars(select(AccessToken.token_hash).where(*live))).all()
            await session.execute(update(AccessToken).where(*live).values(revoked_at=datetime.now(UTC)))
            forget_when_committed(self.unit, hashes)
            return ClientInfo.of(ClientView.of(client))
