"""`shop` command: migrate, seed demo data, create staff users, clients and development tokens, serve.

`litestar --app app.asgi:create_app database upgrade` works as well (advanced-alchemy's CLI).

Over 350 lines on purpose: one click group, whose commands are a few lines each of options and messages around
functions that live elsewhere; kept together so `shop --help` and the code read the same.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from app.db import make_alchemy_config
from app.settings import Settings, SettingsError, get_settings
from shop_kernel import Unit

__all__ = ("main",)


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc


def migrate(settings: Settings) -> None:
    """Upgrade to head without the statement timeout: building an index may take longer than any request may."""
    from advanced_alchemy.alembic.commands import AlembicCommands

    unlimited = replace(settings, db_pool=replace(settings.db_pool, statement_timeout_ms=0))
    AlembicCommands(sqlalchemy_config=make_alchemy_config(unlimited)).upgrade("head")


@asynccontextmanager
async def _unit(settings: Settings) -> AsyncIterator[Unit]:
    """A unit of work on a session of its own, for one command; the engine is disposed of afterwards."""
    config = make_alchemy_config(settings)
    try:
        async with config.create_session_maker()() as session:
            yield Unit(session)
    finally:
        await config.get_engine().dispose()


@click.group()
def main() -> None:
    """Operate the shop API."""


@main.command("migrate")
def migrate_command() -> None:
    """Bring the database schema to the latest migration."""
    migrate(_settings())
    click.echo("database is at the latest migration")


async def _seed(settings: Settings) -> bool:
    from app.demo import seed_demo

    config = make_alchemy_config(settings)
    try:
        return await seed_demo(settings, config.create_session_maker())
    finally:
        await config.get_engine().dispose()


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Create demo accounts and tokens (development only; refused in production)."""
    settings = _settings()
    try:
        created = asyncio.run(_seed(settings))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("demo data created" if created else "database already has data; demo data left as is")


async def _create_staff(settings: Settings, username: str, email: str, password: str, token: bool) -> str | None:
    from shop_identity import CustomerService, RegisterCustomer, TokenService

    async with _unit(settings) as unit:
        staff = await CustomerService(unit).register(
            RegisterCustomer(username=username, email=email, password=password, password_confirm=password),
            is_staff=True,
        )
        if not token:
            return None
        return await TokenService(unit).issue(customer_id=staff.id, scopes=("read", "write"), ttl=timedelta(days=30))


@main.command("create-staff-user")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option(
    "--password",
    envvar="SHOP_STAFF_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Read from SHOP_STAFF_PASSWORD or prompted; never pass it on a shared command line.",
)
@click.option("--token/--no-token", default=False, help="Also issue a 30-day read/write access token.")
def create_staff_user_command(username: str, email: str, password: str, token: bool) -> None:
    """Create a staff account (subject to the same password policy as customers)."""
    from shop_kernel import FieldValidationError

    try:
        raw = asyncio.run(_create_staff(_settings(), username, email, password, token))
    except FieldValidationError as exc:
        errors = exc.errors if isinstance(exc.errors, dict) else {}
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
        raise click.ClickException(problems) from exc
    click.echo(f"staff user {username!r} created")
    if raw:
        click.echo(f"access token (shown once): {raw}")


async def _create_oauth_client(settings: Settings, registration: Any) -> Any:
    from shop_identity import OAuthClientService

    async with _unit(settings) as unit:
        return await OAuthClientService(unit).create(registration)


@main.command("create-oauth-client")
@click.option("--name", required=True, help="Shown to users on the consent screen.")
@click.option(
    "--public/--confidential",
    default=False,
    help="Public clients (browser, mobile) get no secret and must use PKCE; confidential clients get a secret.",
)
@click.option(
    "--grant",
    "grants",
    multiple=True,
    type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
    help="Repeat for several; default authorization_code and refresh_token.",
)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI; repeat for several.")
@click.option("--scope", "scopes", default="", help="Space-separated scopes the client may ask for; default all.")
@click.option("--introspect/--no-introspect", default=False, help="May introspect any token (a resource server).")
def create_oauth_client_command(
    name: str, public: bool, grants: tuple[str, ...], redirect_uris: tuple[str, ...], scopes: str, introspect: bool
) -> None:
    """Register an OAuth2 client; a confidential client's secret is printed once and never again."""
    from shop_identity import SCOPES, ClientRegistration
    from shop_kernel import FieldValidationError

    registration = ClientRegistration(
        name=name,
        public=public,
        grant_types=list(grants or ("authorization_code", "refresh_token")),
        redirect_uris=list(redirect_uris),
        scopes=scopes.split() or list(SCOPES),
        may_introspect=introspect,
    )
    try:
        created = asyncio.run(_create_oauth_client(_settings(), registration))
    except FieldValidationError as exc:
        errors = exc.errors if isinstance(exc.errors, dict) else {}
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
        raise click.ClickException(problems) from exc
    click.echo(f"client_id: {created.client_id}")
    if created.client_secret:
        click.echo(f"client_secret (shown once): {created.client_secret}")
    click.echo(f"type: {'public' if created.public else 'confidential'}; grants: {' '.join(created.grant_types)}")
    click.echo(f"scopes: {' '.join(created.scopes)}")


async def _create_token(settings: Settings, username: str, scopes: tuple[str, ...], ttl: timedelta) -> str:
    from shop_identity import CustomerService, TokenService

    async with _unit(settings) as unit:
        customer = await CustomerService(unit).find_by_username(username)
        if customer is None or not customer.is_active:
            raise click.ClickException(f"no active user {username!r}")
        return await TokenService(unit).issue(customer_id=customer.id, scopes=scopes, ttl=ttl)


@main.command("create-token")
@click.option("--username", required=True, help="An existing account (any case).")
@click.option("--scopes", default="read write", show_default=True, help="Space- or comma-separated.")
@click.option(
    "--expires-in",
    type=click.IntRange(min=60, max=30 * 24 * 3600),
    default=None,
    help="Seconds; defaults to ACCESS_TOKEN_EXPIRE_SECONDS.",
)
def create_token_command(username: str, scopes: str, expires_in: int | None) -> None:
    """Print an access token for an existing user (development only; refused in production).

    Only the token goes to standard output, so `TOKEN=$(shop create-token --username jane)` works.
    """
    from shop_identity import SCOPES

    settings = _settings()
    if settings.is_production:
        raise click.ClickException("create-token is for development; in production sign in through OAuth2")
    wanted = tuple(dict.fromkeys(scopes.replace(",", " ").split()))
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if unknown or not wanted:
        given = f"unknown scope {', '.join(unknown)}; " if unknown else ""
        raise click.ClickException(f"{given}--scopes takes one or more of: {', '.join(SCOPES)}")
    ttl = timedelta(seconds=expires_in) if expires_in else settings.access_token_ttl
    token = asyncio.run(_create_token(settings, username, wanted, ttl))
    click.echo(token)
    click.echo(f"scopes {' '.join(wanted)}; expires in {int(ttl.total_seconds())} s", err=True)


async def _reindex(settings: Settings) -> int:
    from shop_catalog import rebuild_search_index

    async with _unit(settings) as unit, unit.transaction() as session:
        return await rebuild_search_index(session)


@main.command("search-reindex")
def search_reindex_command() -> None:
    """Rebuild the product search index from the products, in one transaction (recovery only: database
    triggers keep the index in step with every product write)."""
    settings = _settings()
    # no statement timeout: rebuilding a big catalog's index takes longer than any request may
    indexed = asyncio.run(_reindex(replace(settings, db_pool=replace(settings.db_pool, statement_timeout_ms=0))))
    click.echo(f"search index rebuilt: {indexed} products")


@main.command("serve")
@click.option("--host", default=None, help="Defaults to HOST or 127.0.0.1.")
@click.option("--port", type=int, default=None, help="Defaults to PORT or 8000.")
@click.option("--setup/--no-setup", default=False, help="Migrate and seed demo data (if enabled) first.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Serving processes; defaults to WEB_CONCURRENCY, else one per core.",
)
def serve_command(host: str | None, port: int | None, setup: bool, processes: int | None) -> None:
    """Serve the API with uvicorn: several processes on one port, one notification worker beside them (when
    WORKER_IN_PROCESS allows it) and, without REDIS_URL, one embedded Redis for them all."""
    settings = _settings()
    if setup:
        migrate(settings)
        if settings.demo_data:
            asyncio.run(_seed(settings))
    processes = processes or settings.web_processes
    with ExitStack() as stack:
        if settings.redis_url is None:
            from app.redis_server import EmbeddedRedis

            redis_url = stack.enter_context(EmbeddedRedis(settings.var_dir, persistent=True)).url
            settings = replace(settings, redis_url=redis_url)
            os.environ["REDIS_URL"] = redis_url  # serving processes and the worker read it from the environment
            click.echo(f"Embedded Redis on {redis_url}")
        if processes > 1 and settings.worker_in_process:
            stack.enter_context(_worker_process())
            os.environ["WORKER_IN_PROCESS"] = "false"  # exactly one worker, not one per serving process
            settings = replace(settings, worker_in_process=False)
            click.echo("Notification worker: one process beside the serving processes")
        _serve(settings, host, port, processes)


@contextmanager
def _worker_process() -> Iterator[subprocess.Popen[bytes]]:
    """`shop worker` as a child that stops with `shop serve`, however `shop serve` stops."""
    from app.processes import die_with_parent

    shop = Path(sys.executable).with_name("shop")  # the console script installed beside this interpreter
    command = [str(shop)] if shop.exists() else [sys.executable, "-m", "app.cli"]
    process = subprocess.Popen([*command, "worker"], preexec_fn=die_with_parent)  # noqa: S603, PLW1509
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()


def _serve(settings: Settings, host: str | None, port: int | None, processes: int = 1) -> None:
    import uvicorn

    from app.processes import SUPERVISED

    host = host or settings.host
    port = port or settings.port
    base = f"http://{host}:{port}"
    click.echo(f"Shop API on {base}  (env: {settings.env}, database: {_redacted(settings.database_url)})")
    click.echo(f"  Serving processes: {processes}")
    if settings.openapi_enabled:
        click.echo(f"  API docs:   {base}/schema  (OpenAPI JSON: {base}/schema/openapi.json)")
    if settings.demo_data:
        from app.auth import DEMO_CUSTOMER_TOKEN, DEMO_STAFF_TOKEN

        click.echo(f"  Demo staff token:    Authorization: Bearer {DEMO_STAFF_TOKEN}")
        click.echo(f"  Demo customer token: Authorization: Bearer {DEMO_CUSTOMER_TOKEN}")
    sys.stdout.flush()
    # log_config=None: uvicorn's loggers propagate to the app's logging (app/observability.py) instead of printing
    # their own format; its access log is off (the app logs each request as shop.access)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "proxy_headers": True,
        "log_level": settings.log_level.lower(),
        "log_config": None,
        "access_log": False,
    }
    if processes == 1:
        from app.gc_tuning import freeze_survivors
        from app.main import create_app

        app = create_app(settings)
        app.on_startup.append(freeze_survivors)
        uvicorn.run(app, **options)
        return
    # Each serving process builds its app from the environment (uvicorn starts them with `spawn`) and stops
    # when this supervisor dies.
    # uvicorn kills a process that does not answer its health ping in time (5 s by default): on a busy machine a
    # starting process can take longer than that to import the app.
    os.environ[SUPERVISED] = "1"
    from app.observability import configure_logging

    configure_logging(settings)  # the supervisor's own lines (processes started, restarted) in the same format
    uvicorn.run("app.asgi:create_app", factory=True, workers=processes, timeout_worker_healthcheck=30, **options)


@main.command("worker")
def worker_command() -> None:
    """Run the background worker (notifications and the outbox relay) as its own process."""
    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is required to run a separate worker")
    from app.gc_tuning import freeze_survivors
    from app.observability import configure_logging, log_startup_warnings
    from app.worker import run_worker

    configure_logging(settings)
    log_startup_warnings(settings)
    freeze_survivors()  # what the imports built lives as long as the worker (app.gc_tuning)
    click.echo(f"worker on queue {settings.notify.queue_name!r} ({_redacted(settings.redis_url)})")
    asyncio.run(run_worker(settings))


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("APP_ENV", "development")
    main()
