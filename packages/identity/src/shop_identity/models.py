"""Identity tables: customers (staff are customers with `is_staff`) and hashed access tokens."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.base import IdentityAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

__all__ = ("AccessToken", "Customer")


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

    __table_args__ = (
        # Case-insensitive uniqueness: "John_Doe" must not impersonate "john_doe".
        Index("uq_identity_customer_username", func.lower(username), unique=True),
        Index("uq_identity_customer_email", func.lower(email), unique=True),
    )


class AccessToken(IdentityAuditBase):
    """A bearer token; only its SHA-256 is stored, so a database leak does not leak live tokens."""

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

    customer: Mapped[Customer | None] = relationship(lazy="raise")
