"""The outbox relay: every subscriber gets every event of its topics, each keeping its own progress.

A context subscribes with a `Subscriber`: a name, the topics it consumes (each with the msgspec Struct its
payload decodes into) and an async handler of a batch of events. The relay reads what each subscriber has not
had yet, hands it over, and records one `kernel_outbox_delivery` row per (subscriber, event) once the handler
returned. An event is `dispatched_at` once every subscriber of its topic has it, which keeps the pending rows a
short range of the `(dispatched_at, id)` index however long the outbox grows.

Why rows per (subscriber, event) and not a position per subscriber: ids are drawn when a transaction inserts
its event, not when it commits, so on PostgreSQL an event with a smaller id can become visible after one with a
larger id was already handed over; a "last id" cursor would skip it for good. A row per delivery has no such
gap: whatever commits later is still undispatched and undelivered when the relay next looks.

Handlers see an event at least once: a relay that dies after a handler returned and before the delivery rows
commit hands the same events over again, as do two relays reading at once. Handlers therefore act
idempotently by `OutboxEvent.key` (notify keys its log rows and jobs by it). A handler that raises keeps its
events pending for it alone, tried again with backoff; the other subscribers carry on.

Subscribers are declared by the plugins that consume events (`OutboxConsumer.outbox_subscribers`), never listed by
the host app: whoever runs a relay gives it `subscribers_of(mounted plugins, worker context)`, so a new consumer is
a new plugin and touches no existing one. Each pass is counted (`shop_outbox_relay_passes_total`) and so is each
event handed over, per subscriber and outcome (`shop_outbox_relayed_total`): the signal a test or an operator waits
on instead of a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import msgspec
from advanced_alchemy.base import orm_registry
from advanced_alchemy.types import DateTimeUTC
from prometheus_client import Counter
from sqlalchemy import (
    Column,
    ForeignKey,
    String,
    Table,
    and_,
    bindparam,
    exists,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shop_kernel.outbox import OUTBOX
from shop_kernel.writes import run_unit_of_work

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection, Select, Update
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = (
    "OUTBOX_DELIVERY",
    "RELAYED",
    "RELAY_PASSES",
    "OutboxConsumer",
    "OutboxEvent",
    "OutboxRelay",
    "Subscriber",
    "subscribers_of",
)

logger = logging.getLogger("shop.outbox")
E = TypeVar("E")

OUTBOX_DELIVERY = Table(
    "kernel_outbox_delivery",
    orm_registry.metadata,
    Column("subscriber", String(100), primary_key=True),
    Column("message_id", ForeignKey("kernel_outbox.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    Column("delivered_at", DateTimeUTC(timezone=True), nullable=False),
)
"""One row per event a subscriber has handled."""


@dataclass(frozen=True)
class OutboxEvent(Generic[E]):
    id: int
    topic: str
    key: str
    """The event's identity (e.g. `order.placed:42`): a handler that sees it twice acts once by it."""
    request_id: str | None
    body: E
    """The payload decoded into the Struct the subscriber named for the topic."""


@dataclass(frozen=True)
class Subscriber:
    name: str
    """Unique among the subscribers of one outbox; it names the subscriber's delivery rows, so keep it stable."""
    topics: Mapping[str, type[Any]]
    """Each consumed topic and the msgspec Struct its payload is decoded into."""
    handle: Callable[[list[OutboxEvent[Any]]], Awaitable[None]]
    """Handles a batch of events (in outbox order); raising keeps all of them pending for this subscriber."""


@runtime_checkable
class OutboxConsumer(Protocol):
    """A plugin that consumes outbox events: it declares its subscribers, and the relay of whatever worker the host
    app runs collects them from every mounted plugin (`subscribers_of`)."""

    def outbox_subscribers(self, worker: Mapping[str, Any]) -> Sequence[Subscriber]:
        """This plugin's subscribers, for a relay starting beside `worker`: the worker's context (SAQ's `ctx`,
        with its `worker` and what startup hooks put there), for a handler that hands work to the worker's queue.
        """
        ...


def subscribers_of(plugins: Iterable[object], worker: Mapping[str, Any]) -> list[Subscriber]:
    """The subscribers every `OutboxConsumer` among `plugins` declares, in order."""
    return [s for plugin in plugins if isinstance(plugin, OutboxConsumer) for s in plugin.outbox_subscribers(worker)]


RELAY_PASSES = Counter(
    "shop_outbox_relay_passes",
    "Outbox relay passes this process completed (one per interval while idle, back to back while busy): flat "
    "means no relay runs here, or its passes keep failing (the database).",
)
RELAYED = Counter(
    "shop_outbox_relayed",
    "Outbox events handed to a subscriber, by outcome: `delivered` (its handler returned; at least once), `failed` "
    "(it raised: still pending for it, tried again with backoff) or `undecodable` (passed over and logged).",
    ["subscriber", "outcome"],
)


@dataclass
class _Backoff:
    delay: float = 0.0
    until: float = 0.0


@dataclass
class OutboxRelay:
    """Moves outbox events to `subscribers`; `run` polls until stopped, `relay_once` is one pass."""

    engine: AsyncEngine
    subscribers: Sequence[Subscriber]
    batch: int = 200
    interval: float = 0.5
    max_delay: float = 10.0
    _backoff: dict[str, _Backoff] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        names = [subscriber.name for subscriber in self.subscribers]
        if len(set(names)) != len(names):
            raise ValueError(f"outbox subscribers need distinct names, got {names}")

    _pending_by_due: dict[tuple[str, ...], Select[Any]] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def _dispatch(self) -> Update:
        return _dispatch_statement(self.subscribers)

    async def relay_once(self) -> int:
        """One pass: one read for all subscribers, their handlers side by side, one write. Returns how many
        (subscriber, event) deliveries it recorded."""
        now = time.monotonic()
        due = [s for s in self.subscribers if self._backoff.setdefault(s.name, _Backoff()).until <= now]
        if not due:
            return 0
        # shielded: a worker stopping mid-read must still give its connection back
        rows = await asyncio.shield(self._pending(due))
        if not rows:
            return 0
        by_name: dict[str, list[Any]] = {}
        for row in rows:
            by_name.setdefault(row.subscriber, []).append(row)
        handled = await asyncio.gather(
            *(self._hand_over(subscriber, by_name[subscriber.name]) for subscriber in due if subscriber.name in by_name)
        )
        deliveries = [(name, message_id) for name, message_ids in handled for message_id in message_ids]
        if deliveries:
            await run_unit_of_work(self.engine, partial(self._record, deliveries=deliveries))
        return len(deliveries)

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop`; after a pass with nothing to hand over, wait `interval` (more, up to
        `max_delay`, while the database is unreachable)."""
        delay = self.interval
        while not stop.is_set():
            try:
                delivered = await self.relay_once()
                RELAY_PASSES.inc()
                delay = self.interval
            except Exception:
                logger.warning("outbox relay failed; retrying in %.1f s", delay, exc_info=True)
                delivered = 0
                delay = min(delay * 2, self.max_delay)
            if not delivered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _pending(self, due: Sequence[Subscriber]) -> list[Any]:
        # built once per set of due subscribers (usually all of them), not on every pass
        key = tuple(subscriber.name for subscriber in due)
        statement = self._pending_by_due.get(key)
        if statement is None:
            statement = self._pending_by_due[key] = _pending_statement(due, self.batch)
        async with self.engine.connect() as connection:
            return list((await connection.execute(statement)).all())

    async def _hand_over(self, subscriber: Subscriber, rows: list[Any]) -> tuple[str, list[int]]:
        """Decode and hand `rows` to `subscriber`; returns the ids it now has (none if it raised). An event
        whose payload does not decode is logged and counted as handled: kept pending it would stop the
        subscriber at that event for ever, and the outbox row keeps it for a person to look at."""
        events: list[OutboxEvent[Any]] = []
        for row in rows:
            try:
                body = msgspec.convert(row.payload, subscriber.topics[row.topic])
            except msgspec.ValidationError as exc:
                logger.error("outbox event %s (%s) does not decode for %s: %s", row.id, row.key, subscriber.name, exc)
                RELAYED.labels(subscriber.name, "undecodable").inc()
                continue
            events.append(OutboxEvent(row.id, row.topic, row.key, row.request_id, body))
        backoff = self._backoff[subscriber.name]
        try:
            if events:
                await subscriber.handle(events)
        except Exception:
            backoff.delay = min(max(backoff.delay * 2, self.interval), self.max_delay)
            backoff.until = time.monotonic() + backoff.delay
            logger.warning(
                "outbox subscriber %s failed on %d event(s); retrying in %.1f s",
                subscriber.name,
                len(events),
                backoff.delay,
                exc_info=True,
            )
            RELAYED.labels(subscriber.name, "failed").inc(len(events))
            return subscriber.name, []
        RELAYED.labels(subscriber.name, "delivered").inc(len(events))
        backoff.delay = backoff.until = 0.0
        return subscriber.name, [row.id for row in rows]

    def _record(self, connection: Connection, deliveries: list[tuple[str, int]]) -> None:
        now = datetime.now(UTC)
        insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(
            insert(OUTBOX_DELIVERY).on_conflict_do_nothing(),  # another relay recorded it first
            [{"subscriber": name, "message_id": message_id, "delivered_at": now} for name, message_id in deliveries],
        )
        message_ids = sorted({message_id for _, message_id in deliveries})
        connection.execute(self._dispatch, {"message_ids": message_ids, "now": now})


def _pending_statement(subscribers: Sequence[Subscriber], batch: int) -> Select[Any]:
    """Up to `batch` undispatched events per subscriber, of its topics, that it has not had, oldest first."""
    parts = [
        select(
            literal(subscriber.name, String(100)).label("subscriber"),
            OUTBOX.c.id,
            OUTBOX.c.topic,
            OUTBOX.c.key,
            OUTBOX.c.payload,
            OUTBOX.c.request_id,
        )
        .where(
            OUTBOX.c.dispatched_at.is_(None),
            OUTBOX.c.topic.in_(list(subscriber.topics)),
            not_(_delivered_to(subscriber)),
        )
        .order_by(OUTBOX.c.id)
        .limit(batch)
        .subquery()
        for subscriber in subscribers
    ]
    pending = parts[0] if len(parts) == 1 else union_all(*(select(*part.c) for part in parts)).subquery()
    return select(*pending.c).order_by(pending.c.id)  # an inner ORDER BY does not order the outer rows


def _delivered_to(subscriber: Subscriber) -> ColumnElement[bool]:
    return exists().where(OUTBOX_DELIVERY.c.subscriber == subscriber.name, OUTBOX_DELIVERY.c.message_id == OUTBOX.c.id)


def _dispatch_statement(subscribers: Sequence[Subscriber]) -> Update:
    """Marks dispatched those of `message_ids` that every subscriber of their topic now has."""
    every = and_(*(or_(OUTBOX.c.topic.not_in(list(s.topics)), _delivered_to(s)) for s in subscribers))
    return (
        sql_update(OUTBOX)
        .where(OUTBOX.c.id.in_(bindparam("message_ids", expanding=True)), OUTBOX.c.dispatched_at.is_(None), every)
        .values(dispatched_at=bindparam("now"), attempts=OUTBOX.c.attempts + 1)
    )
