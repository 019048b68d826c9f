"""The unit of work every write goes through: one object per request, handed to services by the `unit` dependency.

Two flavours, one API, both databases:

- **ORM** (`async with unit.transaction() as session:`): the request's `AsyncSession`. The block's changes are
  committed when it ends, rolled back if it raises. A block opened inside another joins it: only the outermost
  commits, so a service method that writes can be called alone or as part of a larger write.
- **Core** (`await unit.run(work)`): `work(connection)` is a plain function run by `run_unit_of_work` (the SQLite
  writer thread, or `run_sync` on PostgreSQL), for hot paths whose statements are built once.

Either way, `unit.stage(topic, key, payload)` writes an outbox event into the transaction (delivered only if it
commits), and `unit.after_commit(hook)` runs `hook()` once the transaction has committed, never if it rolled back:
cache invalidations live there, so no reader can refill a cache with the old rows between the invalidation and the
commit. A hook may be async (telling the other processes, `ResponseCache.changed`): the block's end awaits it, so
the write's answer is sent only once its invalidations are out. Nothing outside this module commits a session
(`tests/standalone/test_public_api.py` checks it).
"""

from __future__ import annotations

import inspect
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio
import msgspec
from litestar.di import NamedDependency
from litestar.exceptions import ImproperlyConfiguredException
from sqlalchemy.ext.asyncio import AsyncSession  # at runtime: Litestar reads `provide_unit`'s signature

from shop_kernel.context import current_request_id
from shop_kernel.outbox import OutboxMessage, add_to_outbox
from shop_kernel.writes import run_one_statement_units, run_unit_of_work

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ("UNIT_KEY", "Unit", "provide_unit")

T = TypeVar("T")
UNIT_KEY = "unit"
"""The dependency name of the request's `Unit`."""

_log = logging.getLogger("shop.units")


class Unit:
    """One request's writes: an ORM transaction over its session, or Core units of work on its engine."""

    __slots__ = ("_depth", "_hooks", "_running", "_session")

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._depth = 0
        self._running = False
        """A Core unit (`run`) is under way: hooks its work registers wait for its commit."""
        self._hooks: list[Callable[[], object]] = []

    @property
    def session(self) -> AsyncSession:
        """For reads. Writes belong inside `transaction()`."""
        return self._session

    @property
    def engine(self) -> AsyncEngine:
        return self._session.bind  # type: ignore[return-value]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The session, committed when the outermost block ends and rolled back (hooks dropped) if it raises."""
        self._depth += 1
        try:
            yield self._session
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._hooks.clear()
                await self._end(commit=False)
            raise
        self._depth -= 1
        if self._depth == 0:
            try:
                await self._end(commit=True)
            except BaseException:
                self._hooks.clear()
                await self._end(commit=False)
                raise
            await self._run_hooks()

    async def _end(self, *, commit: bool) -> None:
        """Commit or roll back, shielded: a request cancelled meanwhile (a client gone, a shutdown) must not leave
        the transaction half-ended, and a rollback after a cancellation must still run."""
        with anyio.CancelScope(shield=True):
            await (self._session.commit() if commit else self._session.rollback())

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` in a Core transaction of its own (`run_unit_of_work`); the hooks `work` registers
        run once it commits."""
        return await self._core(run_unit_of_work, work)

    async def _core(
        self, runner: Callable[[AsyncEngine, Callable[[Connection], T]], Awaitable[T]], work: Callable[[Connection], T]
    ) -> T:
        if self._depth or self._running:
            raise RuntimeError("a Core unit of work cannot join an open transaction")
        self._running = True
        try:
            result = await runner(self.engine, work)
        except BaseException:
            self._hooks.clear()
            raise
        finally:
            self._running = False
        await self._run_hooks()
        return result

    async def run_one_statement(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` outside a transaction, each statement committing as it ends (PostgreSQL only:
        `run_one_statement_units`, decision 160); the hooks `work` registers run once it has returned."""
        return await self._core(run_one_statement_units, work)

    def stage(self, topic: str, key: str, payload: msgspec.Struct, connection: Connection | None = None) -> None:
        """An outbox event in the open transaction: the ORM one, or the Core unit's `connection`."""
        if connection is not None:
            add_to_outbox(connection, topic, key, payload)
            return
        if not self._depth:
            raise RuntimeError("stage() needs an open transaction()")
        self._session.add(
            OutboxMessage(topic=topic, key=key, payload=msgspec.to_builtins(payload), request_id=current_request_id())
        )

    def after_commit(self, hook: Callable[[], object]) -> None:
        """Run `hook()` after the current transaction commits (at once if none is open); never after a rollback.

        An async hook (one whose call returns an awaitable) is awaited when the transaction ends; it needs an open
        transaction, since nothing would await it otherwise."""
        if self._depth or self._running:
            self._hooks.append(hook)
            return
        result = hook()
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise RuntimeError("an async after_commit hook needs an open transaction()")

    async def _run_hooks(self) -> None:
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # the write is committed; a failed hook must not turn its answer into an error
                _log.exception("An after-commit hook failed")


async def provide_unit(db_session: NamedDependency[AsyncSession | None] = None) -> Unit:
    """The `unit` dependency: the request's unit of work over the host app's `db_session`. Optional for Litestar,
    so an app without SQLAlchemy (the kernel mounted alone) still starts; a handler there that asks for a unit
    gets a clear error."""
    if db_session is None:
        raise ImproperlyConfiguredException("A unit of work needs the host app's SQLAlchemy plugin ('db_session').")
    return Unit(db_session)
