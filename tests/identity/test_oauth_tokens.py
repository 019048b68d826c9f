"""Refresh rotation, client credentials, revocation, introspection and token endpoint errors."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio.from_thread
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity.models import AccessToken
from shop_identity.oauth.store import OAuthStore, TokenView
from shop_identity.oauth.web import run_authlib_in_transaction
from shop_kernel import Unit
from tests.identity.oauth import HTTPS_BASE, REDIRECT_URI, OAuthHarness
from tests.support.api import Api


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    first = oauth.tokens_for(app, api.customer())
    second = oauth.token(app, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    assert set(rotated["scope"].split()) == {"read", "write"}
    assert oauth.client.get("/api/auth/profile/", headers=bearer(rotated)).status_code == 200

    reused = oauth.token(app, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # the whole family is gone: the newest access token and refresh token too
    assert oauth.client.get("/api/auth/profile/", headers=bearer(rotated)).status_code == 401
    assert oauth.client.get("/api/auth/profile/", headers=bearer(first)).status_code == 401
    latest = oauth.token(app, grant_type="refresh_token", refresh_token=rotated["refresh_token"])
    assert latest.json()["error"] == "invalid_grant"


def at_once(oauth: OAuthHarness, forms: list[dict[str, str]]) -> list[httpx.Response]:
    """POST every form to the token endpoint at the same moment, on the app's own event loop."""
    return oauth.api.at_once("POST", "/oauth/token", [{"data": form} for form in forms], base_url=HTTPS_BASE)


def test_simultaneous_exchanges_of_one_code_or_one_refresh_token_give_one_token(oauth: OAuthHarness, api: Api) -> None:
    """Each request's storage calls share one transaction; a code and a refresh token are still spent once."""
    app = oauth.register()
    code, verifier = oauth.code_for(app, api.customer())
    exchange = {
        "grant_type": "authorization_code",
        "client_id": app["client_id"],
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    answers = at_once(oauth, [exchange] * 6)
    assert Counter(answer.status_code for answer in answers) == {200: 1, 400: 5}, [a.text for a in answers]
    assert {answer.json()["error"] for answer in answers if answer.status_code == 400} == {"invalid_grant"}
    (tokens,) = [answer.json() for answer in answers if answer.status_code == 200]
    # one token stored; a loser that read the code after the winner committed saw a reused code and may
    # have revoked the winner's family (RFC 6749 section 4.1.2), which the refresh below allows for

    async def stored(session: AsyncSession) -> int:
        return len(
            (await session.scalars(select(AccessToken.id).where(AccessToken.client_id == app["client_id"]))).all()
        )

    assert oauth.api.run(stored) == 1

    refresh = {"grant_type": "refresh_token", "client_id": app["client_id"], "refresh_token": tokens["refresh_token"]}
    answers = at_once(oauth, [refresh] * 6)
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses[200] <= 1, [a.text for a in answers]
    assert statuses[400] == 6 - statuses[200]
    # the losers presented a spent refresh token: the whole family is revoked, the winner's new token too
    for answer in answers:
        if answer.status_code == 200:
            assert oauth.client.get("/api/auth/profile/", headers=bearer(answer.json())).status_code == 401
    assert oauth.client.get("/api/auth/profile/", headers=bearer(tokens)).status_code == 401


def test_what_authlib_wrote_is_rolled_back_when_it_raises_instead_of_answering(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    tokens = oauth.tokens_for(app, api.customer())

    async def scenario(session: AsyncSession) -> TokenView | None:
        store = OAuthStore(Unit(session))
        token = await store.find_token(tokens["access_token"])
        assert token is not None

        def revoke_then_fail() -> Any:  # stands in for authlib: a storage call, then an exception, no answer
            anyio.from_thread.run(store.revoke_token, token.id)
            raise RuntimeError("no answer")

        with pytest.raises(RuntimeError, match="no answer"):
            await run_authlib_in_transaction(store, revoke_then_fail)
        return await OAuthStore(Unit(session)).find_token(tokens["access_token"])

    after = oauth.api.run(scenario)
    assert after is not None
    assert not after.revoked
    assert oauth.client.get("/api/auth/profile/", headers=bearer(tokens)).status_code == 200


def test_refresh_may_narrow_but_not_widen_the_scope(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    token = oauth.tokens_for(app, api.customer(), scope="read write")
    narrowed = oauth.token(app, grant_type="refresh_token", refresh_token=token["refresh_token"], scope="read")
    assert narrowed.json()["scope"] == "read"
    wider = oauth.token(
        app, grant_type="refresh_token", refresh_token=narrowed.json()["refresh_token"], scope="read openid"
    )
    assert wider.json()["error"] == "invalid_scope"


def test_a_refresh_token_belongs_to_its_client(oauth: OAuthHarness, api: Api) -> None:
    mine, theirs = oauth.register(), oauth.register(name="Other")
    token = oauth.tokens_for(mine, api.customer())
    stolen = oauth.token(theirs, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert stolen.json()["error"] == "invalid_grant"
    assert oauth.token(mine, grant_type="refresh_token", refresh_token=token["refresh_token"]).status_code == 200


def test_client_credentials_give_a_service_token_without_a_user(oauth: OAuthHarness, api: Api) -> None:
    service = oauth.register(
        public=False, grant_types=("client_credentials",), redirect_uris=(), scopes=("read", "write")
    )
    response = oauth.token(service, grant_type="client_credentials", scope="read")
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["scope"] == "read"
    assert "refresh_token" not in token
    # customer endpoints need a user
    profile = oauth.client.get("/api/auth/profile/", headers=bearer(token))
    assert profile.status_code == 403
    assert oauth.client.get("/api/orders/", headers=bearer(token)).status_code == 403
    # the public catalog is readable
    assert oauth.client.get("/api/products/", headers=bearer(token)).status_code == 200
    # without a scope it gets what it is registered for
    assert set(oauth.token(service, grant_type="client_credentials").json()["scope"].split()) == {"read", "write"}


def test_grants_a_client_is_not_registered_for_are_refused(oauth: OAuthHarness, api: Api) -> None:
    public = oauth.register(public=True)
    refused = oauth.token(public, grant_type="client_credentials")
    assert refused.json()["error"] == "invalid_client"
    confidential = oauth.register(public=False)
    assert oauth.token(confidential, grant_type="client_credentials").json()["error"] == "unauthorized_client"
    for grant in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        answer = oauth.token(public, grant_type=grant, username="a", password="b")
        assert answer.status_code == 400
        assert answer.json()["error"] == "unsupported_grant_type"


def test_revoked_access_token_is_refused_on_the_next_request(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    token = oauth.tokens_for(app, api.customer())
    assert oauth.client.get("/api/auth/profile/", headers=bearer(token)).status_code == 200  # now cached
    revoked = oauth.endpoint("/oauth/revoke", app, token=token["access_token"], token_type_hint="access_token")
    assert revoked.status_code == 200
    assert revoked.json() == {}
    refused = oauth.client.get("/api/auth/profile/", headers=bearer(token))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    # the refresh token issued with it is revoked as well; revoking again or something unknown is fine
    assert oauth.token(app, grant_type="refresh_token", refresh_token=token["refresh_token"]).status_code == 400
    assert oauth.endpoint("/oauth/revoke", app, token=token["access_token"]).status_code == 200
    assert oauth.endpoint("/oauth/revoke", app, token="never-issued").status_code == 200


def test_revoking_a_refresh_token_revokes_its_family(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(public=False)
    token = oauth.tokens_for(app, api.customer())
    assert oauth.endpoint("/oauth/revoke", app, token=token["refresh_token"]).status_code == 200
    assert oauth.client.get("/api/auth/profile/", headers=bearer(token)).status_code == 401


def test_a_client_cannot_revoke_another_clients_token(oauth: OAuthHarness, api: Api) -> None:
    mine, theirs = oauth.register(), oauth.register(name="Other")
    token = oauth.tokens_for(mine, api.customer())
    assert oauth.endpoint("/oauth/revoke", theirs, token=token["access_token"]).status_code == 400
    assert oauth.client.get("/api/auth/profile/", headers=bearer(token)).status_code == 200


def test_introspection(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(public=False)
    user = api.customer()
    token = oauth.tokens_for(app, user)
    live = oauth.endpoint("/oauth/introspect", app, token=token["access_token"])
    assert live.status_code == 200
    info = live.json()
    assert info["active"] is True
    assert info["client_id"] == app["client_id"]
    assert info["username"] == user.username
    assert info["sub"] == str(user.id)
    assert info["token_type"] == "Bearer"
    assert info["exp"] - info["iat"] == 3600
    refresh = oauth.endpoint("/oauth/introspect", app, token=token["refresh_token"], token_type_hint="refresh_token")
    assert refresh.json()["active"] is True
    assert refresh.json()["exp"] - refresh.json()["iat"] == 7 * 24 * 3600

    # other clients learn nothing, resource servers may ask about any token
    other = oauth.register(public=False, name="Other")
    assert oauth.endpoint("/oauth/introspect", other, token=token["access_token"]).json() == {"active": False}
    resource_server = oauth.register(
        public=False, grant_types=("client_credentials",), redirect_uris=(), scopes=("read",), may_introspect=True
    )
    assert oauth.endpoint("/oauth/introspect", resource_server, token=token["access_token"]).json()["active"]
    demo_like = api.issue_token(user.id)
    assert oauth.endpoint("/oauth/introspect", resource_server, token=demo_like).json()["active"]

    oauth.endpoint("/oauth/revoke", app, token=token["access_token"])
    assert oauth.endpoint("/oauth/introspect", app, token=token["access_token"]).json() == {"active": False}
    assert oauth.endpoint("/oauth/introspect", app, token="garbage").json() == {"active": False}


def test_public_clients_cannot_introspect(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(public=True)
    token = oauth.tokens_for(app, api.customer())
    response = oauth.endpoint("/oauth/introspect", app, token=token["access_token"])
    assert response.status_code in {400, 401}
    assert response.json()["error"] == "invalid_client"


@pytest.mark.backend
def test_public_clients_may_use_http_basic_with_an_empty_secret(oauth: OAuthHarness, api: Api) -> None:
    """requests-oauthlib's default for a client without a secret (decision 112); anything else is told what
    to send instead of authlib's "cannot authenticate with methods: [...]"."""
    app, other = oauth.register(public=True), oauth.register(public=True, name="Other")
    code, verifier = oauth.code_for(app, api.customer())
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}

    with_secret = oauth.client.post("/oauth/token", data=form, auth=httpx.BasicAuth(app["client_id"], "guess"))
    assert with_secret.status_code == 401
    assert with_secret.json()["error"] == "invalid_client"
    description = with_secret.json()["error_description"]
    assert f"Client {app['client_id']} is public and has no secret" in description
    assert "include_client_id=True" in description
    assert "HTTP Basic with the client id and an empty password" in description
    assert with_secret.headers["www-authenticate"].startswith('Basic error="invalid_client"')
    mismatch = oauth.client.post(
        "/oauth/token", data={**form, "client_id": other["client_id"]}, auth=httpx.BasicAuth(app["client_id"], "")
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["error"] == "invalid_request"

    # the code was not spent by the refused attempts
    exchanged = oauth.client.post("/oauth/token", data=form, auth=httpx.BasicAuth(app["client_id"], ""))
    assert exchanged.status_code == 200, exchanged.text
    refresh = {"grant_type": "refresh_token", "refresh_token": exchanged.json()["refresh_token"]}
    refreshed = oauth.client.post("/oauth/token", data=refresh, auth=httpx.BasicAuth(app["client_id"], ""))
    assert refreshed.status_code == 200, refreshed.text
    # and its refresh token belongs to it, not to another public client naming itself the same way
    stolen = oauth.client.post(
        "/oauth/token",
        data={**refresh, "refresh_token": refreshed.json()["refresh_token"]},
        auth=httpx.BasicAuth(other["client_id"], ""),
    )
    assert stolen.json()["error"] == "invalid_grant"

    anonymous = oauth.client.post("/oauth/token", data={**refresh, "refresh_token": "x"})
    assert anonymous.json()["error"] == "invalid_client"
    assert anonymous.json()["error_description"].startswith("No client credentials. A public client must send")
    introspect = oauth.client.post("/oauth/introspect", data={"token": "x"}, auth=httpx.BasicAuth(app["client_id"], ""))
    assert introspect.json()["error_description"] == (
        f"Client {app['client_id']} is public; this endpoint serves confidential clients only."
    )


@pytest.mark.backend
def test_confidential_clients_are_told_to_send_their_secret(oauth: OAuthHarness) -> None:
    service = oauth.register(public=False, grant_types=("client_credentials",), redirect_uris=(), scopes=("read",))
    form = {"grant_type": "client_credentials"}
    empty = oauth.client.post("/oauth/token", data=form, auth=httpx.BasicAuth(service["client_id"], ""))
    assert empty.status_code == 401
    assert empty.json() == {
        "error": "invalid_client",
        "error_description": f"Client {service['client_id']} is confidential: send its client secret, as HTTP "
        "Basic with the client id and secret (client_secret_basic) or as client_id and client_secret in the "
        "request body (client_secret_post).",
    }
    wrong = oauth.client.post("/oauth/token", data={**form, "client_id": service["client_id"], "client_secret": "x"})
    assert wrong.json()["error_description"] == (
        f"The client secret is not the one issued to client {service['client_id']}."
    )
    assert oauth.token(service, **form).status_code == 200


@pytest.mark.backend
@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "nope", "redirect_uri": REDIRECT_URI}, "invalid_grant"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, "invalid_grant"),
        ({"grant_type": "authorization_code", "code": "x\u00e9"}, "invalid_request"),
        ({"grant_type": 'refresh"token'}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x" * 5000}, "invalid_request"),
    ],
)
def test_bad_token_requests_get_rfc6749_errors(oauth: OAuthHarness, form: dict[str, str], error: str) -> None:
    app = oauth.register()
    response = oauth.token(app, **form)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error


@pytest.mark.backend
def test_repeated_parameters_and_non_form_bodies_are_refused(oauth: OAuthHarness) -> None:
    app = oauth.register()
    repeated = oauth.client.post(
        "/oauth/token",
        content=f"grant_type=refresh_token&grant_type=refresh_token&client_id={app['client_id']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeated.json()["error"] == "invalid_request"
    as_json = oauth.client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400
    unknown_client = oauth.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=httpx.BasicAuth("nobody", "x")
    )
    assert unknown_client.status_code == 401
    assert unknown_client.json()["error"] == "invalid_client"


@pytest.mark.backend
def test_bad_authorize_parameters_never_cause_a_server_error(oauth: OAuthHarness) -> None:
    app = oauth.register()
    for params in (
        {"response_type": "code", "client_id": app["client_id"], "redirect_uri": 'https://x"y'},
        {"response_type": 'co"de', "client_id": app["client_id"]},
        {"response_type": "code", "client_id": app["client_id"], "state": "caf\u00e9"},
        {"response_type": "code", "client_id": app["client_id"], "client_id ": "x" * 5000},
    ):
        page = oauth.client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert page.status_code == 400, params
        assert "invalid_request" in page.text
