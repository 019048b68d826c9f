"""The OAuth2 server's storage, async: clients, authorization codes, token families.

authlib calls these through the thread bridge (`shop_identity.oauth.server`). None of them commits: all the
storage calls of one request run inside one `unit.transaction()` around authlib's work
(`shop_identity.oauth.web.run_authlib_in_transaction`), committed once authlib has answered and before the
answer leaves, so what authlib has been told is stored is stored, and rolled back if authlib raised instead of
answering. Revoked tokens are forgotten by this process's token caches after that commit (`Unit.after_commit`).
The values handed to authlib are plain frozen views, never ORM objects: they cross into a worker thread.

Over 350 lines on purpose: every table authlib reads or writes is here, next to the views it is handed, so the
rules of single use and revocation (`claim_code`, `save_token`, `find_refresh_token`) read in one place.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import delete, select, update

from shop_identity.models import AccessToken, AuthorizationCode, Customer, OAuthClient
from shop_identity.services import forget_when_committed, hash_token

if TYPE_CHECKING:
    from shop_kernel import Unit

__all__ = ("ClientView", "CodeView", "OAuthStore", "TokenView", "UserView")

PURGE_CODES_AFTER = timedelta(days=1)


def _now() -> datetime:
    return datetime.now(UTC)


def _scopes(value: str) -> tuple[str, ...]:
    return tuple(value.split())


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    is_staff: bool
    updated_at: datetime
    email_verified: bool = False
    auth_time: datetime | None = None
    """When the user signed in, for the id_token's `auth_time` (set on the authorization path only)."""

    @classmethod
    def of(cls, customer: Customer) -> UserView:
        return cls(
            id=customer.id,
            username=customer.username,
            email=customer.email,
            first_name=customer.first_name,
            last_name=customer.last_name,
            is_staff=customer.is_staff,
            updated_at=customer.updated_at,
            email_verified=customer.email_verified_at is not None,
        )


@dataclass(frozen=True)
class ClientView:
    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    scopes: tuple[str, ...]
    may_introspect: bool
    is_active: bool
    created_at: datetime

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None

    @classmethod
    def of(cls, client: OAuthClient) -> ClientView:
        return cls(
            client_id=client.client_id,
            name=client.name,
            secret_hash=client.client_secret_hash,
            redirect_uris=tuple(uri for uri in client.redirect_uris.splitlines() if uri),
            grant_types=frozenset(client.grant_types.split()),
            scopes=_scopes(client.scope),
            may_introspect=client.may_introspect,
            is_active=client.is_active,
            created_at=client.created_at,
        )


@dataclass(frozen=True)
class CodeView:
    id: int
    client_id: str
    customer_id: int
    redirect_uri: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime


@dataclass(frozen=True)
class TokenView:
    """One row of the token table, as found by its access token or by its refresh token (`kind`)."""

    id: int
    kind: Literal["access_token", "refresh_token"]
    client_id: str | None
    customer_id: int | None
    username: str | None
    scope: str
    family_id: str | None
    issued_at: datetime
    expires_at: datetime
    revoked: bool

    def is_active(self, now: datetime | None = None) -> bool:
        return not self.revoked and self.expires_at > (now or _now())


class OAuthStore:
    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.session = unit.session

    # clients

    async def get_client(self, client_id: str) -> ClientView | None:
        """An active client; disabled and unknown clients are the same to the server."""
        client = await self.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        if client is None or not client.is_active:
            return None
        return ClientView.of(client)

    # users

    async def get_user(self, customer_id: int) -> UserView | None:
        customer = await self.session.get(Customer, customer_id)
        if customer is None or not customer.is_active:
            return None
        return UserView.of(customer)

    # authorization codes

    async def save_code(
        self,
        code: str,
        *,
        client_id: str,
        customer_id: int,
        redirect_uri: str | None,
        scope: str,
        nonce: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        auth_time: datetime,
        ttl: timedelta,
    ) -> None:
        now = _now()
        await self.session.execute(
            delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - PURGE_CODES_AFTER)
        )
        self.session.add(
            AuthorizationCode(
                code_hash=hash_token(code),
                client_id=client_id,
                customer_id=customer_id,
                redirect_uri=redirect_uri,
                scope=scope,
                nonce=nonce,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                auth_time=auth_time,
                expires_at=now + ttl,
            )
        )

    async def claim_code(self, code: str, client_id: str) -> CodeView | None:
        """Mark the code used and return it, once. A second use revokes what the first one obtained."""
        now = _now()
        row = await self.session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == hash_token(code))
        )
        if row is None or row.client_id != client_id:
            return None
        if row.used_at is not None:
            if row.family_id:
                await self.revoke_family(row.family_id)
            return None
        if row.expires_at <= now:
            return None
        claimed = await self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None  # another request won the race for this code
        return CodeView(
            id=row.id,
            client_id=row.client_id,
            customer_id=row.customer_id,
            redirect_uri=row.redirect_uri,
            scope=row.scope,
            nonce=row.nonce,
            code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method,
            auth_time=row.auth_time,
        )

    async def nonce_was_used(self, client_id: str, nonce: str) -> bool:
        found = await self.session.scalar(
            select(AuthorizationCode.id)
            .where(AuthorizationCode.client_id == client_id, AuthorizationCode.nonce == nonce)
            .limit(1)
        )
        return found is not None

    # tokens

    async def save_token(
        self,
        *,
        access_token: str,
        refresh_token: str | None,
        client_id: str,
        customer_id: int | None,
        scope: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        family_id: str | None = None,
        code_id: int | None = None,
        rotated_token_id: int | None = None,
    ) -> bool:
        """Store a new token row. For a rotation, the old refresh token is claimed in the same transaction;
        if another request claimed it first, nothing is stored, the family is revoked and False returned."""
        now = _now()
        if rotated_token_id is not None:
            claimed = await self.session.execute(
                update(AccessToken)
                .where(
                    AccessToken.id == rotated_token_id,
                    AccessToken.refresh_used_at.is_(None),
                    AccessToken.revoked_at.is_(None),
                )
                .values(refresh_used_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                if family_id:
                    await self.revoke_family(family_id)
                return False
        if family_id is None and refresh_token is not None:
            family_id = secrets.token_hex(16)
        self.session.add(
            AccessToken(
                token_hash=hash_token(access_token),
                customer_id=customer_id,
                client_id=client_id,
                scope=scope,
                created_at=now,  # the same clock reading as the expiries: introspection's exp - iat is the TTL
                expires_at=now + access_ttl,
                family_id=family_id,
                refresh_token_hash=hash_token(refresh_token) if refresh_token else None,
                refresh_expires_at=now + refresh_ttl if refresh_token else None,
            )
        )
        if code_id is not None and family_id is not None:
            await self.session.execute(
                update(AuthorizationCode).where(AuthorizationCode.id == code_id).values(family_id=family_id)
            )
        return True

    async def find_token(self, raw: str, hint: str | None = None) -> TokenView | None:
        """The token row of an access token or a refresh token (the hint only decides which is tried first)."""
        kinds: tuple[Literal["access_token", "refresh_token"], ...] = (
            ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
        )
        digest = hash_token(raw)
        for kind in kinds:
            column = AccessToken.token_hash if kind == "access_token" else AccessToken.refresh_token_hash
            row = (
                await self.session.execute(
                    select(AccessToken, Customer.username)
                    .outerjoin(Customer, Customer.id == AccessToken.customer_id)
                    .where(column == digest)
                )
            ).first()
            if row is not None:
                token, username = row
                return self._view(token, kind, username)
        return None

    def _view(
        self, token: AccessToken, kind: Literal["access_token", "refresh_token"], username: str | None
    ) -> TokenView:
        if kind == "access_token":
            expires_at = token.expires_at
            revoked = token.revoked_at is not None
        else:
            expires_at = token.refresh_expires_at or token.expires_at
            revoked = token.revoked_at is not None or token.refresh_used_at is not None
        return TokenView(
            id=token.id,
            kind=kind,
            client_id=token.client_id,
            customer_id=token.customer_id,
            username=username,
            scope=token.scope,
            family_id=token.family_id,
            issued_at=token.created_at,
            expires_at=expires_at,
            revoked=revoked,
        )

    async def find_refresh_token(self, raw: str) -> TokenView | None:
        """A refresh token that may be exchanged. Presenting one that was already exchanged revokes its family
        (RFC 9700 section 4.14.2): either the client or an attacker holds a stolen copy."""
        token = await self.session.scalar(select(AccessToken).where(AccessToken.refresh_token_hash == hash_token(raw)))
        if token is None:
            return None
        if token.refresh_used_at is not None:
            if token.family_id:
                await self.revoke_family(token.family_id)
            return None
        view = self._view(token, "refresh_token", None)
        return view if view.is_active() else None

    async def revoke_token(self, token_id: int) -> None:
        token = await self.session.get(AccessToken, token_id)
        if token is None:
            return
        if token.revoked_at is None:
            token.revoked_at = _now()
        forget_when_committed(self.unit, [token.token_hash])

    async def revoke_family(self, family_id: str) -> None:
        hashes = (
            await self.session.scalars(
                select(AccessToken.token_hash).where(
                    AccessToken.family_id == family_id, AccessToken.revoked_at.is_(None)
                )
            )
        ).all()
        await self.session.execute(
            update(AccessToken)
            .where(AccessToken.family_id == family_id, AccessToken.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        forget_when_committed(self.unit, hashes)
