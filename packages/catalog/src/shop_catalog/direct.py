"""Prebuilt catalog SELECTs run straight on the database driver (decision 145).

A product page nobody asked before is a few indexed SELECTs that SQLite answers in about 0.1 ms. Through an
ORM session and aiosqlite the same read cost 2 ms of CPU: a pooled connection checked out and reset, the
statement's cache key, the result machinery, and four hops to aiosqlite's thread and back for `execute`,
`fetchall` and `close` (measured in-process: 0.59 ms for the raw aiosqlite calls alone, 0.25 ms for the
session's connection, 0.10 ms for the read). So the statements of the hot reads are built once per shape
(`shop_catalog.listing`), compiled once per dialect here, and run:

- **SQLite:** on a connection of the serving thread's own (`PRAGMA query_only`), synchronously. WAL readers
  take no lock a writer holds, so the read never waits on one; a read that uses more than
  `INLINE_BUDGET_SECONDS` of this thread's CPU time (a big catalog's wide filter), or ten times that in wall time,
  is interrupted by SQLite's progress handler and run again through the session, off the event loop, so no
  request stalls the others for longer than that.
  Any other SQLite error (`database is locked` while a checkpoint resets the WAL) also goes to the session.
- **PostgreSQL (asyncpg):** by asyncpg's own prepared-statement cache, on a pooled connection taken for the one
  statement and handed back as soon as it answers, or, inside a transaction of the session, on the session's
  connection. A connection whose read failed is invalidated, since SQLAlchemy does not see the failure.
- **Anything else, or inside a transaction of the session** (it may hold writes another connection cannot
  see): through the session, as before.

Values are converted by SQLAlchemy's own bind and result processors for the dialect, so each path returns
the same Python values (`Decimal` prices, aware datetimes) for the same rows.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.util import greenlet_spawn

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.pool import PoolProxiedConnection

__all__ = ("INLINE_BUDGET_SECONDS", "DirectReads")

INLINE_BUDGET_SECONDS = 0.002
"""How much CPU time a SQLite read may take on the event loop before it is moved off it (and run again)."""
_WALL_FACTOR = 10
"""A read waiting for the disk or the GIL is moved off the loop after this many budgets of wall time."""
_PROGRESS_STEPS = 2000
"""SQLite virtual-machine steps between two looks at the clock (a few microseconds of work)."""
_EXPANDING = re.compile(r"\(__\[POSTCOMPILE_(\w+)\]\)")


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """Bind names in the order of the placeholders."""
    binds: dict[str, Callable[[Any], Any] | None]
    constants: dict[str, Any]
    """Values the statement carries itself (a literal in a function call), for names the caller does not give."""
    results: tuple[Callable[[Any], Any] | None, ...]
    expanding: frozenset[str]


def _utc_from_text(value: str | None) -> datetime | None:
    """SQLite's stored text of a `DateTimeUTC` (UTC, written without an offset), as the aware datetime SQLAlchemy
    and the type return, parsed in one C call: their processor and the type's `replace(tzinfo=...)` cost seven
    times as much, and a page has two per row."""
    if value is None:
        return None
    if "+" in value[19:] or "-" in value[19:]:  # an offset after all: honour it
        return datetime.fromisoformat(value).astimezone(UTC)
    return datetime.fromisoformat(value + "+00:00")


def _result_processor(column: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(column.type, DateTimeUTC):
        return _utc_from_text
    try:
        processor: Callable[[Any], Any] | None = column.type._cached_result_processor(dialect, None)
    except TypeError:  # asyncpg's numeric processor wants the column's type oid: asyncpg returns Decimal itself
        return None
    return processor


def _compile(statement: Select[Any], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    return _Compiled(
        sql=compiled.string,
        names=names,
        binds={name: bind.type._cached_bind_processor(dialect) for name, bind in compiled.binds.items()},
        constants={name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required},
        results=tuple(_result_processor(column, dialect) for column in statement.selected_columns),
        expanding=frozenset(name for name, bind in compiled.binds.items() if bind.expanding),
    )


class DirectReads:
    """Runs the catalog's prebuilt SELECTs by the shortest path its database allows; rows come back as tuples
    in the statement's column order."""

    observers: ClassVar[list[Callable[[str], None]]] = []
    """Called with the SQL of every statement any instance runs outside a session (tests count statements)."""

    def __init__(
        self, *, inline_budget_seconds: float = INLINE_BUDGET_SECONDS, progress_steps: int = _PROGRESS_STEPS
    ) -> None:
        self.inline_budget = inline_budget_seconds
        self.progress_steps = progress_steps
        self._compiled: dict[tuple[int, str], tuple[Select[Any], _Compiled]] = {}
        self._expanded: dict[tuple[str, tuple[int, ...]], str] = {}
        self._local = threading.local()

    async def all(self, session: AsyncSession, statement: Select[Any], values: dict[str, Any]) -> list[tuple[Any, ...]]:
        bind = session.get_bind()
        dialect = bind.dialect
        # outside a transaction only: one could hold writes of this session that another connection cannot see
        if dialect.name == "sqlite" and not session.in_transaction():
            connection = self._sqlite(bind.engine.url.database)
            if connection is not None:
                rows = self._sqlite_rows(connection, statement, dialect, values)
                if rows is not None:
                    return rows
        elif dialect.driver == "asyncpg":
            return await self._asyncpg_rows(session, statement, dialect, values)
        return [tuple(row) for row in await session.execute(statement, values)]

    async def scalar(self, session: AsyncSession, statement: Select[Any], values: dict[str, Any]) -> Any:
        rows = await self.all(session, statement, values)
        return rows[0][0] if rows else None

    def _compiled_for(self, statement: Select[Any], dialect: Dialect) -> _Compiled:
        key = (id(statement), dialect.name)
        found = self._compiled.get(key)
        if found is None or found[0] is not statement:
            found = (statement, _compile(statement, dialect))  # the statement is kept, so its id stays its own
            self._compiled[key] = found
        return found[1]

    def _notify(self, sql: str) -> None:
        for observer in self.observers:
            observer(sql)

    # ---- SQLite ------------------------------------------------------------------------------------

    def _sqlite(self, path: str | None) -> sqlite3.Connection | None:
        """This thread's connection to the database file (None for an in-memory database)."""
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        connections: dict[str, sqlite3.Connection] = self._local.__dict__.setdefault("connections", {})
        connection = connections.get(path)
        if connection is None:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
            connection.execute("PRAGMA query_only = ON")
            connection.execute("PRAGMA busy_timeout = 0")
            connections[path] = connection
        return connection

    def _sqlite_rows(
        self, connection: sqlite3.Connection, statement: Select[Any], dialect: Dialect, values: dict[str, Any]
    ) -> list[tuple[Any, ...]] | None:
        compiled = self._compiled_for(statement, dialect)
        sql, params = self._qmark(compiled, values)
        # By this thread's CPU time (decision 194): sqlite3 lets go of the GIL while the read runs, and each look at
        # the clock must take it back, so while another thread held it (the SQLite writer placing an order,
        # aiosqlite) the wall clock ran on and cut off reads that had used 0.1 ms, to run them again the slow way.
        # The wall clock still bounds a read stalled on the disk, at `_WALL_FACTOR` times the budget.
        cpu_deadline = time.thread_time() + self.inline_budget
        wall_deadline = time.perf_counter() + self.inline_budget * _WALL_FACTOR

        def over_budget() -> int:
            return 1 if time.thread_time() > cpu_deadline or time.perf_counter() > wall_deadline else 0

        connection.set_progress_handler(over_budget, self.progress_steps)
        try:
            raw = connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # interrupted (over budget), or busy: the session's way, off the loop
            return None
        finally:
            connection.set_progress_handler(None, 0)
        self._notify(sql)
        return _processed(raw, compiled.results)

    def _qmark(self, compiled: _Compiled, values: dict[str, Any]) -> tuple[str, list[Any]]:
        params: list[Any] = []
        sizes: list[int] = []
        for name in compiled.names:
            value = values[name] if name in values else compiled.constants[name]
            process = compiled.binds[name]
            if name in compiled.expanding:
                items = list(value)
                sizes.append(len(items))
                params.extend(process(item) if process else item for item in items)
            else:
                params.append(process(value) if process else value)
        if not compiled.expanding:
            return compiled.sql, params
        key = (compiled.sql, tuple(sizes))
        sql = self._expanded.get(key)
        if sql is None:
            counts = iter(sizes)
            # an empty list matches nothing, as SQLAlchemy renders it
            sql = _EXPANDING.sub(lambda _m: "(" + (", ".join("?" * next(counts)) or "NULL") + ")", compiled.sql)
            if len(self._expanded) > 4096:
                self._expanded.clear()
            self._expanded[key] = sql
        return sql, params

    # ---- PostgreSQL --------------------------------------------------------------------------------

    async def _asyncpg_rows(
        self, session: AsyncSession, statement: Select[Any], dialect: Dialect, values: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        compiled = self._compiled_for(statement, dialect)
        args = []
        for name in compiled.names:
            value = values[name] if name in values else compiled.constants[name]
            process = compiled.binds[name]
            args.append(process(value) if process else value)
        if session.in_transaction():  # the session's own connection: its transaction may hold writes
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            records = await self._asyncpg_fetch(raw, compiled.sql, args)
        else:  # a pooled connection for this one statement, handed back as soon as it answers (decision 159)
            raw = await greenlet_spawn(session.get_bind().engine.raw_connection)
            try:
                records = await self._asyncpg_fetch(raw, compiled.sql, args)
            finally:
                await greenlet_spawn(raw.close)
        self._notify(compiled.sql)
        return _processed(records, compiled.results)

    @staticmethod
    async def _asyncpg_fetch(raw: PoolProxiedConnection, sql: str, args: list[Any]) -> Sequence[Sequence[Any]]:
        driver: Any = raw.driver_connection
        try:
            records: Sequence[Sequence[Any]] = await driver.fetch(sql, *args)
        except BaseException as error:
            # SQLAlchemy never sees this failure: the connection may be dead (a restarted server), and the pool
            # pings only connections idle for a while (decision 158), so it is not handed out again
            await greenlet_spawn(raw.invalidate)
            if isinstance(error, Exception) and driver.is_closed():
                # asyncpg's bare InterfaceError, which no outage rule reads: say what it is, a lost connection
                # (503, decision 93), as SQLAlchemy's own wrapping says for the session's reads
                raise ConnectionResetError("the database connection is closed") from error
            raise
        return records


def _processed(
    rows: Sequence[Sequence[Any]], results: tuple[Callable[[Any], Any] | None, ...]
) -> list[tuple[Any, ...]]:
    converters = [(i, process) for i, process in enumerate(results) if process is not None]
    if not converters:
        return [tuple(row) for row in rows]
    converted = []
    for row in rows:
        values = list(row)
        for i, process in converters:  # SQLAlchemy's processors, and ours, take None
            values[i] = process(values[i])
        converted.append(tuple(values))
    return converted
