"""All configuration, read once from the environment. Production refuses unsafe or missing values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal, cast

__all__ = ("Settings", "SettingsError", "get_settings")

Environment = Literal["development", "test", "production"]
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789"  # noqa: S105 - refused in production


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
class Settings:
    env: Environment = "development"
    database_url: str = ""
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

    @property
    def is_production(self) -> bool:
        return self.env == "production"

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
            ttl = int(env.get("ACCESS_TOKEN_EXPIRE_SECONDS", "3600"))
            refresh_ttl = int(env.get("REFRESH_TOKEN_EXPIRE_SECONDS", str(7 * 24 * 3600)))
        except ValueError as exc:
            raise SettingsError(f"expected an integer: {exc}") from exc
        return cls(
            env=cast("Environment", app_env),
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=secret_key or DEV_SECRET_KEY,
            host=env.get("HOST", "127.0.0.1"),
            port=port,
            var_dir=var_dir,
            demo_data=demo_data,
            openapi_enabled=_flag(env.get("OPENAPI_ENABLED"), default=True),
            access_token_ttl=timedelta(seconds=ttl),
            refresh_token_ttl=timedelta(seconds=refresh_ttl),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
        )


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _settings  # noqa: PLW0603
    if _settings is None:
        _settings = Settings.from_env()
    return _settings
