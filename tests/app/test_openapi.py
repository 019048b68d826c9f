"""The OpenAPI 3.1 document and its security schemes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from shop_kernel import TEXT_PATTERN


def test_schema_is_openapi_3_1_with_security_schemes(client: TestClient[Litestar]) -> None:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    schemes = schema["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An OAuth2 access token: `Authorization: Bearer <token>`",
    }
    flows = schemes["OAuth2"]["flows"]
    assert flows["authorizationCode"]["tokenUrl"] == "/oauth/token"
    assert set(flows["authorizationCode"]["scopes"]) == {"read", "write", "openid", "profile", "email"}
    assert flows["authorizationCode"]["authorizationUrl"] == "/oauth/authorize"
    assert "clientCredentials" in flows


def test_schema_documents_the_oauth_endpoints(client: TestClient[Litestar]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path in (
        "/oauth/authorize",
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/userinfo",
        "/oauth/jwks",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/api/oauth/clients",
    ):
        assert path in paths, path
    assert "PKCE" in paths["/oauth/authorize"]["get"]["description"]
    assert paths["/oauth/userinfo"]["get"]["security"] == [{"BearerToken": []}, {"OAuth2": ["openid"]}]


def test_schema_documents_the_contract_paths(client: TestClient[Litestar]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {"/api/auth/register", "/api/auth/profile", "/api/health", "/api/ready"} <= set(paths)
    assert set(paths["/api/auth/profile"]) == {"get", "put", "patch"}
    assert "security" not in paths["/api/auth/register"]["post"]
    assert paths["/api/auth/profile"]["put"]["security"] == [{"BearerToken": []}, {"OAuth2": ["write"]}]
    assert "201" in paths["/api/auth/register"]["post"]["responses"]


def test_interactive_docs_are_served(client: TestClient[Litestar]) -> None:
    response = client.get("/schema")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


@pytest.mark.backend
def test_docs_authorize_button_uses_pkce_and_an_absolute_redirect_uri(
    client: TestClient[Litestar], settings: Settings
) -> None:
    """Swagger UI's Authorize: PKCE, the redirect URI of the host the page was asked for, and the docs
    page's development client only where development data exists (never in production, which refuses it)."""
    html = client.get("/schema").text
    assert "oauth2RedirectUrl: 'http://testserver.local/schema/assets/swagger-ui-5.18.2/oauth2-redirect.html'" in html
    init = json.loads(re.search(r"ui\.initOAuth\((.*?)\)\s*</script>", html, re.S).group(1))  # type: ignore[union-attr]
    assert init["usePkceWithAuthorizationCodeGrant"] is True
    assert "clientId" not in init  # no development data here
    other_host = client.get("/schema", headers={"Host": "127.0.0.1:9000"}).text
    assert "oauth2RedirectUrl: 'http://127.0.0.1:9000/schema/assets/" in other_host
    hostile = client.get("/schema", headers={"Host": "evil.example');alert(1);//"})
    assert "alert(1)" not in hostile.text

    development = Settings(
        env="development",
        demo_data=True,
        database_url=settings.database_url,
        var_dir=settings.var_dir,
        worker_in_process=False,
    )
    with TestClient(create_app(development)) as dev_client:
        dev_html = dev_client.get("/schema").text
    assert '"clientId":"shop-api-docs"' in dev_html


def test_docs_can_be_switched_off(settings: Settings) -> None:
    hidden = Settings(env="test", database_url=settings.database_url, openapi_enabled=False, var_dir=settings.var_dir)
    with TestClient(create_app(hidden)) as client:
        assert client.get("/schema/openapi.json").status_code == 404
        assert client.get("/schema").status_code == 404
        assert client.get("/api/health/").status_code == 200


def test_catalog_is_documented_with_parameters_and_examples(client: TestClient[Litestar]) -> None:
    schema = client.get("/schema/openapi.json").json()
    paths = schema["paths"]
    assert {
        "/api/products",
        "/api/products/{product_id}",
        "/api/products/bulk_upload",
        "/api/products/categories",
        "/api/products/categories/{category_id}",
        "/api/products/categories/{category_id}/products",
        "/api/products/categories/{category_id}/average-price",
    } <= set(paths)
    listing = {p["name"]: p for p in paths["/api/products"]["get"]["parameters"]}
    assert set(listing) == {
        "page", "page_size", "search", "category", "min_price", "max_price", "in_stock", "is_active", "ordering"
    }  # fmt: skip
    assert all(p.get("description") for p in listing.values())
    assert "-price" in listing["ordering"]["schema"]["enum"]
    bulk = paths["/api/products/bulk_upload"]["post"]["requestBody"]["content"]
    assert bulk["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/ProductWrite"}
    assert "text/csv" in bulk
    product = schema["components"]["schemas"]["ProductWrite"]["properties"]
    assert product["price"]["examples"] == ["999.99"]
    assert paths["/api/products"]["post"]["security"] == [{"BearerToken": []}, {"OAuth2": ["write"]}]
    assert "security" not in paths["/api/products"]["get"]


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger", "/schema/redoc"])
def test_docs_pages_load_everything_from_this_server(client: TestClient[Litestar], page: str) -> None:
    """No CDN, no web fonts: the docs work on a machine without internet access."""
    html = client.get(page)
    assert html.status_code == 200
    # the one absolute URL is Swagger UI's OAuth2 redirect, on this server
    urls = re.findall(r"https?://[^'\"\s]*", html.text)
    assert [url for url in urls if not url.startswith(str(client.base_url))] == []
    assets = re.findall(r"""(?:src|href)=['"](/schema/assets/[^'"]+)['"]""", html.text)
    assert assets
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 500, asset


def _request_strings(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(where, string schema, patterns that apply to it: its own and its enclosing schemas') of every request."""
    components = document["components"]["schemas"]
    found: list[tuple[str, dict[str, Any], list[str]]] = []

    def walk(where: str, schema: dict[str, Any], patterns: list[str], seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(f"{where}->{name}", components[name], patterns, seen | {name})
            return
        patterns = [*patterns, schema["pattern"]] if "pattern" in schema else patterns
        types = schema.get("type", [])
        if "string" in (types if isinstance(types, list) else [types]):
            found.append((where, schema, patterns))
        for index, option in enumerate((*schema.get("oneOf", ()), *schema.get("anyOf", ()))):
            walk(f"{where}|{index}", option, patterns, seen)
        for name, sub in schema.get("properties", {}).items():
            walk(f"{where}.{name}", sub, [], seen)
        if "items" in schema:
            walk(f"{where}[]", schema["items"], [], seen)

    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in {"query", "path"}:
                    walk(f"{method} {path} {parameter['name']}", parameter["schema"], [], frozenset())
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                walk(f"{method} {path} {media_type}", content["schema"], [], frozenset())
    return found


def test_every_string_a_request_carries_states_the_text_rule(client: TestClient[Litestar]) -> None:
    """Clients and fuzzers read the kernel's text rule from the document: a pattern refusing control characters."""
    document = client.get("/schema/openapi.json").json()
    strings = _request_strings(document)
    assert len(strings) >= 55
    for where, schema, patterns in strings:
        if "enum" in schema or schema.get("format") == "binary":  # a file part's bytes are no text field
            continue
        assert patterns, where
        for text in ("a\x00b", "a\x1bb", "a\x7f\x00"):
            assert not all(re.search(pattern, text) for pattern in patterns), (where, patterns, repr(text))
        if TEXT_PATTERN in patterns:
            assert re.search(TEXT_PATTERN, "Ring twice,\tthen wait.\r\nThanks — Zoë")
    assert sum(TEXT_PATTERN in patterns for _, _, patterns in strings) >= 40
    answers = [op["responses"].get("400", {}) for item in document["paths"].values() for op in item.values()]
    assert sum("/problems/invalid-text" in answer.get("description", "") for answer in answers) >= 20
