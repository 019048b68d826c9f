"""Liveness (`/api/health/`) and readiness (`/api/ready/`) probes."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from alembic.config import Config
from alembic.script import ScriptDirectory
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import String, column, select, table, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import MIGRATIONS_DIR, VERSION_TABLE
from app.observability import REDIS_UP

__all__ = ("HealthController", "migration_heads")


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


class HealthController(Controller):
    path = "/api"
    tags = ["Operations"]

    @get("/health/", summary="Liveness probe", cache_control=None)
    async def health(self) -> Health:
        """The process is up and serving; says nothing about its dependencies."""
        return Health(status="ok")

    @get(
        "/ready/",
        summary="Readiness probe",
        description=(
            "200 when the database answers and its schema is at the latest migration: what taking orders needs; "
            "503 otherwise. `checks` also reports Redis, which is not required: without it rate limits count per "
            "process and pages are served uncached."
        ),
    )
    async def ready(
        self, request: Request[Any, Any, Any], db_engine: NamedDependency[AsyncEngine]
    ) -> Response[Readiness]:
        checks: dict[str, str] = {"database": "ok", "migrations": "ok"}
        try:
            async with db_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                current: set[str] = set()
                try:
                    query = select(column("version_num", String)).select_from(table(VERSION_TABLE))
                    current = set((await connection.execute(query)).scalars())
                except SQLAlchemyError:
                    pass  # no version table yet: nothing migrated
        except (SQLAlchemyError, OSError) as exc:
            checks = {"database": f"unavailable ({type(exc).__name__})", "migrations": "unknown"}
        else:
            if _database_is_behind(current):
                checks["migrations"] = f"pending (database at {', '.join(sorted(current)) or 'no revision'})"
        redis_url = request.app.state.settings.redis_url
        if redis_url:
            checks["redis"] = await _redis_status(redis_url)
        ready = all(value == "ok" for name, value in checks.items() if name != "redis")
        return Response(
            Readiness(status="ready" if ready else "unavailable", checks=checks),
            status_code=200 if ready else 503,
        )
