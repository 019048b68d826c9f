"""Living with an account: register or change the address (with the verification link), change a password,
reset a forgotten one, verify an e-mail address.

Messages to the person (the verification or reset link, the code, the notice that a password changed) are staged
in the kernel's outbox in the same transaction as the change (`unit.stage`, `shop_kernel.MessageRequested`); the
notify context renders, logs and sends them. Nothing here sends anything inline.

Longer than our ~350-line rule: the flows share their one-time secrets (issue, hash, expire, spend once), their
attempt counting and their messages; apart, each would carry a copy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal

import anyio
import phonenumbers
from email_validator import EmailNotValidError
from sqlalchemy import func, select, update

from shop_identity.models import AccessToken, AccountSecret, AuthorizationCode, Customer
from shop_identity.oauth.throttle import FailureCounter, MemoryFailureCounter, SignInThrottle
from shop_identity.passwords import check_new_password, hash_password, verify_password
from shop_identity.services import (
    DEFAULT_REGION,
    CustomerService,
    forget_when_committed,
    hash_token,
    normalize_email,
    normalize_phone,
)
from shop_kernel import (
    MESSAGE_REQUESTED,
    ConflictError,
    FieldValidationError,
    MessageRequested,
    ProblemError,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_identity.schemas import (
        PasswordChange,
        PasswordResetConfirm,
        PasswordResetRequest,
        ProfileUpdate,
        RegisterCustomer,
    )
    from shop_kernel import Unit

__all__ = ("AccountPolicy", "AccountService", "TooManyAttempts", "end_sessions", "message_key_prefix")

PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a password
EMAIL_VERIFICATION = "email_verification"
BAD_VERIFICATION_LINK = "This verification link is invalid, expired or already used. Ask for a new one."
ALREADY_VERIFIED = "Your e-mail address is already verified."
WRONG_CURRENT_PASSWORD = "Your old password was entered incorrectly. Please enter it again."  # noqa: S105
BAD_LINK = "This password reset link is invalid, expired or already used. Ask for a new one."
BAD_CODE = "The code is wrong, expired or already used."
USED_UP_CODE = "Too many wrong codes: this one no longer works. Ask for a new one."


class TooManyAttempts(ProblemError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS
    problem_type = "/problems/too-many-attempts"

    def __init__(self, detail: str, wait_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(wait_seconds)})


@dataclass(frozen=True)
class AccountPolicy:
    """How account secrets are made, sent and limited (the plugin builds it from `IdentitySettings`)."""

    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    """Keys the digests of reset tokens and codes."""
    link_base_url: str | None = None
    """Where links in messages point (`<base>/reset-password?token=...`); None: this server's `/account` pages."""
    reset_ttl: timedelta = timedelta(minutes=30)
    verification_ttl: timedelta = timedelta(days=3)
    max_code_tries: int = 5
    max_reset_requests_per_account: int = 5
    max_reset_requests_per_address: int = 20
    reset_request_window: timedelta = timedelta(hours=1)
    phone_region: str = DEFAULT_REGION
    counter: FailureCounter = field(default_factory=MemoryFailureCounter)
    """The sign-in throttle's counter (Redis when the host has one), so limits hold across replicas."""

    def digest(self, secret: str) -> str:
        return hmac.new(self.secret_key, secret.encode(), hashlib.sha256).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def message_key_prefix(customer_id: int) -> str:
    """Outbox keys of the messages identity requested for a customer start with this (erasure finds them so)."""
    return f"{MESSAGE_REQUESTED}:{customer_id}:"


async def end_sessions(
    session: AsyncSession, customer_id: int, now: datetime, *, keep_token_hash: str | None = None
) -> list[str]:
    """Revoke every live token of the account (with its refresh token) but `keep_token_hash`, and retire its
    unused authorization codes, in the caller's transaction; returns the revoked token hashes, for
    `forget_when_committed`."""
    live = [AccessToken.customer_id == customer_id, AccessToken.revoked_at.is_(None)]
    if keep_token_hash is not None:
        live.append(AccessToken.token_hash != keep_token_hash)
    revoked = list((await session.scalars(select(AccessToken.token_hash).where(*live))).all())
    await session.execute(update(AccessToken).where(*live).values(revoked_at=now))
    await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.customer_id == customer_id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    return revoked


def _display_name(customer: Customer) -> str:
    return customer.first_name or customer.username


class AccountService:
    def __init__(self, unit: Unit, policy: AccountPolicy, throttle: SignInThrottle) -> None:
        self.unit = unit
        self.session = unit.session
        self.policy = policy
        self.throttle = throttle
        self.customers = CustomerService(unit, phone_region=policy.phone_region)

    # ---- register and profile ---------------------------------------------------------------------

    async def register(self, data: RegisterCustomer, *, link_base_url: str) -> int:
        """A new account and the link that verifies its e-mail address, in one transaction: there is never an
        account whose link was not staged, nor a link for an account that failed. Returns the account's id."""
        async with self.customers.transaction(username=data.username, email=data.email):
            customer_id = (await self.customers.register(data)).id
            await self.send_verification(customer_id, link_base_url=link_base_url)
        return customer_id

    async def update_profile(self, customer_id: int, data: ProfileUpdate, *, link_base_url: str) -> None:
        """A profile update; a new e-mail address gets its verification link in the same transaction."""
        email = data.email if isinstance(data.email, str) else None
        async with self.customers.transaction(email=email):
            before = (await self.customers.get(customer_id)).email
            if (await self.customers.update_profile(customer_id, data)).email != before:
                await self.send_verification(customer_id, link_base_url=link_base_url)

    # ---- change ---------------------------------------------------------------------------------

    async def change_password(
        self, customer_id: int, data: PasswordChange, *, current_token: str | None, address: str
    ) -> int:
        """Check the current password (a wrong one counts as a failed sign-in), set the new one, revoke every
        other token of the account (and the caller's too if asked) and stage the notice; returns how many
        tokens were revoked."""
        customer = await self.session.get(Customer, customer_id)
        if customer is None or not customer.is_active:
            raise FieldValidationError({"current_password": [WRONG_CURRENT_PASSWORD]})
        if (wait := await self.throttle.attempt(customer.username, address)) is not None:
            raise TooManyAttempts(f"Too many wrong passwords. Try again in {wait} s.", wait)
        valid = await anyio.to_thread.run_sync(verify_password, customer.password_hash, data.current_password)
        errors: dict[str, list[str]] = {} if valid else {"current_password": [WRONG_CURRENT_PASSWORD]}
        self._check_new_password(customer, data.new_password, data.new_password_confirm, errors)
        if valid:
            await self.throttle.succeeded(customer.username, address)
        if errors:
            raise FieldValidationError(errors)
        keep = None if data.revoke_current or current_token is None else hash_token(current_token)
        async with self.unit.transaction():
            return await self._set_password(customer, data.new_password, keep_token_hash=keep)

    # ---- reset ----------------------------------------------------------------------------------

    async def request_reset(self, data: PasswordResetRequest, *, address: str, link_base_url: str) -> None:
        """Send a reset link (e-mail) or code (SMS) if an active account has that address. The caller learns
        nothing either way: the answer, and about the time it takes, are the same."""
        channel, recipient = self._reset_recipient(data)
        window = int(self.policy.reset_request_window.total_seconds())
        count, wait = await self.policy.counter.add(f"reset:address:{address}", window)
        if count > self.policy.max_reset_requests_per_address:
            raise TooManyAttempts(f"Too many reset requests from this address. Try again in {wait} s.", wait)
        # every lookup costs one counter round trip and one query, whether or not someone has the address
        recipient_count, _ = await self.policy.counter.add(f"reset:recipient:{recipient.lower()}", window)
        customer = await self._find_by(channel, recipient)
        if customer is None or recipient_count > self.policy.max_reset_requests_per_account:
            return
        account_count, _ = await self.policy.counter.add(f"reset:account:{customer.id}", window)
        if account_count > self.policy.max_reset_requests_per_account:
            return
        minutes = str(int(self.policy.reset_ttl.total_seconds() // 60))
        async with self.unit.transaction():
            secret = await self._new_secret(customer.id, PASSWORD_RESET, channel, self.policy.reset_ttl)
            if channel == "email":
                link = f"{link_base_url.rstrip('/')}/reset-password?token={secret}"
                self._send(customer, PASSWORD_RESET, secret=secret, minutes=minutes, link=link)
            else:
                self._send(customer, PASSWORD_RESET, channel="sms", secret=secret, minutes=minutes, code=secret)

    async def confirm_reset(self, data: PasswordResetConfirm) -> None:
        """Set the new password with a link token or an SMS code, then revoke every token of the account."""
        if (data.token is None) == (data.code is None):
            raise FieldValidationError({"non_field_errors": ["Send either the link's token or the SMS code."]})
        if data.token is not None:
            row = await self.session.scalar(
                select(AccountSecret).where(AccountSecret.secret_hash == self.policy.digest(data.token))
            )
            if row is None or row.purpose != PASSWORD_RESET or not self._usable(row):
                raise FieldValidationError({"token": [BAD_LINK]})
        else:
            row = await self._check_code(data)  # a wrong code is counted in a transaction of its own
        customer = await self.session.get(Customer, row.customer_id)
        if customer is None or not customer.is_active:  # pragma: no cover - deactivation retires secrets
            raise FieldValidationError({"token": [BAD_LINK]})
        errors: dict[str, list[str]] = {}
        self._check_new_password(customer, data.new_password, data.new_password_confirm, errors)
        if errors:
            raise FieldValidationError(errors)
        async with self.unit.transaction() as session:
            claimed = await session.execute(
                update(AccountSecret)
                .where(AccountSecret.id == row.id, AccountSecret.used_at.is_(None))
                .values(used_at=_now())
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]  # another request used it a moment ago
                raise FieldValidationError({"token" if data.token else "code": [BAD_LINK if data.token else BAD_CODE]})
            await self._set_password(customer, data.new_password, keep_token_hash=None)
        # the person proved they own the account: the sign-in lock of its failures is lifted
        await self.throttle.counter.forget(SignInThrottle.keys(customer.username, "")[0])

    async def _check_code(self, data: PasswordResetConfirm) -> AccountSecret:
        """The SMS code's secret, checked; a wrong code counts one try, and the last allowed try retires it."""
        customer = await self._find_by("sms", self._phone(data.phone_number, "phone_number"))
        row = None
        if customer is not None:
            row = await self.session.scalar(
                select(AccountSecret)
                .where(
                    AccountSecret.customer_id == customer.id,
                    AccountSecret.purpose == PASSWORD_RESET,
                    AccountSecret.channel == "sms",
                    AccountSecret.used_at.is_(None),
                )
                .order_by(AccountSecret.id.desc())
                .limit(1)
            )
        if customer is None or row is None or not self._usable(row):
            raise FieldValidationError({"code": [BAD_CODE]})
        given = self.policy.digest(f"{customer.id}:{(data.code or '').strip()}")
        if hmac.compare_digest(given, row.secret_hash):
            return row
        tries = row.failed_tries + 1
        used_up = tries >= self.policy.max_code_tries
        async with self.unit.transaction() as session:
            await session.execute(
                update(AccountSecret)
                .where(AccountSecret.id == row.id)
                .values(failed_tries=AccountSecret.failed_tries + 1, used_at=_now() if used_up else None)
            )
        raise FieldValidationError({"code": [USED_UP_CODE if used_up else BAD_CODE]})

    # ---- e-mail verification ----------------------------------------------------------------------

    async def send_verification(self, customer_id: int, *, link_base_url: str, address: str | None = None) -> None:
        """E-mail a verification link to the account's current address, retiring earlier links. Asked for by the
        person (`address` given), it is limited like reset requests and refused once the address is verified."""
        customer = await self.session.get(Customer, customer_id)
        if customer is None or not customer.is_active:  # pragma: no cover - callers pass a live account
            return
        if address is not None:
            if customer.email_verified_at is not None:
                raise ConflictError(ALREADY_VERIFIED)
            window = int(self.policy.reset_request_window.total_seconds())
            count, wait = await self.policy.counter.add(f"verify:account:{customer.id}", window)
            if count > self.policy.max_reset_requests_per_account:
                raise TooManyAttempts(f"Too many verification e-mails. Try again in {wait} s.", wait)
        async with self.unit.transaction():
            secret = await self._new_secret(customer.id, EMAIL_VERIFICATION, "email", self.policy.verification_ttl)
            self._send(
                customer,
                EMAIL_VERIFICATION,
                secret=secret,
                email=customer.email,
                link=f"{link_base_url.rstrip('/')}/verify-email?token={secret}",
                days=str(self.policy.verification_ttl.days),
            )

    async def verify_email(self, token: str) -> None:
        """Mark the address verified; the link is single-use and dies with any later change of address."""
        row = await self.session.scalar(
            select(AccountSecret).where(AccountSecret.secret_hash == self.policy.digest(token))
        )
        if row is None or row.purpose != EMAIL_VERIFICATION or not self._usable(row):
            raise FieldValidationError({"token": [BAD_VERIFICATION_LINK]})
        now = _now()
        async with self.unit.transaction() as session:
            claimed = await session.execute(
                update(AccountSecret)
                .where(AccountSecret.id == row.id, AccountSecret.used_at.is_(None))
                .values(used_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]  # used by a request a moment ago
                raise FieldValidationError({"token": [BAD_VERIFICATION_LINK]})
            await session.execute(
                update(Customer).where(Customer.id == row.customer_id).values(email_verified_at=now, updated_at=now)
            )
            hashes = await session.scalars(
                select(AccessToken.token_hash).where(
                    AccessToken.customer_id == row.customer_id, AccessToken.revoked_at.is_(None)
                )
            )
            forget_when_committed(self.unit, hashes)  # cached principals of this process learn the news

    # ---- shared ---------------------------------------------------------------------------------

    def _usable(self, row: AccountSecret) -> bool:
        return row.used_at is None and row.expires_at > _now() and row.failed_tries < self.policy.max_code_tries

    def _check_new_password(
        self, customer: Customer, password: str, confirmation: str, errors: dict[str, list[str]]
    ) -> None:
        user = {"username": customer.username, "first_name": customer.first_name, "last_name": customer.last_name}
        check_new_password(
            errors,
            password,
            confirmation,
            user={**user, "email": customer.email},
            field="new_password",
            confirm_field="new_password_confirm",
        )

    async def _set_password(self, customer: Customer, password: str, *, keep_token_hash: str | None) -> int:
        """In the caller's transaction: new password, every token but `keep_token_hash` revoked (refresh tokens
        with them), pending authorization codes and reset secrets retired, the notice staged."""
        now = _now()
        customer.password_hash = await anyio.to_thread.run_sync(hash_password, password)
        revoked = await end_sessions(self.session, customer.id, now, keep_token_hash=keep_token_hash)
        forget_when_committed(self.unit, revoked)
        await self._retire_secrets(customer.id, now, PASSWORD_RESET)
        self._send(customer, "password_changed", when=now.strftime("%Y-%m-%d %H:%M UTC"))
        return len(revoked)

    async def _new_secret(self, customer_id: int, purpose: str, channel: str, ttl: timedelta) -> str:
        """A new link token (e-mail) or 6-digit code (SMS) for the account, retiring its earlier ones of the same
        purpose; only its digest is stored. A code's digest includes the account id: two accounts may get the
        same six digits."""
        now = _now()
        await self._retire_secrets(customer_id, now, purpose)
        secret = secrets.token_urlsafe(32) if channel == "email" else f"{secrets.randbelow(1_000_000):06d}"
        self.session.add(
            AccountSecret(
                customer_id=customer_id,
                purpose=purpose,
                channel=channel,
                secret_hash=self.policy.digest(secret if channel == "email" else f"{customer_id}:{secret}"),
                expires_at=now + ttl,
            )
        )
        return secret

    async def _retire_secrets(self, customer_id: int, now: datetime, purpose: str) -> None:
        await self.session.execute(
            update(AccountSecret)
            .where(
                AccountSecret.customer_id == customer_id,
                AccountSecret.purpose == purpose,
                AccountSecret.used_at.is_(None),
            )
            .values(used_at=now)
        )

    def _send(
        self,
        customer: Customer,
        template: str,
        *,
        channel: Literal["email", "sms"] = "email",
        secret: str | None = None,
        **context: str,
    ) -> None:
        """Stage a message to the account's stored address or number (not as the request typed it) in this
        transaction; every template gets the person's name and username."""
        message = MessageRequested(
            template=template,
            channel=channel,
            recipient=customer.email if channel == "email" else customer.phone_number or "",
            customer_id=customer.id,
            context={"name": _display_name(customer), "username": customer.username, **context},
            secret=secret,
        )
        self.unit.stage(MESSAGE_REQUESTED, f"{message_key_prefix(customer.id)}{template}:{uuid.uuid4().hex}", message)

    def _reset_recipient(self, data: PasswordResetRequest) -> tuple[Literal["email", "sms"], str]:
        if (data.email is None) == (data.phone_number is None):
            raise FieldValidationError({"non_field_errors": ["Send either an e-mail address or a phone number."]})
        if data.email is not None:
            try:
                return "email", normalize_email(data.email)
            except EmailNotValidError:
                raise FieldValidationError({"email": ["Enter a valid email address."]}) from None
        return "sms", self._phone(data.phone_number, "phone_number")

    def _phone(self, value: str | None, name: str) -> str:
        try:
            return normalize_phone(value or "", self.policy.phone_region)
        except (phonenumbers.NumberParseException, ValueError):
            raise FieldValidationError(
                {name: ["Enter a valid phone number, e.g. +254712345678 or 0712345678."]}
            ) from None

    async def _find_by(self, channel: str, recipient: str) -> Customer | None:
        """The active account with that address; of several sharing a phone number, the oldest (both the request
        and the confirmation pick the same one)."""
        column = (
            func.lower(Customer.email) == recipient.lower()
            if channel == "email"
            else Customer.phone_number == recipient
        )
        found: Customer | None = await self.session.scalar(
            select(Customer).where(column, Customer.is_active.is_(True)).order_by(Customer.id).limit(1)
        )
        return found
