"""Settings come from the environment once; production refuses unsafe configuration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.settings import DEV_SECRET_KEY, RateLimits, Settings, SettingsError, get_settings, normalize_database_url
from shop_identity import SigningKeys, generate_private_key_pem

SIGNING_KEY = generate_private_key_pem()
PRODUCTION = {
    "APP_ENV": "production",
    "REDIS_URL": "redis://redis:6379/0",
    "DATABASE_URL": "postgresql://shop:pw@db/shop",
    "SECRET_KEY": "k" * 48,
    "OAUTH_ISSUER": "https://shop.example/",
    "OAUTH_SIGNING_KEY": SIGNING_KEY,
}


def test_development_defaults_are_embedded_and_seeded(tmp_path: Path) -> None:
    settings = Settings.from_env({"VAR_DIR": str(tmp_path)})
    assert settings.env == "development"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'shop.sqlite3'}"
    assert settings.demo_data is True
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.port == 8000
    assert settings.access_token_ttl == timedelta(hours=1)
    assert settings.is_sqlite
    assert settings.log_format == "console"  # text for the person running it
    assert settings.startup_warnings() == []
    assert Settings.from_env({"VAR_DIR": str(tmp_path), "LOG_FORMAT": "json"}).log_format == "json"


def test_production_settings() -> None:
    settings = Settings.from_env({**PRODUCTION, "PORT": "9000", "ACCESS_TOKEN_EXPIRE_SECONDS": "600"})
    assert settings.is_production
    assert settings.database_url == "postgresql+asyncpg://shop:pw@db/shop"
    assert settings.demo_data is False
    assert settings.port == 9000
    assert settings.access_token_ttl == timedelta(minutes=10)
    assert not settings.is_sqlite
    assert settings.oauth_issuer == "https://shop.example"
    assert settings.signing_key_pem() == SIGNING_KEY.strip()
    assert settings.secure_cookies is True
    assert settings.log_format == "json"  # lines for the log collector
    # said once the process has its log format (settings are read before), not printed as a bare line
    assert settings.startup_warnings() == ["production with a console notification backend: nothing is delivered"]
    assert Settings.from_env({**PRODUCTION, "LOG_FORMAT": "console"}).log_format == "console"


def test_signing_keys_from_files_with_a_retired_key_published(tmp_path: Path) -> None:
    current, retired = tmp_path / "current.pem", tmp_path / "retired.pem"
    current.write_text(SIGNING_KEY)
    retired.write_text(generate_private_key_pem())
    environ = {k: v for k, v in PRODUCTION.items() if k != "OAUTH_SIGNING_KEY"}
    settings = Settings.from_env(
        {**environ, "OAUTH_SIGNING_KEY_FILE": str(current), "OAUTH_RETIRED_SIGNING_KEY_FILES": f"{retired}, "}
    )
    keys = SigningKeys.from_pems(settings.signing_key_pem(), settings.oauth_retired_signing_key_pems)
    published = [key["kid"] for key in keys.jwks()["keys"]]
    assert published[0] == keys.kid
    assert len(published) == 2
    assert all("d" not in key for key in keys.jwks()["keys"])  # public parts only


def test_development_generates_its_signing_key_once(tmp_path: Path) -> None:
    settings = Settings.from_env({"VAR_DIR": str(tmp_path)})
    first = settings.signing_key_pem()
    assert (tmp_path / "oauth-signing-key.pem").stat().st_mode & 0o777 == 0o600
    assert Settings.from_env({"VAR_DIR": str(tmp_path)}).signing_key_pem() == first
    assert settings.secure_cookies is False


def test_production_settings_built_in_code_still_need_a_signing_key() -> None:
    with pytest.raises(SettingsError, match="OAUTH_SIGNING_KEY"):
        Settings(env="production").signing_key_pem()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL is required"),
        ({"REDIS_URL": ""}, "REDIS_URL is required"),
        ({"SMS_BACKEND": "africastalking"}, "AT_API_KEY is required"),
        ({"SMS_BACKEND": "pigeon"}, "SMS_BACKEND"),
        ({"SMTP_PORT": "smtp"}, "integer"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY"),
        ({"DEMO_DATA": "true"}, "DEMO_DATA cannot be enabled in production"),
        ({"OAUTH_ISSUER": ""}, "OAUTH_ISSUER"),
        ({"OAUTH_ISSUER": "http://shop.example"}, "OAUTH_ISSUER"),
        ({"OAUTH_SIGNING_KEY": ""}, "OAUTH_SIGNING_KEY"),
        ({"OAUTH_SIGNING_KEY_FILE": "/nonexistent/key.pem"}, "cannot read the signing key file"),
    ],
)
def test_production_refuses_unsafe_configuration(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**PRODUCTION, **change})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"PORT": "eighty"}, "integer"),
        ({"DEMO_DATA": "maybe"}, "boolean"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"CORS_ALLOW_ORIGINS": "*"}, "CORS_ALLOW_ORIGINS"),
        ({"CORS_ALLOW_ORIGINS": "https://ok.example, javascript:alert(1)"}, "CORS_ALLOW_ORIGINS"),
        ({"RATE_LIMIT_ORDERS_PER_MINUTE": "lots"}, "integer"),
    ],
)
def test_invalid_values_are_reported(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("sqlite:///data/db.sqlite3", "sqlite+aiosqlite:///data/db.sqlite3"),
        ("postgresql+asyncpg://h/db", "postgresql+asyncpg://h/db"),
    ],
)
def test_database_urls_get_async_drivers(given: str, used: str) -> None:
    assert normalize_database_url(given) == used


def test_flags_and_test_environment() -> None:
    settings = Settings.from_env({"APP_ENV": "test", "DEMO_DATA": "yes", "OPENAPI_ENABLED": "off", "REDIS_URL": ""})
    assert settings.demo_data is True
    assert settings.openapi_enabled is False
    assert settings.redis_url is None


def test_settings_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import app.settings as module

    monkeypatch.setattr(module, "_settings", None)
    monkeypatch.setenv("PORT", "8123")
    first = get_settings()
    monkeypatch.setenv("PORT", "8124")
    assert get_settings() is first
    assert first.port == 8123


def test_cors_origins_and_rate_limits_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CORS_ALLOW_ORIGINS": "https://shop.example/, http://localhost:3000",
            "RATE_LIMIT_PER_MINUTE": "100",
            "RATE_LIMIT_AUTH_PER_MINUTE": "3",
            "RATE_LIMIT_ORDERS_PER_MINUTE": "7",
        }
    )
    assert settings.cors_allow_origins == ("https://shop.example", "http://localhost:3000")
    assert settings.rate_limits == RateLimits(general_per_minute=100, auth_per_minute=3, orders_per_minute=7)
    assert Settings.from_env({}).cors_allow_origins == ()
    assert not Settings.from_env({"RATE_LIMITS_ENABLED": "off"}).rate_limits.enabled
