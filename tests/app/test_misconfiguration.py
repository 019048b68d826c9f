"""OWASP API8 (security misconfiguration) and API9 (improper inventory): headers, methods, routes vs schema."""

from __future__ import annotations

import asyncio

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from app.security import HSTS, security_headers


def test_json_answers_carry_security_headers_and_forbid_rendering(client: TestClient[Litestar]) -> None:
    for response in (client.get("/api/products/"), client.get("/api/orders/"), client.get("/api/nowhere/")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "Strict-Transport-Security" not in response.headers  # development and test: no TLS in front


def test_the_docs_page_keeps_its_scripts(client: TestClient[Litestar]) -> None:
    page = client.get("/schema")
    assert page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" not in page.headers
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_production_adds_hsts() -> None:
    message = {"type": "http.response.start", "status": 200, "headers": []}
    asyncio.run(security_headers(production=True)(message, {}))  # type: ignore[arg-type]
    assert (b"strict-transport-security", HSTS.encode()) in message["headers"]


def test_wrong_method_is_405_with_allow(client: TestClient[Litestar]) -> None:
    response = client.delete("/api/orders/")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {"GET", "POST"} <= {method.strip() for method in response.headers["Allow"].split(",")}


def test_every_served_route_is_documented_and_every_documented_path_is_served(client: TestClient[Litestar]) -> None:
    documented = set(client.get("/schema/openapi.json").json()["paths"])
    served = {
        route.path_format.rstrip("/") or "/"
        for route in client.app.routes
        if isinstance(route, HTTPRoute)
        and not route.path.startswith("/schema")
        and any(handler.resolve_include_in_schema() for handler in route.route_handlers)
    }
    assert served == {path.rstrip("/") or "/" for path in documented}
