"""Client management: the staff API, the CLI, and what disabling a client does."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient

from app.cli import main
from tests.identity.oauth import REDIRECT_URI, OAuthHarness, pkce_pair
from tests.support.api import Api, Caller


def test_staff_register_list_and_disable_clients(oauth: OAuthHarness, staff: Caller, api: Api) -> None:
    response = oauth.client.post(
        "/api/oauth/clients/",
        json={"name": "Warehouse", "redirect_uris": [REDIRECT_URI]},
        headers=staff.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["client_secret"]
    assert created["scopes"] == ["read", "write", "openid", "profile", "email"]
    assert created["public"] is False
    assert created["grant_types"] == ["authorization_code", "refresh_token"]
    listed = oauth.client.get("/api/oauth/clients/", headers=staff.headers).json()
    assert [client["client_id"] for client in listed] == [created["client_id"]]
    assert "client_secret" not in listed[0]  # shown once, at creation

    token = oauth.tokens_for(created, api.customer())
    disabled = oauth.client.post(f"/api/oauth/clients/{created['client_id']}/disable/", headers=staff.headers)
    assert disabled.status_code == 200
    assert disabled.json()["is_active"] is False
    # its tokens stop working at once, and it gets no new ones
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert oauth.client.get("/api/auth/profile/", headers=headers).status_code == 401
    refresh = oauth.token(created, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert refresh.json()["error"] == "invalid_client"
    page = oauth.client.get(oauth.authorize_url(created["client_id"], challenge=pkce_pair()[1]))
    assert page.status_code == 400
    missing = oauth.client.post("/api/oauth/clients/nope/disable/", headers=staff.headers)
    assert missing.status_code == 404


def test_only_staff_manage_clients(https: TestClient[Litestar], api: Api) -> None:
    customer = api.customer()
    assert https.get("/api/oauth/clients/", headers=customer.headers).status_code == 403
    assert https.post("/api/oauth/clients/", json={"name": "x"}, headers=customer.headers).status_code == 403
    assert https.get("/api/oauth/clients/").status_code == 401
    read_only_staff = api.staff(scopes=("read",))
    assert https.get("/api/oauth/clients/", headers=read_only_staff.headers).status_code == 200
    assert https.post("/api/oauth/clients/", json={"name": "x"}, headers=read_only_staff.headers).status_code == 403


@pytest.mark.backend
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "redirect_uris": ["http://app.example/cb"]}, "redirect_uris"),
        ({"name": "x", "redirect_uris": ["https://app.example/cb#frag"]}, "redirect_uris"),
        ({"name": "x", "redirect_uris": ["/relative"]}, "redirect_uris"),
        ({"name": "x", "redirect_uris": []}, "redirect_uris"),
        ({"name": "x", "redirect_uris": [REDIRECT_URI], "scopes": ["admin"]}, "scopes"),
        ({"name": "x", "redirect_uris": [REDIRECT_URI], "scopes": []}, "scopes"),
        ({"name": "x", "redirect_uris": [REDIRECT_URI], "grant_types": ["implicit"]}, "grant_types"),
        ({"name": "x", "redirect_uris": [REDIRECT_URI], "grant_types": ["password"]}, "grant_types"),
        ({"name": "x", "grant_types": []}, "grant_types"),
        ({"name": "x", "grant_types": ["refresh_token"]}, "grant_types"),
        ({"name": "x", "public": True, "grant_types": ["client_credentials"]}, "grant_types"),
    ],
)
def test_invalid_registrations_are_400_per_field(
    https: TestClient[Litestar], staff: Caller, body: dict[str, object], field: str
) -> None:
    response = https.post("/api/oauth/clients/", json=body, headers=staff.headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["errors"]


def test_loopback_http_redirects_are_allowed_for_native_apps(oauth: OAuthHarness) -> None:
    created = oauth.register(redirect_uris=("http://127.0.0.1:8765/cb", "http://localhost/cb", "http://[::1]/cb"))
    assert len(created["redirect_uris"]) == 3


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.usefixtures("cli_env")
def test_cli_creates_clients_and_prints_the_secret_once() -> None:
    assert run_cli("migrate")[0] == 0
    code, output = run_cli(
        "create-oauth-client", "--name", "Back office", "--confidential", "--redirect-uri", REDIRECT_URI
    )
    assert code == 0, output
    lines = dict(line.split(": ", 1) for line in output.strip().splitlines())
    assert lines["client_id"]
    assert len(lines["client_secret (shown once)"]) >= 40
    assert lines["type"].startswith("confidential")

    code, output = run_cli(
        "create-oauth-client",
        "--name",
        "Mobile",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
        "--scope",
        "openid read",
    )
    assert code == 0, output
    assert "client_secret" not in output
    assert "scopes: read openid" in output

    code, output = run_cli(
        "create-oauth-client", "--name", "Sync", "--grant", "client_credentials", "--scope", "read", "--introspect"
    )
    assert code == 0, output
    assert "grants: client_credentials" in output

    code, output = run_cli("create-oauth-client", "--name", "Bad", "--public", "--redirect-uri", "http://evil.example/")
    assert code == 1
    assert "redirect_uris" in output
