"""The notifications sent about a person, for their data export and erasure (the host hands these to identity)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, literal, select, update

from shop_notify.models import NotificationLog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("ERASED_TEXT", "erase_customer_notifications", "export_customer_notifications")

ERASED_TEXT = "[erased]"


async def export_customer_notifications(session: AsyncSession, customer_id: int) -> list[dict[str, Any]]:
    """Every logged SMS and e-mail about the customer, oldest first (one-time secrets never included)."""
    rows = await session.scalars(
        select(NotificationLog).where(NotificationLog.customer_id == customer_id).order_by(NotificationLog.id)
    )
    return [
        {
            "channel": row.channel,
            "recipient": row.recipient,
            "topic": row.topic,
            "order_number": row.order_number,
            "subject": row.subject,
            "text": row.body,
            "status": row.status,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
        for row in rows
    ]


async def erase_customer_notifications(session: AsyncSession, customer_id: int) -> None:
    """The log keeps that something was sent, when and how it went, but no address and no text; what was still
    waiting to go is not sent."""
    about = NotificationLog.customer_id == customer_id
    now = datetime.now(UTC)
    await session.execute(
        update(NotificationLog)
        .where(about, NotificationLog.status.in_(("queued", "sending")))
        .values(status="skipped", last_error="The person's account was closed before it was sent.", updated_at=now)
    )
    await session.execute(
        update(NotificationLog)
        .where(about)
        .values(
            # unique per (event, channel, recipient): the row's own id keeps erased recipients apart
            recipient=literal("erased:") + cast(NotificationLog.id, String),
            body=ERASED_TEXT,
            html=None,
            secret=None,
            updated_at=now,
        )
    )
