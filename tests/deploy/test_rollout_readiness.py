"""Readiness while a release rolls out: the migrate Job runs first, the replicas of the old release keep serving."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, text

from app.cli import migrate
from app.health import migration_heads
from app.main import create_app
from app.settings import Settings


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    var = tmp_path_factory.mktemp("rollout")
    settings = Settings(env="test", database_url=f"sqlite+aiosqlite:///{var / 'shop.sqlite3'}", var_dir=var)
    migrate(settings)
    return settings


def stamp(database: Settings, revision: str) -> None:
    engine = create_engine(database.database_url.replace("+aiosqlite", ""))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision})
    engine.dispose()


def readiness(database: Settings) -> tuple[int, dict[str, str]]:
    with TestClient(create_app(database)) as client:
        response = client.get("/api/ready/")
    return response.status_code, response.json()["checks"]


def test_ready_at_the_head_it_ships(database: Settings) -> None:
    [head] = migration_heads()
    stamp(database, head)
    assert readiness(database) == (200, {"database": "ok", "migrations": "ok", "writes": "ok"})


def test_still_ready_when_a_newer_release_has_migrated(database: Settings) -> None:
    """The database is at a revision this code does not know: written by the next release's migrate step."""
    stamp(database, "0999_from_the_next_release")
    assert readiness(database) == (200, {"database": "ok", "migrations": "ok", "writes": "ok"})


def test_not_ready_while_the_database_is_behind(database: Settings) -> None:
    stamp(database, "0001")
    status, checks = readiness(database)
    assert status == 503
    assert checks["migrations"] == "pending (database at 0001)"
