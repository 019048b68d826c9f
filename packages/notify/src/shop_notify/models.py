"""The notification log: one row per (event, channel, recipient), so a retried job never sends twice."""

from __future__ import annotations

from advanced_alchemy.base import IdentityAuditBase
from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("NotificationLog",)


class NotificationLog(IdentityAuditBase):
    __tablename__ = "notify_notification"

    event_key: Mapped[str] = mapped_column(String(200))
    """The outbox event it answers, e.g. `order.placed:42`."""
    topic: Mapped[str] = mapped_column(String(100))
    order_number: Mapped[str | None] = mapped_column(String(20), default=None, index=True)
    customer_id: Mapped[int | None] = mapped_column(default=None, index=True)
    """The customer the message concerns (identity's id; no foreign key across contexts), when known."""
    channel: Mapped[str] = mapped_column(String(20))
    """`sms` or `email`."""
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    """queued, sending, sent, failed, skipped; after a delivery report also delivered or undelivered."""
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    subject: Mapped[str | None] = mapped_column(String(300), default=None)
    body: Mapped[str] = mapped_column(Text, default="")
    """The text sent (SMS text, or the plain-text part of the e-mail)."""
    html: Mapped[str | None] = mapped_column(Text, default=None)
    secret: Mapped[str | None] = mapped_column(String(100), default=None)
    """The one-time secret (reset code or link token) a message carries, kept only until it is sent or has failed:
    `body` and `html` hold `SECRET_PLACEHOLDER` in its place, and nothing shows this column."""

    __table_args__ = (
        UniqueConstraint("event_key", "channel", "recipient", name="uq_notify_notification_once"),
        Index("ix_notify_notification_status", "status"),
    )
