"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.main import create_app
from app.models import WRITE_PROBE
from app.settings import Settings
from tests.support.api import Api


def test_health_is_public_json(client: TestClient[Litestar]) -> None:
    for path in ("/api/health/", "/api/health"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"status": "ok"}


def test_ready_when_database_is_migrated(client: TestClient[Litestar]) -> None:
    response = client.get("/api/ready/")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "writes": "ok", "redis": "ok"},
    }


def test_not_ready_before_migrations(backend: str, database_factory: Callable[[str], str], settings: Settings) -> None:
    fresh = Settings(env="test", database_url=database_factory(backend), demo_data=False, var_dir=settings.var_dir)
    with TestClient(create_app(fresh)) as client:
        response = client.get("/api/ready/")
        assert client.get("/api/health/").status_code == 200
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "pending (database at no revision)"


def test_not_ready_when_database_is_unreachable(settings: Settings) -> None:
    down = Settings(env="test", database_url="postgresql+asyncpg://shop@127.0.0.1:1/shop", var_dir=settings.var_dir)
    with TestClient(create_app(down)) as client:
        response = client.get("/api/ready/")
        assert client.get("/api/health/").status_code == 200
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")


def test_ready_when_only_redis_is_unreachable(settings: Settings, tmp_path: object) -> None:
    """Orders are taken without Redis, so it does not decide readiness; the body still reports it."""
    gone = replace(settings, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(gone)) as client:
        response = client.get("/api/ready/")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["checks"]["redis"].startswith("unavailable")
    assert response.json()["checks"]["database"] == "ok"


def test_not_ready_while_the_sqlite_disk_has_no_room(settings: Settings) -> None:
    """Writes would fail on a full disk even where a tiny probe write still fits: free space is checked too."""
    if not settings.is_sqlite:
        return
    cramped = replace(settings, ready_min_free_disk_bytes=2**62)
    with TestClient(create_app(cramped)) as client:
        response = client.get("/api/ready/")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["writes"].startswith("unavailable (disk nearly full: ")


def test_readiness_writes_its_probe_row(client: TestClient[Litestar], api: Api) -> None:
    """The write is real: the probe row's time moves forward with every probe."""

    async def checked_at(session: AsyncSession) -> datetime:
        return (await session.execute(select(WRITE_PROBE.c.checked_at))).scalar_one()

    assert client.get("/api/ready/").status_code == 200
    first = api.run(checked_at)
    assert client.get("/api/ready/").status_code == 200
    assert api.run(checked_at) > first
