"""Rate limits: per-client tiers counted in the session's real Redis, shared by every process that uses it."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
from litestar import Litestar
from litestar.testing import TestClient

from app.settings import Settings
from tests.conftest import forget_rate_limit_counts
from tests.factories import RegisterCustomerFactory
from tests.support.api import Api
from tests.support.live import live_server


def _registration() -> dict[str, object]:
    return dict(msgspec.to_builtins(RegisterCustomerFactory.build()))


def test_anonymous_callers_get_the_general_limit_then_429(limited: TestClient[Litestar]) -> None:
    remaining = []
    for _ in range(5):
        response = limited.get("/api/products/categories/")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "5"
        assert response.headers["RateLimit-Policy"] == "5; w=60"
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    refused = limited.get("/api/products/")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/rate-limited"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["X-Request-ID"]


def test_probes_and_metrics_are_never_limited(limited: TestClient[Litestar]) -> None:
    for _ in range(8):
        for path in ("/api/health/", "/metrics"):
            response = limited.get(path)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers


def test_each_signed_in_user_has_their_own_allowance(limited: TestClient[Litestar], api: Api) -> None:
    first, second = api.customer(), api.customer()
    for _ in range(5):
        assert limited.get("/api/auth/profile/", headers=first.headers).status_code == 200
    assert limited.get("/api/auth/profile/", headers=first.headers).status_code == 429
    assert limited.get("/api/auth/profile/", headers=second.headers).status_code == 200
    assert limited.get("/api/products/").status_code == 200  # anonymous callers are counted apart


def test_registration_has_a_stricter_limit_per_address(limited: TestClient[Litestar]) -> None:
    statuses = [limited.post("/api/auth/register/", json=_registration()).status_code for _ in range(2)]
    assert statuses == [201, 201]
    refused = limited.post("/api/auth/register/", json=_registration())
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Limit"] == "2"


def test_two_server_processes_share_one_limit(settings: Settings, redis_url: str, tmp_path: Path) -> None:
    """Two `shop serve` processes on one database (SQLite, then PostgreSQL) and one Redis: the 5th request
    overall is refused, whichever process it reaches."""
    forget_rate_limit_counts(redis_url)
    env = {
        "APP_ENV": "test",
        "DEMO_DATA": "false",
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(tmp_path),
        "REDIS_URL": redis_url,
        "WORKER_IN_PROCESS": "false",
        "RATE_LIMITS_ENABLED": "true",
        "RATE_LIMIT_PER_MINUTE": "4",
    }
    with live_server(env) as (first, _), live_server(env) as (second, _):
        statuses = [httpx.get(f"{base}/api/products/").status_code for base in (first, second, first, second)]
        assert statuses == [200] * 4
        assert httpx.get(f"{first}/api/products/").status_code == 429
        assert httpx.get(f"{second}/api/products/").status_code == 429


def test_the_document_names_429_on_every_operation_when_rates_are_limited(limited: TestClient[Litestar]) -> None:
    paths = limited.get("/schema/openapi.json").json()["paths"]
    answers = {
        f"{method.upper()} {path}": operation["responses"]
        for path, item in paths.items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert all("application/problem+json" in responses["429"]["content"] for responses in answers.values())
    # the sign-in pages keep their own HTML 429 (failed sign-ins) next to the rate limiter's problem document
    assert set(answers["POST /oauth/authorize"]["429"]["content"]) == {"text/html", "application/problem+json"}
    assert "408" in answers["POST /api/orders"]  # the body deadline
