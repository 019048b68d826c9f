"""What staff and the SMS provider do to the notification log: read it, retry a failed send, record a delivery
report. Writes go through the request's `Unit`; the controllers only translate HTTP."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException, ServiceUnavailableException
from redis.exceptions import RedisError
from sqlalchemy import func, select

from shop_kernel import ConflictError
from shop_notify.delivery import delivery_job
from shop_notify.models import NotificationLog

if TYPE_CHECKING:
    from shop_kernel import Unit
    from shop_notify.settings import NotifySettings

__all__ = ("NotificationLogService",)

logger = logging.getLogger("shop.notify")
RETRY_AFTER_SECONDS = 10
"""When a retry could not be queued: about how long a Redis restart or failover takes."""
DELIVERED = {"Success"}
UNDELIVERED = {"Failed", "Rejected", "AbsentSubscriber", "Expired", "Undelivered"}


class NotificationLogService:
    def __init__(self, unit: Unit) -> None:
        self.unit = unit

    async def page(
        self, *, order: str | None, status: str | None, offset: int, limit: int
    ) -> tuple[list[NotificationLog], int]:
        """Newest first, filtered by order number and status; with the count of all that match."""
        conditions = []
        if order:
            conditions.append(NotificationLog.order_number == order)
        if status:
            conditions.append(NotificationLog.status == status)
        session = self.unit.session
        count = await session.scalar(select(func.count()).select_from(NotificationLog).where(*conditions)) or 0
        rows = await session.scalars(
            select(NotificationLog).where(*conditions).order_by(NotificationLog.id.desc()).limit(limit).offset(offset)
        )
        return list(rows), count

    async def retry(self, notification_id: int, settings: NotifySettings, queue: Any) -> NotificationLog:
        """Queue a failed notification again. The row is `queued` (committed) before the job exists, or the job
        could run first and find it failed; if the job cannot be queued, the row is failed again, as it was."""
        async with self.unit.transaction() as session:
            row = await session.get(NotificationLog, notification_id)
            if row is None:
                raise NotFoundException(detail=f"No notification with id {notification_id}.")
            if row.status != "failed":
                raise ConflictError(f"Only failed notifications can be retried; this one is {row.status}.")
            previous_error, attempts = row.last_error, row.attempts
            row.status = "queued"
            row.last_error = None
        try:
            await queue.enqueue(delivery_job(settings, notification_id, suffix=f":retry:{attempts}"))
        except (RedisError, OSError) as error:
            # no job: the row goes back to failed, as it was, so a later retry is allowed (not a row stuck queued)
            logger.warning("notification %s: retry not queued, job queue unreachable (%r)", notification_id, error)
            async with self.unit.transaction():
                row.status = "failed"
                row.last_error = previous_error
            raise ServiceUnavailableException(
                detail="The job queue is unreachable; the notification is still failed. Retry in a moment.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from error
        return row

    async def record_report(self, message_id: str, status: str, failure_reason: str) -> bool:
        """Record a delivery report on the notification the provider's message id names; False if none does."""
        async with self.unit.transaction() as session:
            row = await session.scalar(select(NotificationLog).where(NotificationLog.provider_message_id == message_id))
            if row is None:
                return False
            if status in DELIVERED:
                row.status = "delivered"
            elif status in UNDELIVERED:
                row.status = "undelivered"
                row.last_error = f"{status}: {failure_reason}".strip(": ")
        return True
