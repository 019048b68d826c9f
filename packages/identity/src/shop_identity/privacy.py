"""A person's data: everything held about them as one document, and closing the account (Kenya's Data
Protection Act 2019, like GDPR articles 15, 17 and 20).

Identity holds the account; other contexts hold orders and notifications. Identity does not import them:
each one that holds personal data gives the host a `PersonalData` (an export and an erase function over
the same session), and the host passes them to the identity plugin. Erasure runs every part in one
transaction, so an account is either closed everywhere or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import delete, select, update

from shop_identity.accounts import TooManyAttempts, end_sessions, message_key_prefix
from shop_identity.models import AccessToken, AccountSecret, AuthorizationCode, Customer
from shop_identity.oauth.throttle import SignInThrottle
from shop_identity.passwords import verify_password
from shop_identity.services import forget_when_committed
from shop_identity.staff import to_account
from shop_kernel import MESSAGE_REQUESTED, FieldValidationError, OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_kernel import Unit

__all__ = ("ERASED", "PersonalData", "PrivacyService", "message_key_prefix", "tombstone_username")

ERASED = "[erased]"
UNUSABLE_PASSWORD = "!erased"  # noqa: S105 - no Argon2 hash looks like this, so no password matches it


def tombstone_username(customer_id: int) -> str:
    """What an erased account is called from then on, in orders and everywhere else: its username and e-mail. A
    colon is in neither a username nor an address anyone can register, so a tombstone never collides."""
    return f"deleted:{customer_id}"


@dataclass(frozen=True)
class PersonalData:
    """What another context holds about a person, as that context exports and erases it."""

    name: str
    """The export document's member, e.g. `orders`."""
    export: Callable[[AsyncSession, int], Awaitable[Any]]
    """The person's data as JSON-ready values (lists, dicts, strings, numbers)."""
    erase: Callable[[AsyncSession, int], Awaitable[None]]
    """Remove or anonymise it in the caller's transaction (no commit); keep what accounting needs."""


class PrivacyService:
    def __init__(self, unit: Unit, throttle: SignInThrottle, holders: Sequence[PersonalData] = ()) -> None:
        self.unit = unit
        self.session = unit.session
        self.throttle = throttle
        self.holders = holders

    async def export(self, customer_id: int) -> dict[str, Any]:
        customer = await self.session.get(Customer, customer_id)
        if customer is None:  # pragma: no cover - the caller's token names a live account
            raise FieldValidationError({"non_field_errors": ["No such account."]})
        tokens = await self.session.scalars(
            select(AccessToken).where(AccessToken.customer_id == customer_id).order_by(AccessToken.id)
        )
        codes = await self.session.scalars(
            select(AuthorizationCode).where(AuthorizationCode.customer_id == customer_id).order_by(AuthorizationCode.id)
        )
        secrets = await self.session.scalars(
            select(AccountSecret).where(AccountSecret.customer_id == customer_id).order_by(AccountSecret.id)
        )
        document: dict[str, Any] = {
            "exported_at": datetime.now(UTC),
            "profile": to_account(customer),
            "oauth": {
                "tokens": [
                    {
                        "client_id": token.client_id,
                        "scope": token.scope,
                        "issued_at": token.created_at,
                        "expires_at": token.expires_at,
                        "revoked_at": token.revoked_at,
                        "has_refresh_token": token.refresh_token_hash is not None,
                        "refresh_expires_at": token.refresh_expires_at,
                        "refresh_used_at": token.refresh_used_at,
                    }
                    for token in tokens
                ],
                "grants": [
                    {
                        "client_id": code.client_id,
                        "scope": code.scope,
                        "redirect_uri": code.redirect_uri,
                        "granted_at": code.created_at,
                        "used_at": code.used_at,
                    }
                    for code in codes
                ],
            },
            "account_messages": [
                {
                    "purpose": secret.purpose,
                    "channel": secret.channel,
                    "sent_at": secret.created_at,
                    "expires_at": secret.expires_at,
                    "used_at": secret.used_at,
                }
                for secret in secrets
            ],
        }
        for holder in self.holders:
            document[holder.name] = await holder.export(self.session, customer_id)
        return document

    async def erase(self, customer_id: int, password: str, *, address: str) -> None:
        """Close the account: personal fields become a tombstone, every token is revoked, secrets and pending
        messages are dropped, and each other context anonymises what it holds, in one transaction."""
        customer = await self.session.get(Customer, customer_id)
        if customer is None or not customer.is_active:  # pragma: no cover - the caller's token names a live account
            raise FieldValidationError({"password": ["Wrong password."]})
        if (wait := await self.throttle.attempt(customer.username, address)) is not None:
            raise TooManyAttempts(f"Too many wrong passwords. Try again in {wait} s.", wait)
        if not await anyio.to_thread.run_sync(verify_password, customer.password_hash, password):
            raise FieldValidationError({"password": ["Wrong password."]})
        await self.throttle.succeeded(customer.username, address)
        await self.throttle.counter.forget(SignInThrottle.keys(customer.username, "")[0])
        now = datetime.now(UTC)
        tombstone = tombstone_username(customer_id)
        async with self.unit.transaction() as session:
            customer.username = tombstone
            customer.email = tombstone
            customer.first_name = ""
            customer.last_name = ""
            customer.phone_number = None
            customer.password_hash = UNUSABLE_PASSWORD
            customer.is_active = False
            customer.email_verified_at = None
            forget_when_committed(self.unit, await end_sessions(session, customer_id, now))
            await session.execute(delete(AccountSecret).where(AccountSecret.customer_id == customer_id))
            await self._scrub_requested_messages(session, customer_id)
            for holder in self.holders:
                await holder.erase(session, customer_id)

    async def _scrub_requested_messages(self, session: AsyncSession, customer_id: int) -> None:
        """The messages identity asked for keep no address, name or secret in the outbox, and those not yet sent
        never will be."""
        rows = await session.execute(
            select(OutboxMessage.id, OutboxMessage.payload).where(
                OutboxMessage.topic == MESSAGE_REQUESTED,
                OutboxMessage.key.startswith(message_key_prefix(customer_id), autoescape=True),
            )
        )
        ids = []
        for message_id, payload in rows.all():
            ids.append(message_id)
            scrubbed = {**payload, "recipient": ERASED, "context": {}, "secret": None}
            await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(payload=scrubbed))
        if ids:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.dispatched_at.is_(None))
                .values(dispatched_at=datetime.now(UTC))
            )
