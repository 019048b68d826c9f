"""What other contexts may read about customers, without importing identity's models (decision 161).

Ordering needs a customer's contact for its events, usernames for its answers, and the customers a staff filter
names; each is one statement here, so the tables stay identity's to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, or_, select

from shop_identity.models import Customer
from shop_kernel import MAX_ROW_ID, Prepared

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("Contact", "contact_of", "customers_named", "usernames_by_id")

CUSTOMER = cast("Table", Customer.__table__)


class Contact(NamedTuple):
    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    phone_number: str | None


_CONTACT = Prepared(
    select(
        CUSTOMER.c.id,
        CUSTOMER.c.username,
        CUSTOMER.c.first_name,
        CUSTOMER.c.last_name,
        CUSTOMER.c.email,
        CUSTOMER.c.phone_number,
    ).where(CUSTOMER.c.id == bindparam("customer_id"))
)


def contact_of(connection: Connection, customer_id: int) -> Contact | None:
    """A customer's name, e-mail and phone, read in the caller's unit of work (a prebuilt statement)."""
    rows = _CONTACT.rows(connection, {"customer_id": customer_id})
    return Contact(*rows[0]) if rows else None


async def usernames_by_id(session: AsyncSession, customer_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    rows = await session.execute(select(CUSTOMER.c.id, CUSTOMER.c.username).where(CUSTOMER.c.id.in_(ids)))
    return dict(rows.tuples().all())


def customers_named(name: str) -> Select[Any]:
    """The ids of the customers `name` names: a username, or an id (digits may be either: a username may be all
    digits), as a subquery for the caller's filter."""
    named = CUSTOMER.c.username == name
    if name.isdigit() and int(name) <= MAX_ROW_ID:
        named = or_(named, CUSTOMER.c.id == int(name))
    return select(CUSTOMER.c.id).where(named)
