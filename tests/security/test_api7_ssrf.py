"""OWASP API7:2023 Server-side request forgery: every URL the API stores or calls is checked, none is fetched
on a client's say-so.

The inventory: the API *calls* two configured addresses, Africa's Talking (`AT_BASE_URL`) and the SMTP
server (`SMTP_HOST`), checked when the settings are read so a bad value stops the process before it
serves; it *stores* one kind of URL, OAuth client redirect URIs (staff API and `shop create-oauth-client`),
which are only compared and redirected to, never requested. Products have no URL fields, and no request
schema has any other URL-like field (a test below keeps it that way).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient

import app.settings as settings_module
from app.cli import main
from app.settings import Settings, SettingsError
from tests.factories import ProductWriteFactory
from tests.identity.oauth import OAuthHarness, pkce_pair
from tests.security.conftest import is_problem
from tests.support.api import Caller
from tests.support.live import free_port

CLIENTS = "/api/oauth/clients/"
BAD_REDIRECT_URIS = [
    pytest.param("https://app.example@evil.example/cb", id="userinfo-disguising-the-host"),
    pytest.param("https://user:pw@app.example/cb", id="userinfo"),
    pytest.param("https://*.app.example/cb", id="wildcard-host"),
    pytest.param("https://app.example/*", id="wildcard-path"),
    pytest.param("https://app.example/cb#token", id="fragment"),
    pytest.param("https://app.example/cb#", id="empty-fragment"),
    pytest.param("http://app.example/cb", id="http-off-loopback"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="http-metadata-address"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("data:text/html,<script>alert(1)</script>", id="data"),
    pytest.param("file:///etc/passwd", id="file"),
    pytest.param("com.example.app:/cb", id="custom-scheme"),
    pytest.param("/relative/cb", id="relative"),
    pytest.param("//app.example/cb", id="scheme-relative"),
    pytest.param("https:///cb", id="no-host"),
    pytest.param("https://app.example:99999/cb", id="port-out-of-range"),
    pytest.param("https://app.example/c\x00b", id="nul"),
    pytest.param("https://app.example/cb\r\nLocation: https://evil.example", id="header-injection"),
    pytest.param("https://app.example/c b", id="space"),
    pytest.param("https://app.example\\@evil.example/cb", id="backslash"),
    pytest.param("https://app.example/" + "a" * 2000, id="too-long"),
]


def registered_clients(https: TestClient[Litestar], staff: Caller) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = https.get(CLIENTS, headers=staff.headers).json()
    return listed


@pytest.mark.parametrize("uri", BAD_REDIRECT_URIS)
def test_unsafe_redirect_uris_are_400_and_nothing_is_stored(
    https: TestClient[Litestar], staff: Caller, uri: str
) -> None:
    body = {"name": "Partner app", "redirect_uris": ["https://app.example/ok", uri]}
    response = https.post(CLIENTS, json=body, headers=staff.headers)
    assert response.status_code == 400, response.text
    assert is_problem(response)
    assert any(field.startswith("redirect_uris") for field in response.json()["errors"]), response.text
    assert registered_clients(https, staff) == []


def test_at_most_twenty_redirect_uris(https: TestClient[Litestar], staff: Caller) -> None:
    uris = [f"https://app.example/cb/{n}" for n in range(21)]
    response = https.post(CLIENTS, json={"name": "Many", "redirect_uris": uris}, headers=staff.headers)
    assert response.status_code == 400
    assert is_problem(response)
    assert registered_clients(https, staff) == []


def test_absolute_https_and_loopback_redirect_uris_are_stored_exactly(
    https: TestClient[Litestar], staff: Caller
) -> None:
    uris = ["https://app.example:8443/oauth/cb?tenant=7", "http://127.0.0.1:51234/cb", "http://[::1]/cb"]
    response = https.post(CLIENTS, json={"name": "Good", "public": True, "redirect_uris": uris}, headers=staff.headers)
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == uris


@pytest.mark.backend
def test_the_cli_refuses_the_same_redirect_uris_and_stores_nothing(cli_env: Path) -> None:
    assert CliRunner().invoke(main, ["migrate"], catch_exceptions=False).exit_code == 0
    for uri in ("https://app.example@evil.example/cb", "https://*.app.example/cb", "http://app.example/cb"):
        result = CliRunner().invoke(
            main, ["create-oauth-client", "--name", "Bad", "--public", "--redirect-uri", uri], catch_exceptions=False
        )
        assert result.exit_code == 1, result.output
        assert "redirect_uris" in result.output
    with sqlite3.connect(cli_env) as database:
        assert database.execute("SELECT count(*) FROM identity_oauth_client").fetchone() == (0,)


@pytest.fixture
def listener() -> Iterator[list[str]]:
    """An HTTP server on loopback that records every request made to it."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_POST = do_HEAD = do_GET

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen.append(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_registered_redirect_uri_is_never_fetched(oauth: OAuthHarness, listener: list[str]) -> None:
    redirect_uri = f"{listener.pop(0)}/cb"
    created = oauth.register(redirect_uris=(redirect_uri,))
    page = oauth.client.get(
        oauth.authorize_url(created["client_id"], challenge=pkce_pair()[1], redirect_uri=redirect_uri)
    )
    assert page.status_code == 200
    assert listener == []


@pytest.mark.backend
def test_no_request_schema_has_a_url_field_other_than_redirect_uris(client: TestClient[Litestar]) -> None:
    """A new URL-like field in any request body must come with a check (and be added here)."""
    document = client.get("/schema/openapi.json").json()
    schemas = document["components"]["schemas"]
    url_like = ("url", "uri", "href", "link", "image", "callback", "webhook", "website", "avatar", "logo")
    found = set()
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                found |= _url_fields(media.get("schema", {}), schemas, url_like, seen=set())
    # the token request's redirect_uri is compared with the one the code was issued for, never fetched
    assert found == {"ClientRegistration.redirect_uris", "TokenRequest.redirect_uri"}


def _url_fields(schema: dict[str, Any], schemas: dict[str, Any], url_like: tuple[str, ...], seen: set[str]) -> set[str]:
    found: set[str] = set()
    if ref := schema.get("$ref"):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return found
        seen.add(name)
        target = schemas[name]
        for field, spec in target.get("properties", {}).items():
            if any(word in field.lower() for word in url_like) or spec.get("format") in {"uri", "url"}:
                found.add(f"{name}.{field}")
            found |= _url_fields(spec, schemas, url_like, seen)
        return found
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found |= _url_fields(schema[key], schemas, url_like, seen)
    for key in ("oneOf", "anyOf", "allOf"):
        for option in schema.get(key, []):
            found |= _url_fields(option, schemas, url_like, seen)
    return found


def test_products_take_no_urls(client: TestClient[Litestar], staff: Caller) -> None:
    body = msgspec.to_builtins(ProductWriteFactory.build())
    body["image_url"] = "http://169.254.169.254/latest/meta-data/"
    product = client.post("/api/products/", json=body, headers=staff.headers).json()
    assert "image_url" not in product
    assert "image_url" not in client.get(f"/api/products/{product['id']}/").text


PRODUCTION = {
    "APP_ENV": "production",
    "REDIS_URL": "redis://redis:6379/0",
    "DATABASE_URL": "postgresql://shop:pw@db/shop",
    "SECRET_KEY": "k" * 48,
    "OAUTH_ISSUER": "https://shop.example",
    "OAUTH_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nnot checked here\n-----END PRIVATE KEY-----",
}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AT_BASE_URL": "https://user:pw@api.africastalking.com"}, "AT_BASE_URL must not contain a user"),
        ({"AT_BASE_URL": "https://api.africastalking.com@169.254.169.254"}, "AT_BASE_URL must not contain a user"),
        ({"AT_BASE_URL": "http://api.africastalking.com"}, "AT_BASE_URL must be an https URL in production"),
        ({"AT_BASE_URL": "ftp://api.africastalking.com"}, "AT_BASE_URL must be an absolute https URL"),
        ({"AT_BASE_URL": "file:///etc/passwd"}, "AT_BASE_URL must be an absolute https URL"),
        ({"AT_BASE_URL": "api.africastalking.com"}, "AT_BASE_URL must be an absolute https URL"),
        ({"AT_BASE_URL": "https://api.africastalking.com/?next=x"}, "must not contain a query or fragment"),
        ({"AT_BASE_URL": "https://api.africastalking.com/#x"}, "must not contain a query or fragment"),
        ({"AT_BASE_URL": "https://api.africastalking.com:99999"}, "AT_BASE_URL is not a valid URL"),
        ({"AT_BASE_URL": "https://api.africastalking.com\n.evil"}, "control characters"),
        ({"AT_ENVIRONMENT": "staging"}, "AT_ENVIRONMENT"),
        ({"OAUTH_ISSUER": "https://user@shop.example"}, "OAUTH_ISSUER must not contain a user"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": "smtp://mail.example"}, "SMTP_HOST must be a host name"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": "user@mail.example"}, "SMTP_HOST must be a host name"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": "mail.example:25"}, "SMTP_HOST must be a host name"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": "mail.example/relay"}, "SMTP_HOST must be a host name"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": ""}, "SMTP_HOST must be a host name"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_PORT": "70000"}, "SMTP_PORT"),
        (
            {"EMAIL_BACKEND": "smtp", "SMTP_HOST": "mail.example", "SMTP_USERNAME": "shop", "SMTP_PASSWORD": "pw"},
            "SMTP_STARTTLS must be on in production",
        ),
    ],
)
def test_outbound_addresses_are_checked_when_the_settings_are_read(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**PRODUCTION, **environ})


def test_good_outbound_addresses_are_accepted() -> None:
    production = Settings.from_env(
        {
            **PRODUCTION,
            "AT_BASE_URL": "https://api.africastalking.com/",
            "EMAIL_BACKEND": "smtp",
            "SMTP_HOST": "smtp.mail.example",
            "SMTP_USERNAME": "shop",
            "SMTP_PASSWORD": "pw",
            "SMTP_STARTTLS": "true",
        }
    )
    assert production.notify.at_base_url == "https://api.africastalking.com"
    assert Settings.from_env({**PRODUCTION, "AT_ENVIRONMENT": "live"}).notify.at_base_url.startswith("https://")
    # outside production, plain http reaches loopback test doubles; SMTP to an IP address is fine
    development = Settings.from_env({"AT_BASE_URL": "http://127.0.0.1:8025", "SMTP_HOST": "::1"})
    assert development.notify.at_base_url == "http://127.0.0.1:8025"


@pytest.mark.backend
def test_a_process_with_a_bad_address_does_not_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(settings_module, "_settings", None)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("AT_BASE_URL", "https://key@api.africastalking.com")
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 1
    assert "configuration error: AT_BASE_URL must not contain a user name or password" in result.output
    assert not (tmp_path / "shop.sqlite3").exists()
