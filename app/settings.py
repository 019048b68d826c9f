"""All configuration, read once from the environment. Production refuses unsafe or missing values.

Longer than our ~350-line rule: every variable the app reads is here with its default, its parsing and the rule
production enforces on it (decision 171 says why this is not pydantic-settings), so an operator has one file.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from shop_catalog import CatalogSettings
from shop_identity import load_or_create_private_key_pem
from shop_notify import AT_LIVE_URL, AT_SANDBOX_URL, NotifySettings

__all__ = ("DatabasePool", "RateLimits", "RequestLimits", "Settings", "SettingsError", "get_settings")

Environment = Literal["development", "test", "production"]
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789"  # noqa: S105 - refused in production
DEV_SIGNING_KEY_FILE = "oauth-signing-key.pem"
"""Generated into VAR_DIR outside production when no signing key is configured."""


class SettingsError(ValueError):
    """The environment describes a configuration the app must not start with."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"expected a boolean, got {value!r}")


def normalize_database_url(url: str) -> str:
    """Accept the URLs operators already have (`postgres://`, `sqlite:///`) and pick the async drivers."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url.removeprefix(prefix)
    return url


@dataclass(frozen=True)
class RateLimits:
    """Requests per minute, per client (its user when signed in, else its address), shared by all replicas
    through Redis. `auth`: registration and the sign-in and token endpoints, per address. `orders`: placing
    and cancelling orders (each sends an SMS), per customer."""

    enabled: bool = True
    general_per_minute: int = 1200
    auth_per_minute: int = 10
    orders_per_minute: int = 60


@dataclass(frozen=True)
class RequestLimits:
    """What one request may cost before a handler sees it (OWASP API4).

    `max_body_bytes` applies to every route that does not declare its own limit (the bulk upload takes
    more, delivery reports less); `body_timeout_seconds` bounds how long a client may take to send its
    body once the app starts reading it (408 after that); 0 turns the deadline off.
    """

    max_body_bytes: int = 1024 * 1024
    body_timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RequestLimits:
        try:
            limits = cls(
                max_body_bytes=int(env.get("REQUEST_MAX_BODY_BYTES", str(cls.max_body_bytes))),
                body_timeout_seconds=float(env.get("REQUEST_BODY_TIMEOUT_SECONDS", str(cls.body_timeout_seconds))),
            )
        except ValueError as exc:
            raise SettingsError(f"expected a number: {exc}") from exc
        if limits.max_body_bytes < 1024 or limits.body_timeout_seconds < 0:
            raise SettingsError("REQUEST_MAX_BODY_BYTES must be at least 1024; REQUEST_BODY_TIMEOUT_SECONDS at least 0")
        return limits


@dataclass(frozen=True)
class DatabasePool:
    """The database connection pool per process (PostgreSQL, or a SQLite file's aiosqlite connections), and
    PostgreSQL's server-side limit on any one statement.

    Each API replica and worker holds up to `size + max_overflow` connections: keep
    replicas x that below the server's `max_connections` (or put PgBouncer in front).
    """

    size: int = 10
    max_overflow: int = 0
    """Connections opened beyond `size` at a peak and closed as soon as demand dips: 0 by default, so a busy
    process queues for its `size` connections instead of opening and closing them by the second (decision 191)."""
    timeout_seconds: float = 30.0
    """How long a request waits for a free connection before failing."""
    statement_timeout_ms: int = 30_000
    """PostgreSQL `statement_timeout` set on every connection; 0 turns it off (migrations do)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DatabasePool:
        try:
            pool = cls(
                size=int(env.get("DB_POOL_SIZE", "10")),
                max_overflow=int(env.get("DB_MAX_OVERFLOW", "0")),
                timeout_seconds=float(env.get("DB_POOL_TIMEOUT", "30")),
                statement_timeout_ms=int(env.get("DB_STATEMENT_TIMEOUT_MS", "30000")),
            )
        except ValueError as exc:
            raise SettingsError(f"expected a number: {exc}") from exc
        if pool.size < 1 or pool.max_overflow < 0 or pool.timeout_seconds <= 0 or pool.statement_timeout_ms < 0:
            raise SettingsError(
                "DB_POOL_SIZE must be at least 1, DB_MAX_OVERFLOW and DB_STATEMENT_TIMEOUT_MS at least 0, "
                "DB_POOL_TIMEOUT positive"
            )
        return pool


@dataclass(frozen=True)
class Settings:
    env: Environment = "development"
    database_url: str = ""
    db_pool: DatabasePool = field(default_factory=DatabasePool)
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = field(default_factory=lambda: Path("var").resolve())
    demo_data: bool = True
    openapi_enabled: bool = True
    access_token_ttl: timedelta = timedelta(hours=1)
    refresh_token_ttl: timedelta = timedelta(days=7)
    log_level: str = "INFO"
    worker_in_process: bool = True
    """Run the background worker inside the web process (development); production runs `shop worker`."""
    web_processes: int = 1
    """Serving processes `shop serve` starts (`WEB_CONCURRENCY`, default one per core)."""
    notify: NotifySettings = field(default_factory=NotifySettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    log_format: Literal["json", "console"] = "console"
    """`LOG_FORMAT`: JSON lines for machines (the production default) or text for people (the default elsewhere)."""
    cors_allow_origins: tuple[str, ...] = ()
    """Origins (scheme://host[:port]) whose browser scripts may call the API; none by default."""
    rate_limits: RateLimits = field(default_factory=RateLimits)
    request_limits: RequestLimits = field(default_factory=RequestLimits)
    metrics_enabled: bool = True
    access_log: bool = True
    """One INFO line per request on the `shop.access` logger (`ACCESS_LOG`)."""
    oauth_issuer: str | None = None
    """The OAuth2/OIDC issuer URL; None (development) takes it from each request's URL."""
    oauth_signing_key_pem: str | None = None
    oauth_retired_signing_key_pems: tuple[str, ...] = ()
    secure_cookies: bool = False
    """The sign-in cookie of the authorize pages is sent over https only (on in production)."""
    ready_min_free_disk_bytes: int = 8 * 1024 * 1024
    require_verified_email_for_orders: bool = False
    """`REQUIRE_VERIFIED_EMAIL_FOR_ORDERS`: customers must verify their e-mail address before placing orders."""
    account_link_base_url: str | None = None
    """`ACCOUNT_LINK_BASE_URL`: the front end that links in account messages (password reset) point at. Unset,
    production uses `OAUTH_ISSUER` + `/account` (our own pages; never the request's Host header, which a
    caller chooses), and development the URL each request came to."""
    """SQLite: readiness fails while the database's file system has less free space than this."""

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def signing_key_pem(self) -> str:
        """The id_token signing key: configured, or (outside production) generated once into VAR_DIR."""
        if self.oauth_signing_key_pem:
            return self.oauth_signing_key_pem
        if self.is_production:
            raise SettingsError("OAUTH_SIGNING_KEY_FILE (or OAUTH_SIGNING_KEY) is required in production")
        return load_or_create_private_key_pem(self.var_dir / DEV_SIGNING_KEY_FILE)

    def startup_warnings(self) -> list[str]:
        """Allowed but worth saying when a process starts (logged once logging is configured, in its format)."""
        if self.is_production and "console" in (self.notify.sms_backend, self.notify.email_backend):
            return ["production with a console notification backend: nothing is delivered"]  # a shop may send no SMS
        return []

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        app_env = env.get("APP_ENV", "development").strip().lower()
        if app_env not in ("development", "test", "production"):
            raise SettingsError(f"APP_ENV must be development, test or production, not {app_env!r}")
        var_dir = Path(env.get("VAR_DIR", "var")).resolve()
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url and app_env == "production":
            raise SettingsError("DATABASE_URL is required in production")
        database_url = normalize_database_url(database_url or f"sqlite:///{var_dir / 'shop.sqlite3'}")
        secret_key = env.get("SECRET_KEY", "")
        if app_env == "production" and (len(secret_key) < 32 or secret_key == DEV_SECRET_KEY):
            raise SettingsError("SECRET_KEY of at least 32 characters is required in production")
        demo_data = _flag(env.get("DEMO_DATA"), default=app_env == "development")
        if app_env == "production" and demo_data:
            raise SettingsError("DEMO_DATA cannot be enabled in production: demo tokens would be public")
        try:
            port = int(env.get("PORT", "8000"))
            min_free_disk = int(env.get("READY_MIN_FREE_DISK_BYTES", str(8 * 1024 * 1024)))
            web_processes = int(env.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
            ttl = int(env.get("ACCESS_TOKEN_EXPIRE_SECONDS", "3600"))
            refresh_ttl = int(env.get("REFRESH_TOKEN_EXPIRE_SECONDS", str(7 * 24 * 3600)))
            rate_limits = RateLimits(
                enabled=_flag(env.get("RATE_LIMITS_ENABLED"), default=True),
                general_per_minute=int(env.get("RATE_LIMIT_PER_MINUTE", "1200")),
                auth_per_minute=int(env.get("RATE_LIMIT_AUTH_PER_MINUTE", "10")),
                orders_per_minute=int(env.get("RATE_LIMIT_ORDERS_PER_MINUTE", "60")),
            )
        except ValueError as exc:
            raise SettingsError(f"expected an integer: {exc}") from exc
        redis_url = env.get("REDIS_URL") or None
        if app_env == "production" and not redis_url:
            raise SettingsError("REDIS_URL is required in production")
        issuer = env.get("OAUTH_ISSUER", "").strip().rstrip("/") or None
        if app_env == "production" and not (issuer and issuer.startswith("https://")):
            raise SettingsError("OAUTH_ISSUER (an https URL) is required in production")
        if issuer:
            _check_url("OAUTH_ISSUER", issuer, production=app_env == "production")
        signing_key = _read_key(env.get("OAUTH_SIGNING_KEY"), env.get("OAUTH_SIGNING_KEY_FILE"))
        if app_env == "production" and not signing_key:
            raise SettingsError("OAUTH_SIGNING_KEY_FILE (or OAUTH_SIGNING_KEY) is required in production")
        link_base = env.get("ACCOUNT_LINK_BASE_URL", "").strip().rstrip("/") or None
        if link_base:
            _check_url("ACCOUNT_LINK_BASE_URL", link_base, production=app_env == "production")
        elif app_env == "production":
            link_base = f"{issuer}/account"
        retired = tuple(
            _read_key(None, path.strip()) or ""
            for path in env.get("OAUTH_RETIRED_SIGNING_KEY_FILES", "").split(",")
            if path.strip()
        )
        return cls(
            env=cast("Environment", app_env),
            database_url=database_url,
            db_pool=DatabasePool.from_env(env),
            redis_url=redis_url,
            secret_key=secret_key or DEV_SECRET_KEY,
            host=env.get("HOST", "127.0.0.1"),
            port=port,
            var_dir=var_dir,
            demo_data=demo_data,
            openapi_enabled=_flag(env.get("OPENAPI_ENABLED"), default=True),
            access_token_ttl=timedelta(seconds=ttl),
            refresh_token_ttl=timedelta(seconds=refresh_ttl),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            worker_in_process=_flag(env.get("WORKER_IN_PROCESS"), default=app_env == "development"),
            notify=_notify_settings(env, production=app_env == "production"),
            log_format=_log_format(env.get("LOG_FORMAT") or ("json" if app_env == "production" else "console")),
            cors_allow_origins=_origins(env.get("CORS_ALLOW_ORIGINS", "")),
            rate_limits=rate_limits,
            request_limits=RequestLimits.from_env(env),
            metrics_enabled=_flag(env.get("METRICS_ENABLED"), default=True),
            access_log=_flag(env.get("ACCESS_LOG"), default=True),
            oauth_issuer=issuer,
            oauth_signing_key_pem=signing_key,
            oauth_retired_signing_key_pems=retired,
            ready_min_free_disk_bytes=min_free_disk,
            account_link_base_url=link_base,
            require_verified_email_for_orders=_flag(env.get("REQUIRE_VERIFIED_EMAIL_FOR_ORDERS"), default=False),
            web_processes=max(web_processes, 1),
            secure_cookies=_flag(env.get("SESSION_COOKIE_SECURE"), default=app_env == "production"),
        )


def _log_format(value: str) -> Literal["json", "console"]:
    if value not in ("json", "console"):
        raise SettingsError(f"LOG_FORMAT is json or console, not {value!r}")
    return cast("Literal['json', 'console']", value)


def _origins(value: str) -> tuple[str, ...]:
    """`CORS_ALLOW_ORIGINS=https://shop.example,https://admin.shop.example`; `*` is refused (credentials)."""
    origins = tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
    for origin in origins:
        if origin == "*" or not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            raise SettingsError(f"CORS_ALLOW_ORIGINS: {origin!r} is not an origin like https://shop.example")
    return origins


def _check_url(name: str, url: str, *, production: bool) -> str:
    """An address the app calls or publishes (OWASP API7): absolute http(s) with a host, nothing hidden in it.

    No user info (`https://user:pw@host` would send credentials, or disguise the real host), no query or
    fragment, no spaces or control characters; https only in production. Plain http stays possible
    outside production for loopback test doubles.
    """
    if not url.isprintable() or any(char.isspace() for char in url) or "\\" in url:
        raise SettingsError(f"{name} must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise SettingsError(f"{name} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"{name} must be an absolute https URL, e.g. https://api.example.com")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise SettingsError(f"{name} must not contain a user name or password")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise SettingsError(f"{name} must not contain a query or fragment")
    if production and parts.scheme != "https":
        raise SettingsError(f"{name} must be an https URL in production")
    return url


_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_smtp(host: str, port: int, *, credentials: bool, starttls: bool, production: bool) -> None:
    """SMTP_HOST is a bare host name or IP address: no scheme, user info, port or path smuggled in."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise SettingsError(
                f"SMTP_HOST must be a host name or IP address (no scheme, user, port or path), not {host!r}"
            ) from None
    if not 1 <= port <= 65535:
        raise SettingsError("SMTP_PORT must be between 1 and 65535")
    if production and credentials and not starttls and not _is_loopback(host):
        raise SettingsError("SMTP_STARTTLS must be on in production when SMTP_USERNAME/SMTP_PASSWORD are set")


def _read_key(value: str | None, path: str | None) -> str | None:
    """A PEM given inline or as a file path (the file wins)."""
    if path:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise SettingsError(f"cannot read the signing key file {path!r}: {exc}") from exc
    return value.strip() or None if value else None


def _notify_settings(env: Mapping[str, str], *, production: bool) -> NotifySettings:
    sms_backend = env.get("SMS_BACKEND", "console")
    email_backend = env.get("EMAIL_BACKEND", "console")
    if sms_backend not in ("console", "africastalking") or email_backend not in ("console", "smtp"):
        raise SettingsError("SMS_BACKEND is console or africastalking; EMAIL_BACKEND is console or smtp")
    api_key = env.get("AT_API_KEY", "")
    if sms_backend == "africastalking" and not api_key:
        raise SettingsError("AT_API_KEY is required when SMS_BACKEND=africastalking")
    environment = env.get("AT_ENVIRONMENT", "sandbox")
    if environment not in ("sandbox", "live"):
        raise SettingsError(f"AT_ENVIRONMENT is sandbox or live, not {environment!r}")
    base_url = env.get("AT_BASE_URL", "").strip().rstrip("/") or (
        AT_LIVE_URL if environment == "live" else AT_SANDBOX_URL
    )
    _check_url("AT_BASE_URL", base_url, production=production)
    try:
        smtp_port = int(env.get("SMTP_PORT", "25"))
        job_timeout = int(env.get("NOTIFY_JOB_TIMEOUT_SECONDS", "30"))
        sweep = int(env.get("NOTIFY_SWEEP_SECONDS", "60"))
    except ValueError as exc:
        raise SettingsError(f"expected an integer: {exc}") from exc
    try:
        reconcile_interval = float(env.get("NOTIFY_RECONCILE_INTERVAL_SECONDS", "30"))
        reconcile_after = float(env.get("NOTIFY_RECONCILE_AFTER_SECONDS", "60"))
    except ValueError as exc:
        raise SettingsError(f"expected a number of seconds: {exc}") from exc
    smtp_host = env.get("SMTP_HOST", "localhost").strip()
    smtp_starttls = _flag(env.get("SMTP_STARTTLS"), default=False)
    _check_smtp(
        smtp_host,
        smtp_port,
        credentials=bool(env.get("SMTP_USERNAME") or env.get("SMTP_PASSWORD")),
        starttls=smtp_starttls,
        production=production and email_backend == "smtp",
    )
    return NotifySettings(
        sms_backend=cast("Literal['console', 'africastalking']", sms_backend),
        at_username=env.get("AT_USERNAME", "sandbox"),
        at_api_key=api_key,
        at_sender_id=env.get("AT_SENDER_ID") or None,
        at_base_url=base_url,
        email_backend=cast("Literal['console', 'smtp']", email_backend),
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_username=env.get("SMTP_USERNAME") or None,
        smtp_password=env.get("SMTP_PASSWORD") or None,
        smtp_starttls=smtp_starttls,
        admin_email=env.get("ADMIN_EMAIL", "admin@shop.example"),
        default_from_email=env.get("DEFAULT_FROM_EMAIL", "shop@shop.example"),
        shop_name=env.get("SHOP_NAME", "our shop"),
        currency=env.get("CURRENCY", "KES"),
        delivery_report_secret=env.get("AT_CALLBACK_SECRET", ""),
        job_timeout_seconds=job_timeout,
        sweep_interval_seconds=sweep,
        reconcile_interval_seconds=reconcile_interval,
        reconcile_after_seconds=reconcile_after,
    )


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _settings  # noqa: PLW0603
    if _settings is None:
        _settings = Settings.from_env()
    return _settings
