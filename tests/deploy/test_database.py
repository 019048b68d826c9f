"""PostgreSQL in production: the pool and the statement timeout come from the environment and reach the server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.cli import migrate
from app.db import PING_AFTER_IDLE_SECONDS, make_engine
from app.health import migration_heads
from app.settings import DatabasePool, Settings, SettingsError
from shop_identity import generate_private_key_pem

SIGNING_KEY = generate_private_key_pem()


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://shop@db.internal:5432/shop",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "SECRET_KEY": "s" * 40,
        "OAUTH_ISSUER": "https://shop.example",
        "OAUTH_SIGNING_KEY": SIGNING_KEY,
    }
    return env | overrides


def test_pool_defaults_suit_a_replica() -> None:
    assert Settings.from_env(production_env()).db_pool == DatabasePool(
        size=10, max_overflow=0, timeout_seconds=30.0, statement_timeout_ms=30_000
    )


def test_pool_and_statement_timeout_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        production_env(DB_POOL_SIZE="4", DB_MAX_OVERFLOW="2", DB_POOL_TIMEOUT="2.5", DB_STATEMENT_TIMEOUT_MS="1500")
    )
    assert settings.db_pool == DatabasePool(size=4, max_overflow=2, timeout_seconds=2.5, statement_timeout_ms=1500)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_POOL_SIZE", "0"),
        ("DB_POOL_SIZE", "ten"),
        ("DB_MAX_OVERFLOW", "-1"),
        ("DB_POOL_TIMEOUT", "0"),
        ("DB_STATEMENT_TIMEOUT_MS", "-5"),
    ],
)
def test_impossible_pool_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(production_env(**{name: value}))


@pytest.fixture(scope="module")
def postgres_url(database_factory: Callable[[str], str]) -> str:
    return database_factory("postgresql")


def pool_settings(url: str, **pool: float) -> Settings:
    return Settings(env="test", database_url=url, db_pool=DatabasePool(**pool))


def test_the_server_enforces_the_statement_timeout(postgres_url: str) -> None:
    async def run() -> tuple[str, DBAPIError]:
        engine = make_engine(pool_settings(postgres_url, statement_timeout_ms=150))
        try:
            async with engine.connect() as connection:
                shown = (await connection.execute(text("SHOW statement_timeout"))).scalar_one()
                with pytest.raises(DBAPIError) as cancelled:
                    await connection.execute(text("SELECT pg_sleep(20)"))
                return str(shown), cancelled.value
        finally:
            await engine.dispose()

    shown, error = asyncio.run(run())
    assert shown == "150ms"
    assert "canceling statement due to statement timeout" in str(error.orig)


def test_every_statement_is_planned_for_its_own_values(postgres_url: str) -> None:
    """asyncpg prepares statements; a generic plan would guess at a category's subtree (decision 100)."""

    async def run() -> str:
        engine = make_engine(pool_settings(postgres_url))
        try:
            async with engine.connect() as connection:
                return str((await connection.execute(text("SHOW plan_cache_mode"))).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == "force_custom_plan"


def test_a_request_waits_for_a_free_connection_no_longer_than_the_pool_timeout(postgres_url: str) -> None:
    async def run() -> None:
        engine = make_engine(pool_settings(postgres_url, size=1, max_overflow=0, timeout_seconds=0.2))
        try:
            async with engine.connect() as held:
                await held.execute(text("SELECT 1"))
                with pytest.raises(PoolTimeoutError):
                    await engine.connect()
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_migrations_run_without_the_statement_timeout(postgres_url: str) -> None:
    """An index build may take minutes on a big table: the one-shot migrate process is not cut off.

    With a 1 ms limit on every statement the migrations could not finish if it applied to them.
    """
    settings = pool_settings(postgres_url, statement_timeout_ms=1)
    migrate(settings)

    async def revisions() -> list[str]:
        engine = make_engine(replace(settings, db_pool=DatabasePool()))
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())
        finally:
            await engine.dispose()

    assert set(asyncio.run(revisions())) == migration_heads()


def test_a_pooled_connection_is_pinged_only_after_sitting_idle(postgres_url: str) -> None:
    """Decision 158: a connection back from a request a moment ago is handed out as is (asyncpg's ping is three
    round trips); one idle for longer is pinged, and a dead one replaced before any statement fails on it."""

    async def run() -> tuple[int, int, int]:
        engine = make_engine(pool_settings(postgres_url, size=1, max_overflow=0))
        pings = 0
        ping = engine.dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            nonlocal pings
            pings += 1
            return ping(dbapi_connection)

        engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
        try:
            async with engine.connect() as connection:
                first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with engine.connect() as connection:  # back in the pool a moment ago: no ping
                assert (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one() == first
            assert pings == 0
            killer = make_engine(pool_settings(postgres_url))
            try:
                async with killer.connect() as connection:
                    await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            finally:
                await killer.dispose()
            await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.1)
            async with engine.connect() as connection:  # idle long enough: pinged, found dead, replaced
                second = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            return first, second, pings
        finally:
            await engine.dispose()

    first, second, pings = asyncio.run(run())
    assert second != first
    assert pings == 1


def test_connections_past_the_pool_size_are_never_opened_and_the_pool_keeps_its_own(tmp_path: Any) -> None:
    """Decision 191, on SQLite's file pool (PostgreSQL's is the same pool class): with the default no overflow, a
    second checkout waits instead of opening a connection, and a connection handed back stays open for the next."""
    settings = pool_settings(f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}", size=1, timeout_seconds=0.2)

    async def run() -> tuple[int, bool]:
        engine = make_engine(settings)
        opened = 0

        def count(*_: Any) -> None:
            nonlocal opened
            opened += 1

        event.listen(engine.sync_engine, "connect", count)
        try:
            async with engine.connect() as held:
                await held.execute(text("SELECT 1"))
                with pytest.raises(PoolTimeoutError):
                    await engine.connect()
            async with engine.connect() as again:
                await again.execute(text("SELECT 1"))
            return opened, engine.sync_engine.pool.size() == 1
        finally:
            await engine.dispose()

    assert DatabasePool().max_overflow == 0
    assert asyncio.run(run()) == (1, True)
