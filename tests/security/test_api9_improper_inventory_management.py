"""OWASP API9:2023 Improper inventory management: what is served is what is documented, and the documents
can be taken off a production deployment.

The classification of every operation (who may call it) is in test_api5_function_level_authorization.py;
fuzzing (tests/app/test_fuzz.py) checks every documented operation answers as documented.
"""

from __future__ import annotations

from dataclasses import replace

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from tests.security.conftest import production_settings


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


def test_every_operation_is_versioned_under_one_prefix_or_is_a_protocol_endpoint(client: TestClient[Litestar]) -> None:
    """No stray, forgotten or debug routes: the API under /api/, the OAuth protocol where RFC 8414 and OpenID
    Connect put it, and the probes and metrics the deployment files name."""
    documented = set(client.get("/schema/openapi.json").json()["paths"])
    stray = {
        path
        for path in documented
        if not path.startswith(("/api/", "/oauth/", "/.well-known/")) and path not in {"/metrics"}
    }
    assert stray == set()
    for debug_path in ("/debug", "/admin", "/api/debug", "/_internal", "/.env", "/api/v0/products"):
        assert client.get(debug_path).status_code == 404


def test_docs_and_schema_can_be_switched_off_in_production(settings: Settings) -> None:
    with TestClient(create_app(replace(production_settings(settings), openapi_enabled=False))) as hidden:
        for path in ("/schema", "/schema/openapi.json", "/schema/openapi.yaml", "/schema/swagger", "/schema/redoc"):
            assert hidden.get(path).status_code == 404, path
        assert hidden.get("/api/health/").status_code == 200
        assert hidden.get("/api/products/").status_code == 200
