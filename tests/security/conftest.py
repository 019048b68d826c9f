"""Fixtures shared by the OWASP API Security Top 10 modules."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from app.settings import Settings
from shop_identity import generate_private_key_pem


def operations(client: TestClient[Litestar]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation) for every operation of the served OpenAPI document."""
    document = client.get("/schema/openapi.json").json()
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def concrete(path: str, **values: str) -> str:
    """`/api/products/{product_id}` with every path parameter filled in (1 unless given)."""
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        name = path[start + 1 : end].split(":", maxsplit=1)[0]
        path = path[:start] + values.get(name, "1") + path[end + 1 :]
    return path


def is_problem(response: Any) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/problem+json")


def production_settings(settings: Settings) -> Settings:
    """Production settings (no demo data, a real secret and signing key) over the test session's stores."""
    return Settings(
        env="production",
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        secret_key="s" * 40,
        demo_data=False,
        oauth_signing_key_pem=generate_private_key_pem(),
        var_dir=settings.var_dir,
    )
