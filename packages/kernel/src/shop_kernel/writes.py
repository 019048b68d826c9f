"""One writer at a time on SQLite, inside a process.

SQLite has a single write lock. Many pooled connections contending for it wait in its busy handler,
which sleeps in growing steps, so a few unlucky transactions wait seconds (p99) while the lock is
free. Queuing the writers of this process on an asyncio lock instead hands the database over in
order. PostgreSQL locks rows, not the database, and needs none of this.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("serialized_writes",)

_locks: WeakKeyDictionary[Engine, asyncio.Lock] = WeakKeyDictionary()


@asynccontextmanager
async def serialized_writes(session: AsyncSession) -> AsyncIterator[None]:
    """Hold this process's SQLite write lock for the block (a no-op on other databases).

    Wrap the part of a unit of work from its first write to its commit or rollback.
    """
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _locks.get(engine)
    if lock is None:
        lock = _locks[engine] = asyncio.Lock()
    async with lock:
        yield
