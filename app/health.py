"""Liveness (`/api/health/`) and readiness (`/api/ready/`) probes."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from alembic.config import Config
from alembic.script import ScriptDirectory
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import String, column, insert, select, table, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import MIGRATIONS_DIR, VERSION_TABLE
from app.models import WRITE_PROBE
from app.observability import REDIS_UP
from shop_kernel import database_outage, run_unit_of_work

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from app.settings import Settings

__all__ = ("HealthController", "migration_heads")

READY_TIMEOUT_SECONDS = 2.0


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


@cache
def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


@cache
def migration_heads() -> frozenset[str]:
    """The head revisions shipped with this code (read once from the migration scripts)."""
    return frozenset(_scripts().get_heads())


@cache
def _known_revisions() -> frozenset[str]:
    return frozenset(revision.revision for revision in _scripts().walk_revisions())


def _database_is_behind(current: set[str]) -> bool:
    """Not migrated yet, or at an older revision of ours. A revision this code does not know was written by a
    newer release's migrate step, which runs before that release rolls out: this one keeps serving meanwhile."""
    return not current or (bool(current & _known_revisions()) and current != migration_heads())


async def _redis_status(url: str) -> str:
    """Reported, never required: without Redis the API still takes orders (docs/operations.md). 1 s at most, so
    an unreachable Redis cannot make the probe itself time out."""
    client = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        REDIS_UP.set(0)
        return f"unavailable ({type(exc).__name__})"
    finally:
        await client.aclose()
    REDIS_UP.set(1)
    return "ok"


def _touch_probe(connection: Connection) -> None:
    """One small real write: proves the database takes writes (not read-only, not out of space, lock obtainable)."""
    now = datetime.now(UTC)
    if connection.execute(update(WRITE_PROBE).where(WRITE_PROBE.c.id == 1).values(checked_at=now)).rowcount == 0:
        connection.execute(insert(WRITE_PROBE).values(id=1, checked_at=now))


def _free_disk_bytes(database_url: str) -> int | None:
    """Free space where the SQLite database file lives (None for a server database or an in-memory one)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    try:
        stats = os.statvfs(Path(url.database).parent)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _unavailable(exc: BaseException) -> str:
    outage = database_outage(exc)
    return f"unavailable ({outage.kind if outage else type(exc).__name__})"


async def _database_checks(engine: AsyncEngine, settings: Settings) -> dict[str, str]:
    """database: it answers; migrations: at this code's head; writes: a write commits (and, SQLite, the disk
    has room). Bounded in time: an unreachable database must not hold the probe past its own timeout."""
    checks = {"database": "ok", "migrations": "ok", "writes": "ok"}
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current: set[str] = set()
            try:
                query = select(column("version_num", String)).select_from(table(VERSION_TABLE))
                current = set((await connection.execute(query)).scalars())
            except SQLAlchemyError:
                pass  # no version table yet: nothing migrated
    except Exception as exc:  # whatever the driver raises, the answer is "not ready"
        return {"database": _unavailable(exc), "migrations": "unknown", "writes": "unknown"}
    if _database_is_behind(current):
        checks["migrations"] = f"pending (database at {', '.join(sorted(current)) or 'no revision'})"
        checks["writes"] = "unknown"
        return checks
    free = _free_disk_bytes(settings.database_url)
    if free is not None and free < settings.ready_min_free_disk_bytes:
        checks["writes"] = f"unavailable (disk nearly full: {free} bytes free)"
        return checks
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await run_unit_of_work(engine, _touch_probe)
    except Exception as exc:
        checks["writes"] = _unavailable(exc)
    return checks


class HealthController(Controller):
    path = "/api"
    tags = ["Operations"]

    @get("/health/", operation_id="getHealth", summary="Liveness probe", cache_control=None)
    async def health(self) -> Health:
        """The process is up and serving; says nothing about its dependencies."""
        return Health(status="ok")

    @get(
        "/ready/",
        operation_id="getReadiness",
        summary="Readiness probe",
        description=(
            "200 when the database answers, its schema is at the latest migration and it takes a write "
            "(SQLite: with room left on its disk): what taking orders needs; 503 otherwise, and 200 again on its "
            "own once writes can succeed. `checks` says which part failed. It also reports Redis, which is not "
            "required: without it rate limits count per process and pages are served uncached."
        ),
    )
    async def ready(
        self, request: Request[Any, Any, Any], db_engine: NamedDependency[AsyncEngine]
    ) -> Response[Readiness]:
        settings: Settings = request.app.state.settings
        checks = await _database_checks(db_engine, settings)
        redis_url = settings.redis_url
        if redis_url:
            checks["redis"] = await _redis_status(redis_url)
        ready = all(value == "ok" for name, value in checks.items() if name != "redis")
        return Response(
            Readiness(status="ready" if ready else "unavailable", checks=checks),
            status_code=200 if ready else 503,
        )
