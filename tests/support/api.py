"""Test helpers that act on the running app: create callers with tokens, run code on the app's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import msgspec
from advanced_alchemy.base import metadata_registry
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog import CatalogPlugin
from shop_identity import CustomerService, IdentityPlugin, TokenService
from shop_identity.controllers import to_profile
from shop_kernel import Unit, response_cache_of
from tests.factories import RegisterCustomerFactory

T = TypeVar("T")

# every sequence a table owns (serial and identity columns), back to 1 in place: cheaper than TRUNCATE's new files
OWNED_SEQUENCES_RESTART = """
SELECT setval(sequence.oid, 1, false)
FROM pg_class AS sequence
JOIN pg_depend AS owner ON owner.objid = sequence.oid AND owner.classid = 'pg_class'::regclass
  AND owner.deptype IN ('a', 'i')
WHERE sequence.relkind = 'S'
"""


@dataclass
class Caller:
    """A registered person with a bearer token."""

    id: int
    username: str
    token: str
    password: str
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, client: TestClient[Litestar]) -> None:
        self.client = client
        self.alchemy: SQLAlchemyAsyncConfig = client.app.state.alchemy

    def run(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `fn` with a fresh session on the app's event loop (where its engine lives)."""

        async def call() -> T:
            async with self.alchemy.create_session_maker()() as session:
                return await fn(session)

        portal = self.client.blocking_portal
        return portal.call(call)

    def scalars(self, statement: Select[tuple[T]]) -> list[T]:
        """The values of a one-column SELECT, read in a fresh session."""

        async def read(session: AsyncSession) -> list[T]:
            return list(await session.scalars(statement))

        return self.run(read)

    def at_once(
        self, method: str, path: str, requests: Iterable[dict[str, Any]], *, base_url: str = "http://testserver.local"
    ) -> list[httpx.Response]:
        """Send one request per item of `requests` (httpx keyword arguments: `json`, `data`, `headers`) at the same
        moment, on the app's own event loop: they interleave at every await, as concurrent clients' do."""

        async def send() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=self.client.app)
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
                return await asyncio.gather(*(http.request(method, path, **request) for request in requests))

        return self.client.blocking_portal.call(send)

    def empty_database(self) -> None:
        tables = [table.name for table in metadata_registry.get(None).sorted_tables]

        async def empty(session: AsyncSession) -> None:
            if session.bind.dialect.name == "postgresql":
                # a connection leaked "idle in transaction" fails the test at once instead of hanging the suite
                await session.execute(text("SET LOCAL lock_timeout = '3s'"))
                # TRUNCATE gives each table new files: only the tables a test wrote to (a tenth of the cost of all)
                holding = " UNION ALL ".join(f"SELECT '{table}' WHERE EXISTS (SELECT FROM {table})" for table in tables)  # noqa: S608 - our own table names
                if written := list((await session.execute(text(holding))).scalars()):
                    await session.execute(text(f"TRUNCATE {', '.join(written)} CASCADE"))
                # and every table's ids start at 1 again, as RESTART IDENTITY did (inserts rolled back use ids too)
                await session.execute(text(OWNED_SEQUENCES_RESTART))
            else:
                for table in reversed(tables):
                    await session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
            await session.commit()

        self.run(empty)
        # the catalog's in-memory snapshot and the cached answers would otherwise outlive the rows they describe
        self.client.app.plugins.get(CatalogPlugin).cache.invalidate()
        response_cache_of(self.client.app).clear()
        # so would failed sign-ins and reset requests counted against the test client's address and accounts
        app = self.client.app
        self.run(lambda _session: app.plugins.get(IdentityPlugin).throttle.clear())

    def issue_token(
        self,
        customer_id: int | None,
        scopes: Iterable[str] = ("read", "write"),
        *,
        ttl: timedelta = timedelta(hours=1),
        client_id: str | None = None,
    ) -> str:
        async def issue(session: AsyncSession) -> str:
            return await TokenService(Unit(session)).issue(
                customer_id=customer_id, scopes=scopes, ttl=ttl, client_id=client_id
            )

        return self.run(issue)

    def customer(self, scopes: Iterable[str] = ("read", "write"), **fields: Any) -> Caller:
        """Register a customer through the app's service and give it a token. Not over HTTP: the endpoint also
        e-mails a verification link, a message every test that counts messages would have to step over
        (tests/identity/test_accounts.py covers it)."""
        payload = RegisterCustomerFactory.build(**fields)

        async def register(session: AsyncSession) -> dict[str, Any]:
            profile = to_profile(await CustomerService(Unit(session)).register(payload))
            return dict(msgspec.json.decode(msgspec.json.encode(profile)))

        body = self.run(register)
        return Caller(
            id=body["id"],
            username=body["username"],
            token=self.issue_token(body["id"], scopes),
            password=payload.password,
            profile=body,
        )

    def staff(self, scopes: Iterable[str] = ("read", "write"), **fields: Any) -> Caller:
        payload = RegisterCustomerFactory.build(**fields)

        async def register(session: AsyncSession) -> int:
            return (await CustomerService(Unit(session)).register(payload, is_staff=True)).id

        staff_id = self.run(register)
        return Caller(
            id=staff_id, username=payload.username, token=self.issue_token(staff_id, scopes), password=payload.password
        )
