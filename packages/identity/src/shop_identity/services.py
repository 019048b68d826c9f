"""Identity services: registration, profiles and access tokens. They write through the request's `Unit`: each
public method that writes is one transaction, or joins the caller's when one is open.

Just over 350 lines: the customer and token services share the unique-name rule and the token caches that
revocation clears after a commit; split, each would import the other's internals.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import anyio
import msgspec
import phonenumbers
from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from cachetools import TLRUCache, TTLCache
from email_validator import EmailNotValidError, validate_email
from litestar.exceptions import NotFoundException
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from shop_identity.models import AccessToken, Customer
from shop_identity.passwords import check_new_password, hash_password, verify_password_or_decoy
from shop_kernel import FieldValidationError, Principal

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_identity.schemas import ProfileUpdate, RegisterCustomer
    from shop_kernel import TokenResolver, Unit

__all__ = (
    "CustomerRepository",
    "CustomerService",
    "TokenService",
    "forget_revoked",
    "hash_token",
    "make_token_resolver",
    "normalize_email",
    "normalize_phone",
)

DEFAULT_REGION = "KE"
MAX_LOGIN_LENGTH = 254
"""The longest e-mail address there can be: a longer login names no account."""


def normalize_email(value: str) -> str:
    """Syntax-checked, normalised address (no DNS lookup: registration must not depend on the network)."""
    return validate_email(value.strip(), check_deliverability=False).normalized


def normalize_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """E.164 form of a valid number; `0712 345678` in Kenya becomes `+254712345678`."""
    number = phonenumbers.parse(value, region)
    if not phonenumbers.is_valid_number(number):
        raise ValueError(value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class CustomerRepository(SQLAlchemyAsyncRepository[Customer]):
    model_type = Customer


class CustomerService:
    def __init__(self, unit: Unit, *, phone_region: str = DEFAULT_REGION) -> None:
        self.unit = unit
        self.session = unit.session
        self.repository = CustomerRepository(session=unit.session)
        self.phone_region = phone_region

    async def get(self, customer_id: int) -> Customer:
        customer = await self.repository.get_one_or_none(id=customer_id)
        if customer is None:
            raise NotFoundException(detail="No such customer.")
        return customer

    async def find_by_username(self, username: str) -> Customer | None:
        return await self.repository.get_one_or_none(func.lower(Customer.username) == username.lower())

    async def find_by_login(self, login: str) -> Customer | None:
        """The account whose username or e-mail address is `login`, in any case; a username wins over another
        account's e-mail address."""
        login = login.strip().lower()
        if not login or len(login) > MAX_LOGIN_LENGTH:
            return None
        found = await self.repository.get_many(
            or_(func.lower(Customer.username) == login, func.lower(Customer.email) == login)
        )
        return min(found, key=lambda customer: customer.username.lower() != login, default=None)

    async def authenticate(self, login: str, password: str) -> Customer | None:
        """The active account that `login` and `password` sign in to. Unknown accounts take as long to refuse as
        wrong passwords (the Argon2 check runs in a worker thread either way)."""
        customer = await self.find_by_login(login)
        stored_hash = customer.password_hash if customer else None
        valid = await anyio.to_thread.run_sync(verify_password_or_decoy, stored_hash, password)
        return customer if customer is not None and valid and customer.is_active else None

    async def register(self, data: RegisterCustomer, *, is_staff: bool = False) -> Customer:
        """Create a customer; every invalid field is reported at once, as DRF clients expect."""
        errors: dict[str, list[str]] = {}
        email = self._clean_email(data.email, errors)
        phone = self._clean_phone(data.phone_number, errors)
        user = {"username": data.username, "first_name": data.first_name, "last_name": data.last_name}
        check_new_password(
            errors,
            data.password,
            data.password_confirm,
            user={**user, "email": data.email},
            field="password",
            confirm_field="password_confirm",
        )
        await self._check_unique(errors, username=data.username, email=email)
        if errors:
            raise FieldValidationError(errors)
        password_hash = await anyio.to_thread.run_sync(hash_password, data.password)
        customer = Customer(
            username=data.username,
            email=email or "",
            password_hash=password_hash,
            first_name=data.first_name.strip(),
            last_name=data.last_name.strip(),
            phone_number=phone,
            is_staff=is_staff,
        )
        async with self.transaction(username=data.username, email=email) as session:
            session.add(customer)
            await session.flush()  # a lost race for the username or e-mail shows here, in a caller's transaction too
        await self.session.refresh(customer)  # a host may expire objects on commit
        return customer

    async def update_profile(self, customer_id: int, data: ProfileUpdate) -> Customer:
        """Change the fields sent; any invalid one changes nothing."""
        errors: dict[str, list[str]] = {}
        email = self._clean_email(data.email, errors) if data.email is not msgspec.UNSET else None
        async with self.transaction(email=email) as session:
            customer = await self.get(customer_id)
            if email and email != customer.email:
                if email.lower() != customer.email.lower():
                    await self._check_unique(errors, email=email)
                customer.email = email
                customer.email_verified_at = None  # the new address is not confirmed yet
            if data.phone_number is not msgspec.UNSET:
                phone = self._clean_phone(data.phone_number, errors)
                if "phone_number" not in errors:
                    customer.phone_number = phone
            if data.first_name is not msgspec.UNSET:
                customer.first_name = data.first_name.strip()
            if data.last_name is not msgspec.UNSET:
                customer.last_name = data.last_name.strip()
            if errors:
                raise FieldValidationError(errors)  # the unit rolls the changes back
            await session.flush()
        await self.session.refresh(customer)
        return customer

    @asynccontextmanager
    async def transaction(
        self, *, username: str | None = None, email: str | None = None
    ) -> AsyncIterator[AsyncSession]:
        """The unit's transaction, where losing a race for the unique `username` or `email` to a concurrent request
        answers the same 400 as the pre-check. Inside a caller's transaction the error goes to the caller, whose
        own block (this one, usually) answers it once everything is rolled back."""
        try:
            async with self.unit.transaction() as session:
                yield session
        except (IntegrityError, RepositoryIntegrityError) as exc:
            if self.session.in_transaction():
                raise
            errors: dict[str, list[str]] = {}
            await self._check_unique(errors, username=username, email=email)
            raise FieldValidationError(errors or {"non_field_errors": ["Conflicting data."]}) from exc

    def _clean_email(self, value: str, errors: dict[str, list[str]]) -> str | None:
        try:
            return normalize_email(value)
        except EmailNotValidError:
            errors.setdefault("email", []).append("Enter a valid email address.")
            return None

    def _clean_phone(self, value: str | None, errors: dict[str, list[str]]) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return normalize_phone(value, self.phone_region)
        except (phonenumbers.NumberParseException, ValueError):
            errors.setdefault("phone_number", []).append(
                "Enter a valid phone number, e.g. +254712345678 or 0712345678."
            )
            return None

    async def _check_unique(
        self, errors: dict[str, list[str]], *, username: str | None = None, email: str | None = None
    ) -> None:
        if username and await self.repository.exists(func.lower(Customer.username) == username.lower()):
            errors.setdefault("username", []).append("A user with that username already exists.")
        if email and await self.repository.exists(func.lower(Customer.email) == email.lower()):
            errors.setdefault("email", []).append("A user with that email already exists.")


def hash_token(raw: str) -> str:
    """Tokens are 256-bit random values, so one SHA-256 (no salt, no stretching) is enough to store them."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class TokenService:
    def __init__(self, unit: Unit) -> None:
        self.unit = unit

    async def issue(
        self,
        *,
        customer_id: int | None,
        scopes: Iterable[str],
        ttl: timedelta,
        client_id: str | None = None,
        raw_token: str | None = None,
    ) -> str:
        """Store a new token and return its raw value, which is never stored or shown again."""
        raw = raw_token or secrets.token_urlsafe(32)
        async with self.unit.transaction() as session:
            session.add(
                AccessToken(
                    token_hash=hash_token(raw),
                    customer_id=customer_id,
                    client_id=client_id,
                    scope=" ".join(sorted(set(scopes))),
                    expires_at=_now() + ttl,
                )
            )
        return raw

    async def revoke(self, raw: str) -> bool:
        async with self.unit.transaction() as session:
            token = await session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_token(raw)))
            if token is None or token.revoked_at is not None:
                return False
            token.revoked_at = _now()
            forget_when_committed(self.unit, [token.token_hash])
        return True

    async def resolve(self, raw: str) -> Principal | None:
        """The principal a live token stands for; None for unknown, expired or revoked tokens."""
        found = await self.resolve_with_expiry(raw)
        return found[0] if found else None

    async def resolve_with_expiry(self, raw: str) -> tuple[Principal, datetime] | None:
        """The principal of a live token and when the token expires."""
        return await _principal_with_expiry(self.unit.session, raw)


async def _principal_with_expiry(session: AsyncSession, raw: str) -> tuple[Principal, datetime] | None:
    row = (
        await session.execute(
            select(AccessToken, Customer)
            .outerjoin(Customer, Customer.id == AccessToken.customer_id)
            .where(AccessToken.token_hash == hash_token(raw))
        )
    ).first()
    if row is None:
        return None
    token, customer = row
    if token.revoked_at is not None or token.expires_at <= _now():
        return None
    scopes = frozenset(token.scope.split())
    if token.customer_id is None:
        return Principal(client_id=token.client_id, scopes=scopes), token.expires_at
    if customer is None or not customer.is_active:
        return None
    principal = Principal(
        user_id=customer.id,
        username=customer.username,
        scopes=scopes,
        is_staff=customer.is_staff,
        client_id=token.client_id,
        email_verified=customer.email_verified_at is not None,
    )
    return principal, token.expires_at


REVOCATIONS_REMEMBERED_SECONDS = 3600.0
"""How long a revocation is remembered in this process: far longer than a principal is ever cached (seconds)."""

_recently_revoked: TTLCache[str, float] = TTLCache(maxsize=math.inf, ttl=REVOCATIONS_REMEMBERED_SECONDS)
"""Token hashes revoked in this process, with when (monotonic): every resolver's cache must forget them at once.
Only age removes a record: one evicted for room could let a cached principal outlive its revocation."""


def forget_revoked(token_hash: str) -> None:
    """Make every resolver in this process drop its cached principal for `token_hash` at once."""
    _recently_revoked[token_hash] = time.monotonic()


def forget_when_committed(unit: Unit, token_hashes: Iterable[str]) -> None:
    """`forget_revoked` for each token once the unit's transaction has committed, never if it rolls back (before
    the commit, a resolver could cache again a principal that the commit is about to revoke)."""
    for token_hash in token_hashes:
        unit.after_commit(partial(forget_revoked, token_hash))


@dataclass(frozen=True, slots=True)
class _Resolved:
    principal: Principal
    cached_at: float
    until: float


def _resolved_until(_key: str, resolved: _Resolved, _now: float) -> float:
    return resolved.until


def make_token_resolver(session_maker: Callable[[], AsyncSession], *, cache_seconds: float = 5.0) -> TokenResolver:
    """A `TokenResolver` for `BearerTokenMiddleware`, reading identity's token table.

    A live token's principal is remembered for `cache_seconds` (never past the token's expiry), which
    spares a query on most authenticated requests; the 10,000 most recently used are kept. Revocation in this
    process takes effect at once; another replica's revocation or a deactivated account is honoured within
    `cache_seconds`.
    """
    cache: TLRUCache[str, _Resolved, float] = TLRUCache(maxsize=10_000, ttu=_resolved_until, timer=time.monotonic)

    async def resolve(raw: str) -> Principal | None:
        if len(raw) > 512:
            return None
        key = hash_token(raw)
        now = time.monotonic()
        hit = cache.get(key)
        if hit is not None:
            if _recently_revoked.get(key, -1.0) < hit.cached_at:
                return hit.principal
            cache.pop(key, None)
        async with session_maker() as session:
            found = await _principal_with_expiry(session, raw)
        if found is None:
            return None
        principal, expires_at = found
        if cache_seconds > 0:
            remaining = (expires_at - _now()).total_seconds()
            cache[key] = _Resolved(principal, cached_at=now, until=now + min(cache_seconds, remaining))
        return principal

    return resolve
