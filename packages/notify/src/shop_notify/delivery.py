"""From outbox to recipient: the relay turns order events into logged notifications and SAQ jobs; the job sends.

Nothing is lost: the outbox row stays undispatched until its jobs are enqueued, and the relay keeps
retrying while Redis is unreachable. Nothing is sent twice: every (event, channel, recipient) has one
log row, created once, and a job only sends while its row is still `queued`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from saq import Job
from sqlalchemy import select

from shop_kernel import OutboxMessage
from shop_notify.channels import DeliveryError, EmailChannel, SmsChannel
from shop_notify.models import NotificationLog
from shop_notify.rendering import Renderer
from shop_notify.settings import NotifySettings
from shop_ordering.events import ORDER_CANCELLED, ORDER_PLACED

if TYPE_CHECKING:
    from saq import Queue
    from saq.types import Context
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("TOPICS", "NotifyRuntime", "deliver_notification", "delivery_job")

logger = logging.getLogger("shop.notify")
TOPICS = (ORDER_PLACED, ORDER_CANCELLED)


def delivery_job(settings: NotifySettings, notification_id: int, *, suffix: str = "") -> Job:
    """The SAQ job that sends one logged notification; its key makes enqueueing it twice harmless."""
    return Job(
        function="deliver_notification",
        kwargs={"notification_id": notification_id},
        key=f"notify:{notification_id}{suffix}",
        timeout=settings.job_timeout_seconds,
        retries=settings.job_retries,
        retry_delay=settings.job_retry_delay_seconds,
        retry_backoff=True,
    )


@dataclass
class NotifyRuntime:
    settings: NotifySettings
    session_maker: Callable[[], AsyncSession]
    sms: SmsChannel
    email: EmailChannel
    renderer: Renderer

    # ---- relay -------------------------------------------------------------------------------

    async def relay_once(self, queue: Queue, batch: int = 200) -> int:
        """Dispatch a batch of pending order events; returns how many outbox messages were dispatched.

        Two commits per batch: the log rows first (so a job never looks for a row that is not there),
        then, once every job is enqueued, the outbox rows as dispatched. A failure in between leaves the
        batch pending, and the next pass finds the log rows and re-enqueues under the same job keys.
        """
        async with self.session_maker() as session:
            pending = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.dispatched_at.is_(None), OutboxMessage.topic.in_(TOPICS))
                    .order_by(OutboxMessage.id)
                    .limit(batch)
                )
            )
            if not pending:
                return 0
            notifications = await self._log_notifications(session, pending)
            await session.commit()
            jobs = [delivery_job(self.settings, n.id) for n in notifications if n.status == "queued"]
            for job in jobs:
                await queue.enqueue(job)
            now = datetime.now(UTC)
            for message in pending:
                message.dispatched_at = now
                message.attempts += 1
            await session.commit()
            return len(pending)

    async def _log_notifications(self, session: AsyncSession, messages: list[OutboxMessage]) -> list[NotificationLog]:
        """The log rows for these events, created once (a relay that crashed half-way finds them again)."""
        existing = {
            (row.event_key, row.channel, row.recipient): row
            for row in await session.scalars(
                select(NotificationLog).where(NotificationLog.event_key.in_([m.key for m in messages]))
            )
        }
        rows = []
        for message in messages:
            for channel, recipient, status, subject, body, html in self._plan(message):
                row = existing.get((message.key, channel, recipient))
                if row is None:
                    row = NotificationLog(
                        event_key=message.key,
                        topic=message.topic,
                        order_number=message.payload.get("order_number"),
                        channel=channel,
                        recipient=recipient,
                        status=status,
                        subject=subject,
                        body=body,
                        html=html,
                    )
                    session.add(row)
                rows.append(row)
        await session.flush()
        return rows

    def _plan(self, message: OutboxMessage) -> list[tuple[str, str, str, str | None, str, str | None]]:
        context = self._context(message)
        customer = context["customer"]
        plan: list[tuple[str, str, str, str | None, str, str | None]] = []
        sms_text = self.renderer.sms(message.topic, context)
        if customer.get("phone_number"):
            plan.append(("sms", customer["phone_number"], "queued", None, sms_text, None))
        else:
            logger.info("no phone number for %s: SMS for %s skipped", customer["username"], message.key)
            plan.append(("sms", f"customer:{customer['id']}", "skipped", None, sms_text, None))
        email = self.renderer.email(message.topic, context)
        plan.append(("email", self.settings.admin_email, "queued", email.subject, email.text, email.html))
        return plan

    def _context(self, message: OutboxMessage) -> dict[str, Any]:
        payload = dict(message.payload)
        payload.update(
            currency=self.settings.currency,
            shop_name=self.settings.shop_name,
            refund=False,
            cancelled_by_staff=payload.get("cancelled_by_staff", False),
            notes=payload.get("notes", ""),
        )
        return payload

    async def run_relay(self, queue: Queue, stop: asyncio.Event) -> None:
        """Poll the outbox until `stop`; back off (up to 10 s) while Redis or the database is unreachable."""
        delay = self.settings.relay_interval_seconds
        while not stop.is_set():
            try:
                dispatched = await self.relay_once(queue)
                delay = self.settings.relay_interval_seconds
            except Exception:
                logger.warning("outbox relay failed; retrying in %.1f s", delay, exc_info=True)
                dispatched = 0
                delay = min(delay * 2, 10.0)
            if not dispatched:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    # ---- the job -----------------------------------------------------------------------------

    async def deliver(self, notification_id: int, *, final_attempt: bool) -> str:
        """Send one logged notification at most once.

        The row is marked `sending` (committed) before the provider is called. A job that finds a row
        still `sending` was interrupted mid-send (worker killed, job timed out): the provider may have
        the message, so it is not sent again automatically; it is marked failed for a person to check
        and retry. Provider refusals (`DeliveryError`) are known failures and are retried.
        """
        async with self.session_maker() as session:
            notification = await session.get(NotificationLog, notification_id)
            if notification is None:
                return "missing"
            if notification.status == "sending":
                notification.status = "failed"
                notification.last_error = "Interrupted while sending: it may have been delivered; check, then retry."
                await session.commit()
                return "failed"
            if notification.status != "queued":
                return notification.status
            notification.status = "sending"
            notification.attempts += 1
            await session.commit()
            try:
                if notification.channel == "sms":
                    provider_id = await self.sms.send(notification.recipient, notification.body)
                else:
                    provider_id = await self.email.send(
                        notification.recipient, notification.subject or "", notification.body, notification.html or ""
                    )
            except DeliveryError as exc:
                notification.last_error = str(exc)[:2000]
                notification.status = "failed" if final_attempt else "queued"
                await session.commit()
                if final_attempt:
                    logger.warning("notification %s failed for good: %s", notification_id, exc)
                    return "failed"
                raise
            notification.status = "sent"
            notification.provider_message_id = provider_id
            notification.last_error = None
            await session.commit()
            return "sent"


async def deliver_notification(ctx: Context, *, notification_id: int) -> str:
    """SAQ task (queue `notify`): send one logged notification; raising makes SAQ retry with backoff."""
    runtime = cast("NotifyRuntime", cast("dict[str, Any]", ctx)["notify"])
    job = ctx["job"]
    return await runtime.deliver(notification_id, final_attempt=job.attempts >= job.retries)
