"""Staff view of customers: find one, see their account and order summary, switch an account off and on.

Identity does not know orders. What it shows of them comes through a port, `CustomerOrders`, that the host
app fills with the ordering context's public `customer_order_summary`; mounted without it, the detail has
no `orders` member.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import phonenumbers
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity.accounts import end_sessions
from shop_identity.models import AccountSecret, Customer
from shop_identity.schemas import CustomerProfile
from shop_identity.services import DEFAULT_REGION, forget_when_committed, normalize_phone
from shop_kernel import (
    ConflictError,
    NumberedPage,
    Principal,
    RowId,
    Unit,
    bearer_security,
    numbered_page,
    page_request,
    problems,
    require_scopes,
    require_staff,
)

__all__ = (
    "CustomerAccount",
    "CustomerAdminController",
    "CustomerDetail",
    "CustomerOrders",
    "LastOrder",
    "OrderSummary",
    "StaffCustomerService",
)


class LastOrder(msgspec.Struct, frozen=True):
    id: int
    order_number: str
    status: str
    total_amount: str
    created_at: datetime


class OrderSummary(msgspec.Struct, frozen=True):
    order_count: int
    last_order: LastOrder | None


CustomerOrders = Callable[[AsyncSession, int], Awaitable[OrderSummary]]
"""The port through which identity learns a customer's orders: (session, customer id) -> summary."""


class CustomerAccount(CustomerProfile):
    """A customer as staff see it: the profile, and whether the account is switched on."""

    is_active: bool


class CustomerDetail(CustomerAccount):
    orders: OrderSummary | msgspec.UnsetType = msgspec.UNSET
    """How many orders the customer placed and the newest one (absent when no ordering context is mounted)."""


def to_account(customer: Customer) -> CustomerAccount:
    return msgspec.convert(customer, CustomerAccount, from_attributes=True)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class StaffCustomerService:
    def __init__(self, unit: Unit, orders: CustomerOrders | None) -> None:
        self.unit = unit
        self.session = unit.session
        self.orders = orders

    async def search(self, text: str | None, *, offset: int, limit: int) -> tuple[list[Customer], int]:
        """Newest first; `text` is found anywhere in the username, e-mail or phone number (any notation)."""
        conditions = []
        if text and text.strip():
            pattern = _like(text.strip())
            matches: list[ColumnElement[bool]] = [
                func.lower(Customer.username).like(pattern, escape="\\"),
                func.lower(Customer.email).like(pattern, escape="\\"),
                func.lower(func.coalesce(Customer.phone_number, "")).like(pattern, escape="\\"),
            ]
            with contextlib.suppress(phonenumbers.NumberParseException, ValueError):  # not a phone number
                matches.append(Customer.phone_number == normalize_phone(text, DEFAULT_REGION))
            conditions.append(or_(*matches))
        total = await self.session.scalar(select(func.count()).select_from(Customer).where(*conditions)) or 0
        rows = await self.session.scalars(
            select(Customer).where(*conditions).order_by(Customer.id.desc()).offset(offset).limit(limit)
        )
        return list(rows), total

    async def detail(self, customer_id: int) -> CustomerDetail:
        customer = await self._get(customer_id)
        detail = msgspec.convert(customer, CustomerDetail, from_attributes=True)
        if self.orders is not None:
            detail.orders = await self.orders(self.session, customer_id)
        return detail

    async def set_active(self, customer_id: int, *, active: bool) -> CustomerDetail:
        """Deactivating signs the account out everywhere at once (tokens, refresh tokens, pending codes and
        secrets); reactivating lets the person sign in again with the password they had."""
        async with self.unit.transaction() as session:
            customer = await self._get(customer_id)
            if customer.is_active != active:
                now = datetime.now(UTC)
                customer.is_active = active
                if not active:
                    forget_when_committed(self.unit, await end_sessions(session, customer_id, now))
                    await session.execute(
                        update(AccountSecret)
                        .where(AccountSecret.customer_id == customer_id, AccountSecret.used_at.is_(None))
                        .values(used_at=now)
                    )
        return await self.detail(customer_id)

    async def _get(self, customer_id: int) -> Customer:
        customer = await self.session.get(Customer, customer_id)
        if customer is None:
            raise NotFoundException(detail=f"No customer with id {customer_id}.")
        return customer


async def provide_staff_customers(
    unit: NamedDependency[Unit], customer_orders: NamedDependency[Any] = None
) -> StaffCustomerService:
    return StaffCustomerService(unit, customer_orders)


class CustomerAdminController(Controller):
    path = "/api/customers"
    tags = ["Customers"]
    guards = [require_staff, require_scopes("read")]
    security = bearer_security("read")
    dependencies = {"staff_customers": provide_staff_customers}

    @get(
        "/",
        operation_id="listCustomers",
        summary="Find customers (staff)",
        description=(
            "Newest first, 20 a page (at most 100). `search` matches part of the username, the e-mail address or "
            "the phone number (in any notation). Shows whether each address is verified and each account active."
        ),
    )
    async def list_customers(
        self,
        request: Request[Any, Any, Any],
        staff_customers: NamedDependency[StaffCustomerService],
        search: Annotated[
            str | None, QueryParameter(max_length=254, description="Part of a username, e-mail or phone.")
        ] = None,
        page: Annotated[int | None, QueryParameter(ge=1)] = None,
        page_size: Annotated[int | None, QueryParameter(ge=1, description="Default 20, at most 100.")] = None,
    ) -> NumberedPage[CustomerAccount]:
        paging = page_request(page, page_size, default_size=20, max_size=100)
        rows, total = await staff_customers.search(search, offset=paging.offset, limit=paging.page_size)
        return numbered_page(request, [to_account(row) for row in rows], count=total, paging=paging)

    @get(
        "/{customer_id:int}/",
        operation_id="getCustomer",
        summary="A customer, with their order count and last order (staff)",
    )
    async def get_customer(
        self, staff_customers: NamedDependency[StaffCustomerService], customer_id: RowId
    ) -> CustomerDetail:
        return await staff_customers.detail(customer_id)

    @post(
        "/{customer_id:int}/deactivate/",
        operation_id="deactivateCustomer",
        summary="Switch an account off (staff)",
        description=(
            "The person can no longer sign in, and every token and refresh token of the account is revoked at once "
            "(in the other serving processes within 5 seconds, the lifetime of their token cache). Orders stay."
        ),
        status_code=200,
        guards=[require_scopes("write")],
        security=bearer_security("write"),
        responses=problems(409),
    )
    async def deactivate(
        self,
        staff_customers: NamedDependency[StaffCustomerService],
        principal: NamedDependency[Principal],
        customer_id: RowId,
    ) -> CustomerDetail:
        if principal.user_id == customer_id:
            raise ConflictError("You cannot deactivate your own account; ask another staff member.")
        return await staff_customers.set_active(customer_id, active=False)

    @post(
        "/{customer_id:int}/reactivate/",
        operation_id="reactivateCustomer",
        summary="Switch an account back on (staff)",
        description="The person signs in again with their password; tokens revoked at deactivation stay revoked.",
        status_code=200,
        guards=[require_scopes("write")],
        security=bearer_security("write"),
    )
    async def reactivate(
        self, staff_customers: NamedDependency[StaffCustomerService], customer_id: RowId
    ) -> CustomerDetail:
        return await staff_customers.set_active(customer_id, active=True)
