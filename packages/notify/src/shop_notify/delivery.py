"""From outbox to recipient: notify's outbox subscriber turns order events and requested messages into logged
notifications and SAQ jobs; the job sends.

Nothing is lost: the kernel's relay (`shop_kernel.OutboxRelay`) records an event handed over to notify only once
its jobs are enqueued, and hands it over again, with backoff, while Redis is unreachable. The database is the
truth and the queue only a way to get work done sooner: the reconciler gives every `queued` row whose job is
gone (Redis lost its data, a worker died) its job again, and settles `sending` rows a dead worker left behind.
Nothing is sent twice: every (event, channel, recipient) has one log row, created once, and a job only sends
while its row is still `queued`.

Over 350 lines on purpose: the subscriber, the job and the reconciler move one log row through its states
(queued, sending, sent or failed); each step's guarantee rests on the others', so they read in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import msgspec
from jinja2 import TemplateError
from saq import Job
from saq.job import ACTIVE_STATUSES
from sqlalchemy import Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_kernel import (
    MESSAGE_REQUESTED,
    MessageRequested,
    OutboxEvent,
    OutboxMessage,
    Subscriber,
    UnitBatcher,
    bind_request_id,
    run_unit_of_work,
)
from shop_notify.channels import DeliveryError, EmailChannel, SmsChannel
from shop_notify.metrics import JOBS, RECONCILED, RECONCILER_PASSES
from shop_notify.models import NotificationLog
from shop_notify.rendering import Renderer
from shop_notify.settings import NotifySettings
from shop_ordering.events import ORDER_CANCELLED, ORDER_PLACED, OrderCancelled, OrderPlaced

if TYPE_CHECKING:
    from saq import Queue
    from saq.types import Context
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = (
    "SECRET_PLACEHOLDER",
    "SUBSCRIBER",
    "TOPICS",
    "NotifyRuntime",
    "deliver_event",
    "deliver_notification",
    "delivery_job",
    "event_job",
    "job_keys",
)

logger = logging.getLogger("shop.notify")
SUBSCRIBER = "notify"
TOPICS: dict[str, type[Any]] = {
    ORDER_PLACED: OrderPlaced,
    ORDER_CANCELLED: OrderCancelled,
    MESSAGE_REQUESTED: MessageRequested,
}
"""The outbox topics notify consumes, and the Struct each payload is decoded into."""
INTERRUPTED = "Interrupted while sending: it may have been delivered; check, then retry."
SECRET_PLACEHOLDER = "[one-time secret]"  # noqa: S105 - what stands in for one
"""Stands in the log for the secret a message carries; the job puts the secret back only to send it."""
SECRET_GONE = "The one-time secret of this message is no longer kept; the person must ask for a new one."  # noqa: S105
RECONCILE_LOCK = "shop:notify:reconcile-lock"


def delivery_job(
    settings: NotifySettings, notification_id: int, *, suffix: str = "", request_id: str | None = None
) -> Job:
    """The SAQ job that sends one logged notification; its key makes enqueueing it twice harmless.

    `request_id` is the id of the HTTP request that caused it: the job logs under it.
    """
    return Job(
        function="deliver_notification",
        kwargs={"notification_id": notification_id, "request_id": request_id},
        key=f"notify:{notification_id}{suffix}",
        timeout=settings.job_timeout_seconds,
        retries=settings.job_retries,
        retry_delay=settings.job_retry_delay_seconds,
        retry_backoff=True,
    )


def event_job(
    settings: NotifySettings, event_key: str, notification_ids: list[int], *, request_id: str | None = None
) -> Job:
    """The relay's SAQ job: every logged notification of one event (an order's SMS and e-mail), sent side by
    side. One job per event rather than per notification: SAQ's own work per job (enqueueing, its job loop)
    was the largest part of the worker's CPU (decision 155). Each notification is still claimed on its own, so
    a retry of the job sends only what is still `queued`."""
    return Job(
        function="deliver_event",
        kwargs={"notification_ids": notification_ids, "request_id": request_id},
        key=event_job_key(event_key),
        timeout=settings.job_timeout_seconds,
        retries=settings.job_retries,
        retry_delay=settings.job_retry_delay_seconds,
        retry_backoff=True,
    )


def event_job_key(event_key: str) -> str:
    return f"notify:event:{event_key}"


def job_keys(notification_id: int, attempts: int, event_key: str) -> tuple[str, str, str]:
    """The keys a row's job can have: the relay's (one per event), the reconciler's, and a staff retry's."""
    return event_job_key(event_key), f"notify:{notification_id}", f"notify:{notification_id}:retry:{attempts}"


@dataclass
class NotifyRuntime:
    settings: NotifySettings
    session_maker: Callable[[], AsyncSession]
    sms: SmsChannel
    email: EmailChannel
    renderer: Renderer
    _engine: AsyncEngine | None = field(default=None, init=False, repr=False)
    _batcher: UnitBatcher | None = field(default=None, init=False, repr=False)

    # ---- the outbox subscriber ----------------------------------------------------------------

    def subscriber(self, queue: Queue) -> Subscriber:
        """Notify's subscription to the kernel's outbox: order events and requested messages become logged
        notifications and keyed jobs on `queue`."""
        return Subscriber(name=SUBSCRIBER, topics=TOPICS, handle=partial(self.handle_events, queue))

    async def handle_events(self, queue: Queue, events: list[OutboxEvent[Any]]) -> None:
        """Log and enqueue the notifications of a batch of events (the relay records them handed over after).

        Templates are rendered before any write. One short write transaction (run by
        `shop_kernel.run_unit_of_work`, so on SQLite it holds the write lock only for its statements) creates the
        log rows (so a job never looks for a row that is not there) and drops a requested message's secret from
        its outbox payload (the log row keeps it until it is sent); then every job is enqueued. An event handed
        over again (a relay that stopped in between) finds its log rows and is enqueued under the same job keys.
        """
        engine = self.engine()
        planned = [(event.key, event.topic, getattr(event.body, "order_number", None), self._plan(event))
                   for event in events]  # fmt: skip
        scrubbed = {event.id: _without_secret(event.body) for event in events
                    if isinstance(event.body, MessageRequested) and event.body.secret}  # fmt: skip
        queued = await run_unit_of_work(engine, partial(_log_notifications, planned=planned, scrubbed=scrubbed))
        request_ids = {event.key: event.request_id for event in events}
        by_event: dict[str, list[int]] = {}
        for notification_id, event_key in queued:
            by_event.setdefault(event_key, []).append(notification_id)
        for event_key, notification_ids in by_event.items():
            job = event_job(self.settings, event_key, notification_ids, request_id=request_ids.get(event_key))
            await queue.enqueue(job)

    def _writes(self) -> UnitBatcher:
        """Claims and outcomes of the jobs running at once share transactions (see `UnitBatcher`)."""
        if self._batcher is None:
            self._batcher = UnitBatcher(self.engine())
        return self._batcher

    def engine(self) -> AsyncEngine:
        """The engine the session maker binds, learned once (a session holds no connection until used)."""
        if self._engine is None:
            self._engine = _engine_of(self.session_maker())
        return self._engine

    def _plan(self, event: OutboxEvent[Any]) -> tuple[int | None, Plan]:
        """Who the event concerns (a customer id) and the notifications it causes."""
        if isinstance(event.body, MessageRequested):
            return self._plan_message(event.key, event.body)
        order: OrderPlaced | OrderCancelled = event.body
        context = self._context(order)
        customer = order.customer
        plan: Plan = []
        sms_text = self.renderer.sms(event.topic, context)
        if customer.phone_number:
            plan.append(("sms", customer.phone_number, "queued", None, sms_text, None, None))
        else:
            logger.info("no phone number for %s: SMS for %s skipped", customer.username, event.key)
            plan.append(("sms", f"customer:{customer.id}", "skipped", None, sms_text, None, None))
        email = self.renderer.email(event.topic, context)
        plan.append(("email", self.settings.admin_email, "queued", email.subject, email.text, email.html, None))
        return customer.id, plan

    def _plan_message(self, key: str, request: MessageRequested) -> tuple[int | None, Plan]:
        """A message another context asked for: its template, to its one recipient; the secret it carries is
        logged as `SECRET_PLACEHOLDER` and kept apart until it is sent."""
        context = {**request.context, "shop_name": self.settings.shop_name}
        try:
            rendered = self.renderer.message(request.template, request.channel, context)
        except (LookupError, ValueError, TemplateError) as exc:  # a value missing, or no such template
            logger.error("message %s cannot be rendered: %r", key, exc)
            return request.customer_id, [(request.channel, request.recipient, "failed", None, repr(exc), None, None)]
        text, html = rendered.text, rendered.html or None
        if request.secret:
            text = text.replace(request.secret, SECRET_PLACEHOLDER)
            html = html.replace(request.secret, SECRET_PLACEHOLDER) if html else None
        subject = rendered.subject or None
        return request.customer_id, [
            (request.channel, request.recipient, "queued", subject, text, html, request.secret)
        ]

    def _context(self, order: OrderPlaced | OrderCancelled) -> dict[str, Any]:
        """What the templates see: the event as JSON has it (amounts as strings), and the shop's settings."""
        return {
            "notes": "",
            "cancelled_by_staff": False,
            **msgspec.to_builtins(order),
            "currency": self.settings.currency,
            "shop_name": self.settings.shop_name,
            "refund": False,
        }

    # ---- reconciler --------------------------------------------------------------------------

    async def reconcile(self, queue: Queue, batch: int = 500) -> tuple[int, int]:
        """Compare the log with the queue once; returns (rows re-enqueued, `sending` rows settled).

        - A `queued` row untouched for `reconcile_after_seconds` whose job is not waiting or running
          (Redis lost it, or the process that enqueued it died in between) is enqueued again under its
          relay key. SAQ enqueues a key only when no job of that key is incomplete, so a race with the
          relay or another reconciler enqueues nothing twice.
        - A `sending` row older than the job's time limit whose job is not waiting or running was left by
          a dead worker: the rule of `deliver` applies (failed, "Interrupted while sending"), never a resend.
        """
        engine = self.engine()
        now = datetime.now(UTC)
        queued_before = now - timedelta(seconds=self.settings.reconcile_after_seconds)
        # a job is cancelled at its timeout; past twice that (plus a sweep) nothing is still sending it
        sending_before = now - timedelta(
            seconds=2 * self.settings.job_timeout_seconds + self.settings.sweep_interval_seconds
        )
        async with self.session_maker() as session:
            stale = (
                await session.execute(
                    select(LOG.c.id, LOG.c.status, LOG.c.attempts, LOG.c.event_key)
                    .where(
                        or_(
                            and_(LOG.c.status == "queued", LOG.c.updated_at < queued_before),
                            and_(LOG.c.status == "sending", LOG.c.updated_at < sending_before),
                        )
                    )
                    .order_by(LOG.c.id)
                    .limit(batch)
                )
            ).all()
        if not stale:
            return 0, 0
        keys = list(dict.fromkeys(key for row in stale for key in job_keys(row.id, row.attempts, row.event_key)))
        jobs = await queue.jobs(keys)
        live = {job.key for job in jobs if job is not None and job.status in ACTIVE_STATUSES}
        orphans = [row for row in stale if not live.intersection(job_keys(row.id, row.attempts, row.event_key))]
        requeued = 0
        for row in orphans:
            if row.status == "queued" and await queue.enqueue(delivery_job(self.settings, row.id)) is not None:
                requeued += 1
        abandoned = [row.id for row in orphans if row.status == "sending"]
        if abandoned:
            await run_unit_of_work(engine, partial(_settle_abandoned, notification_ids=abandoned))
        if requeued or abandoned:
            RECONCILED.labels("requeued").inc(requeued)
            RECONCILED.labels("interrupted").inc(len(abandoned))
            logger.warning(
                "reconciler: %d queued notification(s) had no job and were enqueued again; "
                "%d left sending by a dead worker marked failed",
                requeued,
                len(abandoned),
            )
        return requeued, len(abandoned)

    async def run_reconciler(self, queue: Queue, stop: asyncio.Event) -> None:
        """Reconcile every `reconcile_interval_seconds` until `stop`; with several workers, one pass per
        interval in all (a lock in the queue's Redis), and a failed pass is simply tried at the next tick."""
        interval = self.settings.reconcile_interval_seconds
        while not stop.is_set():
            try:
                if await _take_turn(queue, interval, self.settings.queue_name):
                    await self.reconcile(queue)
                    RECONCILER_PASSES.inc()
            except Exception:
                logger.warning("notification reconciler failed; retrying in %.1f s", interval, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    # ---- the job -----------------------------------------------------------------------------

    async def deliver(self, notification_id: int, *, final_attempt: bool) -> str:
        """Send one logged notification at most once.

        The row is marked `sending` (committed) before the provider is called. A job that finds a row
        still `sending` was interrupted mid-send (worker killed, job timed out): the provider may have
        the message, so it is not sent again automatically; it is marked failed for a person to check
        and retry. Provider refusals (`DeliveryError`) are known failures and are retried.
        """
        writes = self._writes()
        claimed = await writes.run(partial(_claim, notification_id=notification_id))
        if isinstance(claimed, str):
            return claimed
        try:
            if claimed.channel == "sms":
                provider_id = await self.sms.send(claimed.recipient, claimed.body)
            else:
                provider_id = await self.email.send(claimed.recipient, claimed.subject or "", claimed.body,
                                                    claimed.html or "")  # fmt: skip
        except DeliveryError as exc:
            give_up = final_attempt or not exc.retry
            status = "failed" if give_up else "queued"
            reason = str(exc)[:2000].replace("\x00", "\ufffd")
            await writes.run(partial(_finish, notification_id=notification_id, status=status, last_error=reason))
            if give_up:
                logger.warning("notification %s failed for good: %s", notification_id, exc)
                return "failed"
            raise
        except Exception as exc:  # no channel should raise anything else; if one does, record it, never leave `sending`
            logger.exception("notification %s: unexpected error from the %s channel", notification_id, claimed.channel)
            reason = f"Unexpected error while sending ({type(exc).__name__}); it may have been sent: check, then retry."
            await writes.run(partial(_finish, notification_id=notification_id, status="failed", last_error=reason))
            return "failed"
        await writes.run(
            partial(_finish, notification_id=notification_id, status="sent", provider_message_id=provider_id)
        )
        return "sent"


# ---- units of work (synchronous Core, run by `run_unit_of_work`) ---------------------------------------

LOG = cast("Table", NotificationLog.__table__)
OUTBOX = cast("Table", OutboxMessage.__table__)

Plan = list[tuple[str, str, str, str | None, str, str | None, str | None]]
"""(channel, recipient, status, subject, body, html, secret) for each notification an event causes."""


def _without_secret(request: MessageRequested) -> dict[str, Any]:
    """A requested message's payload with its secret replaced wherever it appears (the link holds it too)."""
    secret = request.secret or ""
    context = {key: value.replace(secret, SECRET_PLACEHOLDER) for key, value in request.context.items()}
    return cast("dict[str, Any]", msgspec.to_builtins(msgspec.structs.replace(request, secret=None, context=context)))


def _engine_of(session: AsyncSession) -> AsyncEngine:
    bind = session.bind
    if not isinstance(bind, AsyncEngine):  # pragma: no cover - the session maker is bound to an engine
        raise TypeError("the notify session maker must be bound to an AsyncEngine")
    return bind


_LOGGED = select(LOG.c.id, LOG.c.event_key, LOG.c.channel, LOG.c.recipient, LOG.c.status).where(
    LOG.c.event_key.in_(bindparam("event_keys", expanding=True))
)
_INSERT_LOG = insert(LOG).returning(LOG.c.id, LOG.c.status, LOG.c.event_key)


def _log_notifications(
    connection: Connection,
    planned: list[tuple[str, str, str | None, tuple[int | None, Plan]]],
    scrubbed: dict[int, dict[str, Any]],
) -> list[tuple[int, str]]:
    """Create the log rows of these events once (a relay that crashed half-way finds them again) and keep a
    requested message's secret in its log row only; returns (id, event key) of the rows still `queued`, the
    ones that need a job."""
    for message_id, payload in scrubbed.items():
        connection.execute(_SCRUB, {"message_id": message_id, "payload": payload})
    existing = {
        (row.event_key, row.channel, row.recipient): (row.id, row.status, row.event_key)
        for row in connection.execute(_LOGGED, {"event_keys": [event_key for event_key, *_ in planned]})
    }
    now = datetime.now(UTC)
    new_rows = [
        {
            "event_key": event_key,
            "topic": topic,
            "order_number": order_number,
            "customer_id": customer_id,
            "channel": channel,
            "recipient": recipient,
            "status": status,
            "subject": subject,
            "body": body,
            "html": html,
            "secret": secret,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for event_key, topic, order_number, (customer_id, plan) in planned
        for channel, recipient, status, subject, body, html, secret in plan
        if (event_key, channel, recipient) not in existing
    ]
    rows = list(existing.values())
    if new_rows:
        inserted = connection.execute(_INSERT_LOG, new_rows)
        rows += [(row.id, row.status, row.event_key) for row in inserted]
    return sorted((notification_id, key) for notification_id, status, key in rows if status == "queued")


_SCRUB = update(OUTBOX).where(OUTBOX.c.id == bindparam("message_id")).values(payload=bindparam("payload"))


@dataclass(frozen=True)
class _Claimed:
    channel: str
    recipient: str
    subject: str | None
    body: str
    html: str | None


_CLAIM = (
    update(LOG)
    .where(LOG.c.id == bindparam("notification_id"), LOG.c.status == "queued")
    .values(status="sending", attempts=LOG.c.attempts + 1, updated_at=bindparam("now"))
    .returning(LOG.c.channel, LOG.c.recipient, LOG.c.subject, LOG.c.body, LOG.c.html, LOG.c.secret)
)
_STATUS = select(LOG.c.status).where(LOG.c.id == bindparam("notification_id"))


def _claim(connection: Connection, notification_id: int) -> _Claimed | str:
    """Mark a `queued` row `sending` and return what to send, or the row's outcome when there is nothing to send."""
    row = connection.execute(_CLAIM, {"notification_id": notification_id, "now": datetime.now(UTC)}).first()
    if row is not None:
        body, html = row.body, row.html
        if SECRET_PLACEHOLDER in body:
            if row.secret is None:  # a staff retry after the secret was dropped: sending the placeholder helps nobody
                _finish(connection, notification_id, "failed", last_error=SECRET_GONE)
                return "failed"
            body = body.replace(SECRET_PLACEHOLDER, row.secret)
            html = html.replace(SECRET_PLACEHOLDER, row.secret) if html else html
        return _Claimed(row.channel, row.recipient, row.subject, body, html)
    status = connection.execute(_STATUS, {"notification_id": notification_id}).scalar_one_or_none()
    if status is None:
        return "missing"
    if status == "sending":
        _finish(connection, notification_id, "failed", last_error=INTERRUPTED)
        return "failed"
    return str(status)


def _settle_abandoned(connection: Connection, notification_ids: list[int]) -> None:
    connection.execute(
        update(LOG)
        .where(LOG.c.id.in_(notification_ids), LOG.c.status == "sending")
        .values(status="failed", last_error=INTERRUPTED, secret=None, updated_at=datetime.now(UTC))
    )


async def _take_turn(queue: Queue, interval: float, name: str) -> bool:
    """True for one worker per interval (SET NX with expiry in the queue's Redis); always True without Redis."""
    client = getattr(queue, "redis", None)
    if client is None:  # pragma: no cover - every queue we configure is a RedisQueue
        return True
    milliseconds = max(int(interval * 1000) - 100, 1)  # a little shorter than the interval: no tick is skipped
    return bool(await client.set(f"{RECONCILE_LOCK}:{name}", "1", nx=True, px=milliseconds))


_FINISH = (
    update(LOG)
    .where(LOG.c.id == bindparam("notification_id"))
    .values(status=bindparam("outcome"), last_error=bindparam("error"), updated_at=bindparam("now"))
)
_FINISH_FOR_GOOD = _FINISH.values(secret=None)
_FINISHES = {  # (a retry follows, the provider gave an id) -> statement
    (True, False): _FINISH,
    (True, True): _FINISH.values(provider_message_id=bindparam("message_id")),
    (False, False): _FINISH_FOR_GOOD,
    (False, True): _FINISH_FOR_GOOD.values(provider_message_id=bindparam("message_id")),
}


def _finish(
    connection: Connection,
    notification_id: int,
    status: str,
    *,
    last_error: str | None = None,
    provider_message_id: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "notification_id": notification_id,
        "outcome": status,
        "error": last_error,
        "now": datetime.now(UTC),
    }
    # sent, or failed for good: a one-time secret is not kept a moment longer (a retry still needs it)
    statement = _FINISHES[status == "queued", provider_message_id is not None]
    if provider_message_id is not None:
        values["message_id"] = provider_message_id
    connection.execute(statement, values)


async def deliver_notification(ctx: Context, *, notification_id: int, request_id: str | None = None) -> str:
    """SAQ task (queue `notify`): send one logged notification (a reconciler's or a staff retry's job);
    raising makes SAQ retry with backoff. Logs under the id of the request that caused the notification."""
    return (await _deliver_each(ctx, [notification_id], request_id))[0]


async def deliver_event(ctx: Context, *, notification_ids: list[int], request_id: str | None = None) -> list[str]:
    """SAQ task (queue `notify`): send the logged notifications of one event side by side (`event_job`); if
    any must be tried again, raising makes SAQ retry the job, and the retry sends only the rows still `queued`
    (the others' claims find them sent or failed)."""
    return await _deliver_each(ctx, notification_ids, request_id)


async def _deliver_each(ctx: Context, notification_ids: list[int], request_id: str | None) -> list[str]:
    runtime = cast("NotifyRuntime", cast("dict[str, Any]", ctx)["notify"])
    job = ctx["job"]
    final_attempt = job.attempts >= job.retries
    with bind_request_id(request_id):
        results = await asyncio.gather(
            *(runtime.deliver(notification_id, final_attempt=final_attempt) for notification_id in notification_ids),
            return_exceptions=True,
        )
        retry: BaseException | None = None
        outcomes: list[str] = []
        for notification_id, result in zip(notification_ids, results, strict=True):
            if isinstance(result, BaseException):
                JOBS.labels("retry").inc()
                logger.info("notification %s: will retry (attempt %s)", notification_id, job.attempts)
                retry = retry or result
            else:
                JOBS.labels(result).inc()
                logger.info("notification %s: %s", notification_id, result)
                outcomes.append(result)
        if retry is not None:
            raise retry
        return outcomes
