"""Domain events: how a context tells others what happened without importing them.

A context publishes after its transaction commits; others subscribe with Litestar listeners
registered by their own plugin (`litestar.events.listener("product.created")`). Delivery is
in-process and best effort; events that must survive a crash go through the outbox (notifications).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ("DomainEvent", "publish")


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """Dotted name, e.g. `product.created`."""
    payload: dict[str, Any]
    occurred_at: datetime = msgspec.field(default_factory=lambda: datetime.now(UTC))


def publish(app: Litestar, name: str, **payload: Any) -> DomainEvent:
    """Hand the event to every listener of `name` (none is fine); listeners run after the response."""
    event = DomainEvent(name=name, payload=payload)
    if app.event_emitter.listeners.get(name):  # Litestar refuses to emit an event nobody listens to
        app.emit(name, event)
    return event
