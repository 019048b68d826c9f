"""Identity tables: customers (staff are customers with `is_staff`), OAuth clients, authorization codes and
hashed tokens."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.base import IdentityAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

__all__ = ("AccessToken", "AccountSecret", "AuthorizationCode", "Customer", "OAuthClient")


class Customer(IdentityAuditBase):
    __tablename__ = "identity_customer"

    username: Mapped[str] = mapped_column(String(150))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    phone_number: Mapped[str | None] = mapped_column(String(20), default=None)
    """E.164, e.g. +254712345678, or None."""
    is_staff: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """When the person followed the verification link sent to `email`; None until then and after any change."""

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    __table_args__ = (
        # Case-insensitive uniqueness: "John_Doe" must not impersonate "john_doe".
        Index("uq_identity_customer_username", func.lower(username), unique=True),
        Index("uq_identity_customer_email", func.lower(email), unique=True),
    )


class AccessToken(IdentityAuditBase):
    """A bearer token, and the refresh token issued with it; only SHA-256 digests are stored.

    One table serves every token: the demo and CLI tokens (no client, no refresh token) and the tokens
    the OAuth2 server issues. Tokens from one authorization share a `family_id`: rotating a refresh
    token adds a row to the family, and a refresh token used twice revokes the whole family.
    """

    __tablename__ = "identity_access_token"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("identity_customer.id", ondelete="CASCADE"), index=True, default=None
    )
    client_id: Mapped[str | None] = mapped_column(String(100), default=None)
    scope: Mapped[str] = mapped_column(String(500), default="")
    """Space-separated scopes, as in OAuth2."""
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """Set when the access token (and with it the refresh token of the same row) is revoked."""
    family_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    refresh_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """When the refresh token was exchanged (rotated); a second exchange is reuse."""

    customer: Mapped[Customer | None] = relationship(lazy="raise")


class OAuthClient(IdentityAuditBase):
    """A registered OAuth2 client. Public clients have no secret; a confidential client's secret is stored
    as a SHA-256 digest (it is a 256-bit random value, like a token)."""

    __tablename__ = "identity_oauth_client"

    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[str] = mapped_column(Text, default="")
    """One URI per line, matched exactly."""
    grant_types: Mapped[str] = mapped_column(String(200))
    """Space-separated: authorization_code, refresh_token, client_credentials."""
    scope: Mapped[str] = mapped_column(String(500))
    """Space-separated scopes the client may be granted."""
    may_introspect: Mapped[bool] = mapped_column(default=False)
    """A resource server that may introspect any token, not only its own."""
    is_active: Mapped[bool] = mapped_column(default=True)


class AuthorizationCode(IdentityAuditBase):
    """A one-time authorization code (stored as a SHA-256 digest), bound to client, user, redirect URI and
    PKCE challenge. Kept after use so that a second use can be detected and its tokens revoked."""

    __tablename__ = "identity_authorization_code"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("identity_oauth_client.client_id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("identity_customer.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str | None] = mapped_column(String(2000), default=None)
    scope: Mapped[str] = mapped_column(String(500), default="")
    nonce: Mapped[str | None] = mapped_column(String(255), default=None)
    code_challenge: Mapped[str | None] = mapped_column(String(128), default=None)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), default=None)
    auth_time: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    family_id: Mapped[str | None] = mapped_column(String(32), default=None)
    """The token family issued for this code, revoked if the code is used again."""


class AccountSecret(IdentityAuditBase):
    """A one-time secret sent to a person: a password-reset link token (e-mail) or a 6-digit code (SMS).

    Only a keyed digest is stored (HMAC-SHA256 with the server's secret: a 6-digit code has too few values
    for a plain hash to hide it). A secret works once, until `expires_at`, and a code takes at most a few
    wrong tries; asking for a new one retires the account's earlier ones.
    """

    __tablename__ = "identity_account_secret"

    customer_id: Mapped[int] = mapped_column(ForeignKey("identity_customer.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(30))
    """`password_reset` or `email_verification`."""
    channel: Mapped[str] = mapped_column(String(10))
    """`email` (a link token) or `sms` (a code)."""
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """When it was used, retired by a newer one, or used up by wrong tries."""
    failed_tries: Mapped[int] = mapped_column(default=0)
