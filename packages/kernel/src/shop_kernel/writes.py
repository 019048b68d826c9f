"""Units of work written once as synchronous SQLAlchemy Core, run the best way for each database.

A hot write path (placing an order) is a handful of statements that must commit together. Awaited one
by one through an async driver, each statement costs an event-loop round trip, and on SQLite every
pooled connection holding the single write lock across those round trips makes the others sleep in
SQLite's busy handler (seconds of p99 under load).

`run_unit_of_work(engine, work)` takes `work(connection)`, a plain function, and runs it in one
transaction:

- SQLite (a database file): in this process's single writer thread, on its own connection, opened
  with `BEGIN IMMEDIATE`. The whole transaction is one hand-off from the event loop; writers of this
  process queue in order, the writer threads of all processes take turns on a file lock (decision 216),
  and the work runs without greenlet or event-loop overhead.
- anything else (PostgreSQL): `AsyncConnection.run_sync` on a pooled async connection; each statement
  still awaits the driver, and PostgreSQL's row locks let transactions run side by side.

`work` may raise: the transaction is rolled back and the exception reaches the caller unchanged.

`Prepared` runs a hot unit's statements on SQLite straight on the sqlite3 connection of the writer thread:
SQLAlchemy's execution machinery cost several times the database work of placing an order, all of it
while holding the write lock.

`UnitBatcher` groups small units of work that many tasks submit at once (the notification worker's
claims and outcomes) into one transaction: each unit submitted while a transaction runs joins the next.
On SQLite every transaction waits its turn for the one write lock, so ten units in one transaction
cost one wait and one commit instead of ten.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from sqlalchemy.engine.interfaces import Dialect
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.sql.expression import Delete, Insert, Select, Update

__all__ = ("Prepared", "UnitBatcher", "close_unit_of_work_runner", "run_one_statement_units", "run_unit_of_work")

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 15_000


class _SqliteWriter:
    """One thread and one connection that run every unit of work of this process, one after another.

    The writer threads of every process on the database (the serving processes and the worker) also take turns
    on an exclusive `flock` of a file beside it (`<database>-writer.lock`, decision 216) before `BEGIN
    IMMEDIATE`. A waiting thread sleeps in the kernel and wakes the moment the holder commits, where polling
    SQLite's lock left it free while the waiter slept (up to 2 ms a turn, several turns an order under load).
    The kernel drops the lock of a process that dies. Writes that do not come through here (the ORM session's)
    still meet SQLite's own lock, as before. Without a usable lock file, SQLite's lock is the only one.
    The wait for a turn has no deadline of its own (`flock` has none): a holder's turn is bounded by its
    transaction, whose `BEGIN IMMEDIATE` gives up after `SQLITE_BUSY_TIMEOUT_MS`; only a process stopped mid-turn
    (SIGSTOP, a debugger) keeps the others waiting until it runs again or dies.
    """

    def __init__(self, async_engine: AsyncEngine) -> None:
        url = async_engine.url.set(drivername="sqlite+pysqlite")
        self.engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False, "isolation_level": None}
        )
        event.listen(self.engine, "connect", _configure_connection)
        event.listen(self.engine, "begin", _begin_immediate)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._turns = _open_turns(url.database)

    async def run(self, work: Callable[[Connection], T]) -> T:
        # The caller's context variables (the request id) go with the work, as they would in the event loop.
        context = contextvars.copy_context()
        return await asyncio.wrap_future(self.executor.submit(context.run, self._in_transaction, work))

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        with self._turn(), self.engine.begin() as connection:
            return work(connection)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn at writing, held for one transaction (nothing to take without a turn file)."""
        if self._turns is None:
            yield
            return
        fcntl.flock(self._turns, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._turns, fcntl.LOCK_UN)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.engine.dispose()
        if self._turns is not None:
            os.close(self._turns)
            self._turns = None


def _open_turns(database: str | None) -> int | None:
    """The descriptor of the writers' turn file beside `database`; None where there is none to be had."""
    if fcntl is None or not database or database.startswith("file:"):  # pragma: no cover - no flock on Windows
        return None
    try:
        return os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:  # a read-only directory: SQLite's lock alone still keeps writes one at a time
        return None


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


async def run_one_statement_units(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """Run `work(connection)` outside a transaction (PostgreSQL's autocommit): each statement it runs commits as it
    ends, or fails whole. For work whose writes are one statement (reads before it are fine): the database then
    holds that statement's row locks only while it runs, instead of until a COMMIT this process sends after the
    statement's answer has come back through its event loop (decision 160). Not on SQLite, whose writes go through
    the writer thread (`run_unit_of_work`)."""
    if engine.dialect.name == "sqlite":
        raise ValueError("run_one_statement_units is for PostgreSQL; SQLite writes go through run_unit_of_work")
    return await asyncio.shield(_outside_transaction(engine, work))


async def _outside_transaction(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return await autocommit.run_sync(work)


def close_unit_of_work_runner(engine: AsyncEngine) -> None:
    """Stop the SQLite writer thread of `engine`, if it has one (at application shutdown)."""
    with _writers_lock:
        writer = _writers.pop(engine.sync_engine, None)
    if writer is not None:
        writer.close()


class UnitBatcher:
    """Runs units of work submitted close together in one transaction (group commit).

    `await batcher.run(work)` answers what `run_unit_of_work(engine, work)` would: `work`'s result, or its
    exception. If a transaction of several units fails, each unit is run again alone in its own (the failed
    one was rolled back whole), so one unit's failure never becomes another's. Units must not depend on
    being alone in their transaction. A caller cancelled while waiting leaves its unit to run.
    """

    def __init__(self, engine: AsyncEngine, max_units: int = 100) -> None:
        self.engine = engine
        self.max_units = max_units
        self._waiting: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[Connection], T]) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, done))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run_waiting(), name="unit-batcher")
        return await asyncio.shield(done)

    async def _run_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_units], self._waiting[self.max_units :]
                try:
                    results = await run_unit_of_work(self.engine, partial(_run_each, works=[w for w, _ in batch]))
                except Exception as error:
                    if len(batch) == 1:
                        _settle(batch[0][1], error=error)
                        continue
                    for work, done in batch:
                        try:
                            _settle(done, result=await run_unit_of_work(self.engine, work))
                        except Exception as alone:
                            _settle(done, error=alone)
                    continue
                for (_work, done), result in zip(batch, results, strict=True):
                    _settle(done, result=result)
        finally:
            self._runner = None


def _run_each(connection: Connection, works: list[Callable[[Connection], Any]]) -> list[Any]:
    return [work(connection) for work in works]


def _settle(done: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if done.done():  # pragma: no cover - only the batcher settles its futures
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


class Prepared:
    """A Core statement compiled once per driver, then run with bound parameters; rows come back as plain tuples.

    With the column types' bind and result processing applied (a `Decimal` price in, a `Decimal` out) but none of
    SQLAlchemy's per-execution work (its cache key, execution context, cursor and result objects), it runs:

    - in the SQLite writer thread (`pysqlite`), straight on the sqlite3 connection: SQLAlchemy's execution cost
      five times the database work of placing an order while the write lock was held (decision 124);
    - on asyncpg (inside `run_unit_of_work`'s `run_sync`), on the connection's asyncpg prepared statement, from
      the same statement cache SQLAlchemy's asyncpg cursor uses, the transaction begun as that cursor would:
      SQLAlchemy's execution was a third of an order's CPU on PostgreSQL (decision 27). Errors are SQLAlchemy's
      (an `IntegrityError` with the driver's error as `orig`), a lost connection invalidated as it would be.
    - on any other driver, through `Connection.execute`.

    `before_cursor_execute` listeners still see each statement. `column_keys`: the columns an INSERT sets (the
    others keep their server defaults), as for `Insert.compile(column_keys=...)`.
    """

    def __init__(
        self, statement: Insert | Update | Delete | Select[Any], column_keys: Sequence[str] | None = None
    ) -> None:
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._plans: dict[str, _Plan] = {}

    def rows(self, connection: Connection, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        dialect = connection.dialect
        if dialect.driver not in _DIRECT_DRIVERS:
            result = connection.execute(self.statement, dict(parameters))
            return [tuple(row) for row in result] if result.returns_rows else []
        plan = self._plans.get(dialect.driver) or self._compile(dialect)
        values = tuple(
            parameters.get(name, default) if process is None else process(parameters.get(name, default))
            for name, default, process in plan.binds
        )
        if connection.dispatch.before_cursor_execute:
            for listener in connection.dispatch.before_cursor_execute:
                listener(connection, None, plan.sql, values, None, False)
        if dialect.driver == "asyncpg":
            fetched = _asyncpg_fetch(connection, plan.sql, values)
        else:
            fetched = connection.connection.driver_connection.execute(plan.sql, values).fetchall()  # type: ignore[union-attr]
        if not plan.results:
            return [tuple(row) for row in fetched]
        return [
            tuple(
                value if process is None else process(value) for value, process in zip(row, plan.results, strict=True)
            )
            for row in fetched
        ]

    def _compile(self, dialect: Dialect) -> _Plan:
        # The processors SQLAlchemy itself applies for this dialect (a type's own `bind_processor` is its generic
        # one: a timestamp would reach SQLite as sqlite3's default text, not the format every other write uses).
        compiled = self.statement.compile(dialect=dialect, column_keys=self.column_keys)
        binds: list[tuple[str, Any, Any]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            binds.append((name, bind.value, bind.type._cached_bind_processor(dialect)))
        results = [_result_processor(column.type, dialect) for column in self.statement.exported_columns]
        plan = self._plans[dialect.driver] = _Plan(compiled.string, binds, results if any(results) else [])
        return plan


_DIRECT_DRIVERS = frozenset({"pysqlite", "asyncpg"})


def _result_processor(type_: Any, dialect: Dialect) -> Any:
    try:
        return type_._cached_result_processor(dialect, None)
    except TypeError:  # asyncpg's numeric processor wants the column's type oid: asyncpg returns Decimal itself
        return None


def _asyncpg_fetch(connection: Connection, sql: str, values: tuple[Any, ...]) -> list[Any]:
    """`sql` on the asyncpg connection under `connection` (in `run_sync`'s greenlet), as SQLAlchemy's asyncpg
    cursor runs it (sqlalchemy/dialects/postgresql/asyncpg.py, `_prepare_and_execute`) without its result
    machinery: the transaction begun first, the prepared statement from the adapter's cache."""
    adapted: Any = connection.connection.dbapi_connection
    invalidated_at = getattr(connection.dialect, "_invalidate_schema_cache_asof", 0)

    async def fetch() -> list[Any]:
        async with adapted._execute_mutex:
            if not adapted._started:
                await adapted._start_transaction()
            try:
                prepared, _attributes = await adapted._prepare(sql, invalidated_at)
                return await prepared.fetch(*values)  # type: ignore[no-any-return]
            except Exception as error:
                adapted._handle_exception(error)  # raises the DBAPI error SQLAlchemy expects
                raise  # pragma: no cover - `_handle_exception` always raises

    try:
        return adapted.await_(fetch())  # type: ignore[no-any-return]
    except adapted.dbapi.Error as error:
        # SQLAlchemy's own handling: wrapped as `sqlalchemy.exc.IntegrityError` & co., a lost connection invalidated
        connection._handle_dbapi_exception(error, sql, values, None, None)
        raise  # pragma: no cover - `_handle_dbapi_exception` always raises


class _Plan:
    __slots__ = ("binds", "results", "sql")

    def __init__(
        self,
        sql: str,
        binds: list[tuple[str, Any, Any]],
        results: list[Any],
    ) -> None:
        self.sql = sql
        self.binds = binds
        self.results = results
