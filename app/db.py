"""Engine and SQLAlchemy plugin configuration for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.config import AlembicAsyncConfig, AsyncSessionConfig
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shop_kernel import DB_SESSION_KEY, database_outage

if TYPE_CHECKING:
    from litestar.types import BeforeMessageSendHookHandler, Message, Scope

    from app.settings import Settings

__all__ = ("MIGRATIONS_DIR", "VERSION_TABLE", "make_alchemy_config", "make_engine")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL so readers never block the writer; a busy timeout so writers queue instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out (decision 158)."""
_IDLE_SINCE = "shop_idle_since"


def ping_when_idle(engine: AsyncEngine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """SQLAlchemy's `pool_pre_ping`, but only for a connection that sat in the pool for `idle_seconds`.

    asyncpg's ping is three round trips (BEGIN, an empty query, ROLLBACK): on a product page nobody asked
    before it was three of the five round trips and a fifth of the serving process's CPU. A connection
    handed back less than a second ago was working then; one that breaks meanwhile fails its request as it
    would have failed mid-request anyway (503, decision 93) and SQLAlchemy, or `shop_catalog.direct` for
    the reads it runs on the driver, invalidates it. A failed ping invalidates every pooled connection, as
    `pool_pre_ping` does, and the pool connects anew.
    """
    dialect = engine.dialect

    def now_idle(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.InvalidatePoolError(str(error)) from error

    event.listen(engine.sync_engine, "connect", now_idle)
    event.listen(engine.sync_engine, "checkin", now_idle)
    event.listen(engine.sync_engine, "checkout", ping_if_idle)


def make_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    pool = settings.db_pool
    # The same pool shape on both databases: `size` connections kept open, `max_overflow` more opened at a peak
    # and closed as soon as demand dips (decision 191: a pool smaller than the requests in flight churned 15-19
    # new connections a second under load, each a backend start for PostgreSQL or a thread for aiosqlite).
    sizing = {"pool_size": pool.size, "max_overflow": pool.max_overflow, "pool_timeout": pool.timeout_seconds}
    if url.get_backend_name() == "sqlite":
        in_memory = url.database in (None, "", ":memory:")  # one connection for the whole process (StaticPool)
        if not in_memory:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        engine = create_async_engine(url, connect_args={"timeout": 15}, **({} if in_memory else sizing))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        **sizing,
        pool_recycle=1800,
        # startup parameters of each asyncpg connection: the server enforces the limit, whatever the client does.
        # Every statement is planned for its own values (decision 100): asyncpg prepares statements, and after
        # five runs PostgreSQL may keep a generic plan, which guesses at an IN list (a category's subtree) and
        # cannot hash it: 40 ms became 210 ms on a deep page of a big category.
        connect_args={
            "server_settings": {
                "statement_timeout": str(pool.statement_timeout_ms),
                "plan_cache_mode": "force_custom_plan",
            }
        },
    )
    ping_when_idle(engine)
    return engine


def outage_tolerant(handler: BeforeMessageSendHookHandler) -> BeforeMessageSendHookHandler:
    """advanced-alchemy's `before_send` handler closes the request's session as its answer starts; wrapped, a
    database outage during that close no longer turns a finished answer into a bare 500: the read behind
    the answer succeeded, and the pool drops the dead connection on its own."""

    async def close_session(message: Message, scope: Scope) -> None:
        try:
            await handler(message, scope)  # type: ignore[misc]
        except Exception as error:
            if database_outage(error) is None:
                raise
            logging.getLogger("shop.db").warning(
                "Closing a session failed (%s); its answer is sent", type(error).__name__
            )

    return close_session


def make_alchemy_config(settings: Settings, engine: AsyncEngine | None = None) -> SQLAlchemyAsyncConfig:
    config = SQLAlchemyAsyncConfig(
        engine_instance=engine or make_engine(settings),
        session_dependency_key=DB_SESSION_KEY,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR), version_table_name=VERSION_TABLE, render_as_batch=True
        ),
        set_default_exception_handler=False,
    )
    # the default handler is bound to this config's session key (made unique per config by advanced-alchemy)
    config.before_send_handler = outage_tolerant(cast("BeforeMessageSendHookHandler", config.before_send_handler))
    return config
