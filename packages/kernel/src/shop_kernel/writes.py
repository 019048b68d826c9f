"""Units of work written once as synchronous SQLAlchemy Core, run the best way for each database.

A hot write path (placing an order) is a handful of statements that must commit together. Awaited one
by one through an async driver, each statement costs an event-loop round trip, and on SQLite every
pooled connection holding the single write lock across those round trips makes the others sleep in
SQLite's busy handler (seconds of p99 under load).

`run_unit_of_work(engine, work)` takes `work(connection)`, a plain function, and runs it in one
transaction:

- SQLite (a database file): in this process's single writer thread, on its own connection, opened
  with `BEGIN IMMEDIATE`. The whole transaction is one hand-off from the event loop; writers of this
  process queue in order instead of polling for the lock, and the work runs without greenlet or
  event-loop overhead.
- anything else (PostgreSQL): `AsyncConnection.run_sync` on a pooled async connection; each statement
  still awaits the driver, and PostgreSQL's row locks let transactions run side by side.

`work` may raise: the transaction is rolled back and the exception reaches the caller unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ("close_unit_of_work_runner", "run_unit_of_work")

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 15_000


class _SqliteWriter:
    """One thread and one connection that run every unit of work of this process, one after another."""

    def __init__(self, async_engine: AsyncEngine) -> None:
        url = async_engine.url.set(drivername="sqlite+pysqlite")
        self.engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False, "isolation_level": None}
        )
        event.listen(self.engine, "connect", _configure_connection)
        event.listen(self.engine, "begin", _begin_immediate)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def run(self, work: Callable[[Connection], T]) -> T:
        # The caller's context variables (the request id) go with the work, as they would in the event loop.
        context = contextvars.copy_context()
        return await asyncio.wrap_future(self.executor.submit(context.run, self._in_transaction, work))

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return work(connection)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.engine.dispose()


def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
    # isolation_level=None: the driver issues no BEGIN of its own; `_begin_immediate` does, and it is the one
    # statement that waits for the write lock, so SQLite's own busy handler is off (see `_begin_immediate`).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    """Take the write lock when the transaction starts, so a transaction that reads and then writes cannot
    fail to upgrade its lock after another process committed in between.

    While another process (a separate worker) holds the lock, retry every 0.2 to 2 ms. SQLite's busy handler
    would sleep 25 to 100 ms between attempts once the wait passes a few milliseconds: a lock released after
    3 ms then costs this transaction, and every request queued behind it in this thread, up to 100 ms.
    With WAL, a transaction that holds the write lock from BEGIN IMMEDIATE waits for nothing else.
    """
    driver_connection = connection.connection.driver_connection
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.0002
    while True:
        try:
            driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.002)


_writers: weakref.WeakKeyDictionary[Engine, _SqliteWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def _writer_for(engine: AsyncEngine) -> _SqliteWriter | None:
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    key = engine.sync_engine
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None:
            # Closed by `close_unit_of_work_runner` at application shutdown, never from a garbage-collection
            # callback: joining a thread and disposing an engine there runs at arbitrary points of other code.
            writer = _writers[key] = _SqliteWriter(engine)
    return writer


async def run_unit_of_work(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """Run `work(connection)` in one transaction: committed if it returns, rolled back if it raises."""
    writer = _writer_for(engine)
    if writer is not None:
        return await writer.run(work)
    # Shielded like the writer thread, which finishes a unit it has started: a caller cancelled mid-unit
    # (client gone, worker stopping) must not leave the connection "idle in transaction" holding its locks.
    return await asyncio.shield(_on_async_connection(engine, work))


async def _on_async_connection(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    async with engine.begin() as connection:
        return await connection.run_sync(work)


def close_unit_of_work_runner(engine: AsyncEngine) -> None:
    """Stop the SQLite writer thread of `engine`, if it has one (at application shutdown)."""
    with _writers_lock:
        writer = _writers.pop(engine.sync_engine, None)
    if writer is not None:
        writer.close()
