"""The transactional outbox: events that must not be lost are written in the same transaction as the
change they describe, and the relay (`shop_kernel.relay`) hands them to every subscriber afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec
from advanced_alchemy.base import IdentityBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Index, String, Table, Text, insert
from sqlalchemy.orm import Mapped, mapped_column

from shop_kernel.context import current_request_id
from shop_kernel.writes import Prepared

if TYPE_CHECKING:
    from sqlalchemy import Connection, Insert, Select

__all__ = ("OUTBOX_COLUMNS", "OutboxMessage", "add_to_outbox", "outbox_insert")


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxMessage(IdentityBase):
    __tablename__ = "kernel_outbox"

    topic: Mapped[str] = mapped_column(String(100))
    """Event name, e.g. `order.placed`."""
    key: Mapped[str] = mapped_column(String(200))
    """Deterministic identity of the event (e.g. `order.placed:42`), reused as the job key downstream."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """Set once every subscriber of the topic has the event (`kernel_outbox_delivery` says which has which)."""
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    """The HTTP request that caused the event: the jobs handling it log under the same id."""

    __table_args__ = (Index("ix_kernel_outbox_pending", "dispatched_at", "id"),)


OUTBOX = cast("Table", OutboxMessage.__table__)
OUTBOX_COLUMNS = ("topic", "key", "payload", "created_at", "attempts", "request_id")
_INSERT = Prepared(insert(OUTBOX), OUTBOX_COLUMNS)


def outbox_insert(rows: Select[Any]) -> Insert:
    """An INSERT staging the events `rows` selects (one column per name of `OUTBOX_COLUMNS`, in that order), for a
    caller that writes its change and its event in one statement; `request_id` is `current_request_id()`'s."""
    return insert(OUTBOX).from_select(OUTBOX_COLUMNS, rows, include_defaults=False)


def add_to_outbox(connection: Connection, topic: str, key: str, payload: msgspec.Struct) -> None:
    """Stage an event in the caller's transaction; it is delivered only if that transaction commits."""
    _INSERT.rows(
        connection,
        {
            "topic": topic,
            "key": key,
            "payload": msgspec.to_builtins(payload),
            "created_at": _now(),
            "attempts": 0,
            "request_id": current_request_id(),
        },
    )
