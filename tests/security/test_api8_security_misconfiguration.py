"""OWASP API8:2023 Security misconfiguration: security headers, HSTS in production, 405 with Allow, and no
stack trace or internal detail in any error answer. Strict CORS is in tests/app/test_cors.py; production
refusing demo data, default secrets and the demo tokens in tests/app/test_settings.py and test_api2."""

from __future__ import annotations

import asyncio
import logging

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from app.edge import HSTS, edge_headers_for_unrouted
from app.main import create_app
from app.settings import Settings
from shop_kernel import problem_exception_handlers
from tests.security.conftest import production_settings


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
    message = {"type": "http.response.start", "status": 404, "headers": []}
    asyncio.run(edge_headers_for_unrouted(production=True)(message, {"headers": []}))  # type: ignore[arg-type]
    assert HSTS in message["headers"]


def test_wrong_method_is_405_with_allow(client: TestClient[Litestar]) -> None:
    response = client.delete("/api/orders/")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {"GET", "POST"} <= {method.strip() for method in response.headers["Allow"].split(",")}


def test_an_unexpected_error_answers_a_bare_500_without_internals(caplog: pytest.LogCaptureFixture) -> None:
    """The kernel's handlers, as every plugin installs them: the traceback goes to the log, the client gets a
    problem document with nothing of the exception in it (and the app never runs in debug mode)."""

    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("database password is hunter2 at /srv/app/secret.py line 12")

    app = Litestar([boom], exception_handlers=problem_exception_handlers())
    assert app.debug is False
    errors = logging.getLogger("shop.errors")  # the app's logging setup may stop propagation: listen right here
    errors.addHandler(caplog.handler)
    try:
        with TestClient(app) as client:
            response = client.get("/boom")
    finally:
        errors.removeHandler(caplog.handler)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "instance": "/boom",
    }
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "hunter2" in caplog.text  # the operators still see it


def test_the_composed_app_never_runs_in_debug_mode(client: TestClient[Litestar], settings: Settings) -> None:
    with TestClient(create_app(production_settings(settings))) as prod_client:
        for app_client in (client, prod_client):
            assert app_client.app.debug is False
            unknown = app_client.get("/api/no-such-thing/")
            assert unknown.status_code == 404
            assert "Traceback" not in unknown.text
            assert unknown.headers["content-type"].startswith("application/problem+json")
            bad = app_client.post("/api/products/", content=b"{not json", headers={"Content-Type": "application/json"})
            assert bad.status_code in {400, 401}
            assert "Traceback" not in bad.text
            assert "msgspec" not in bad.text
        assert "strict-transport-security" in prod_client.get("/api/health/").headers
        assert "strict-transport-security" in prod_client.get("/api/no-such-thing/").headers
