"""Messages one context asks another to send to a person, through the outbox.

A context that owns people (identity) knows who should hear what; the notify context knows how to
render and send it. Neither imports the other: the requesting context stages a `MessageRequested` in
its transaction (`add_to_outbox(connection, MESSAGE_REQUESTED, key, message)`), and notify's relay
renders the named template and logs and sends it like any order notification.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ("MESSAGE_REQUESTED", "MessageRequested")

MESSAGE_REQUESTED = "message.requested"


class MessageRequested(msgspec.Struct, frozen=True, kw_only=True):
    template: str
    """Which message, e.g. `password_changed`; the sending context has a template of that name per channel."""
    channel: Literal["email", "sms"]
    recipient: str
    """An e-mail address or an E.164 phone number."""
    customer_id: int | None = None
    context: dict[str, str] = msgspec.field(default_factory=dict)
    """Values the template shows (names, links)."""
    secret: str | None = None
    """A one-time secret the message carries (a reset code or link token). The sender keeps it only until the
    message is sent or has failed for good, and never shows it in its log."""
