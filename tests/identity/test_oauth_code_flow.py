"""Authorization code with PKCE through the sign-in and consent pages, and what the tokens can do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity.models import AuthorizationCode
from tests.identity.oauth import (
    REDIRECT_URI,
    OAuthHarness,
    forms_of,
    pkce_pair,
    query_of,
    sign_in_and_consent,
    submit_consent,
)
from tests.support.api import Api


def test_code_with_pkce_gives_tokens_that_work_on_the_api(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(public=True)
    assert app["client_secret"] is None
    user = api.customer()
    verifier, challenge = pkce_pair()
    url = oauth.authorize_url(app["client_id"], scope="read write", state="xyz-42", challenge=challenge)

    page = oauth.client.get(url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "Sign in" in page.text
    assert "Test app" in page.text

    answer = sign_in_and_consent(oauth.client, url, user)
    assert answer.status_code == 302
    params = query_of(answer.headers["location"])
    assert answer.headers["location"].startswith(REDIRECT_URI + "?")
    assert params["state"] == "xyz-42"
    assert params["iss"] == "https://testserver.local"

    response = oauth.exchange(app, params["code"], verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert set(token["scope"].split()) == {"read", "write"}
    assert "refresh_token" in token
    assert "id_token" not in token  # no openid scope

    headers = {"Authorization": f"Bearer {token['access_token']}"}
    profile = oauth.client.get("/api/auth/profile/", headers=headers)
    assert profile.status_code == 200
    assert profile.json()["username"] == user.username
    assert oauth.client.patch("/api/auth/profile/", json={"first_name": "Ada"}, headers=headers).status_code == 200


@pytest.mark.backend
def test_consent_page_lists_the_requested_scopes(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(scopes=("openid", "profile", "read"))
    user = api.customer()
    _, challenge = pkce_pair()
    page = oauth.client.get(
        oauth.authorize_url(app["client_id"], scope="openid profile read write", challenge=challenge)
    )
    sign_in = forms_of(page.text)[0]
    consent = oauth.client.post(
        sign_in.action, data={**sign_in.fields, "username": user.username, "password": user.password}
    )
    assert consent.status_code == 200
    for scope in ("openid", "profile", "read"):
        assert f"<code>{scope}</code>" in consent.text
    assert "<code>write</code>" not in consent.text  # not allowed for this client, so not granted
    assert "app.example" in consent.text


def test_tokens_carry_only_granted_scopes(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    token = oauth.tokens_for(app, api.customer(), scope="read")
    assert token["scope"] == "read"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert oauth.client.get("/api/auth/profile/", headers=headers).status_code == 200
    refused = oauth.client.patch("/api/auth/profile/", json={"first_name": "X"}, headers=headers)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


def test_write_on_the_catalog_needs_the_write_scope(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    staff = api.staff()
    read_only = oauth.tokens_for(app, staff, scope="read")
    product = {"name": "Lamp", "price": "10.00", "sku": "LAMP-1", "stock_quantity": 1}
    refused = oauth.client.post(
        "/api/products/", json=product, headers={"Authorization": f"Bearer {read_only['access_token']}"}
    )
    assert refused.status_code == 403
    oauth.client.cookies.clear()
    writer = oauth.tokens_for(app, staff, scope="read write")
    created = oauth.client.post(
        "/api/products/", json=product, headers={"Authorization": f"Bearer {writer['access_token']}"}
    )
    assert created.status_code == 201, created.text


def test_confidential_client_authenticates_with_basic_or_form_secret(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(public=False)
    assert app["client_secret"]
    user = api.customer()
    code, verifier = oauth.code_for(app, user)
    assert oauth.exchange(app, code, verifier).status_code == 200  # HTTP Basic
    oauth.client.cookies.clear()
    code, verifier = oauth.code_for(app, user)
    by_form = oauth.client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert by_form.status_code == 200, by_form.text


def test_wrong_client_secret_is_invalid_client(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(public=False)
    code, verifier = oauth.code_for(app, api.customer())
    response = oauth.exchange({**app, "client_secret": "wrong"}, code, verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_wrong_pkce_verifier_is_refused(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    code, verifier = oauth.code_for(app, api.customer())
    other_verifier, _ = pkce_pair()
    response = oauth.exchange(app, code, other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # the failed exchange spent the code (its writes are committed with the refusal): no second guess
    assert oauth.exchange(app, code, verifier).json()["error"] == "invalid_grant"


def test_missing_verifier_is_refused(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    code, _ = oauth.code_for(app, api.customer())
    response = oauth.token(app, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_code_reuse_is_refused_and_revokes_what_it_gave(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    code, verifier = oauth.code_for(app, api.customer())
    first = oauth.exchange(app, code, verifier)
    assert first.status_code == 200
    headers = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert oauth.client.get("/api/auth/profile/", headers=headers).status_code == 200

    again = oauth.exchange(app, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert oauth.client.get("/api/auth/profile/", headers=headers).status_code == 401
    refresh = oauth.token(app, grant_type="refresh_token", refresh_token=first.json()["refresh_token"])
    assert refresh.json()["error"] == "invalid_grant"


def test_expired_code_is_refused(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    code, verifier = oauth.code_for(app, api.customer())

    async def expire(session: AsyncSession) -> None:
        await session.execute(update(AuthorizationCode).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()

    api.run(expire)
    response = oauth.exchange(app, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.backend
def test_redirect_uri_must_match_exactly(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    _, challenge = pkce_pair()
    for wrong in (
        REDIRECT_URI + "/",
        REDIRECT_URI + "?x=1",
        "https://evil.example/callback",
        "HTTPS://app.example/callback",
    ):
        page = oauth.client.get(oauth.authorize_url(app["client_id"], challenge=challenge, redirect_uri=wrong))
        # never a redirect to an unregistered URI: an error page instead
        assert page.status_code == 400, wrong
        assert "location" not in page.headers
        assert "invalid_request" in page.text


@pytest.mark.backend
def test_loopback_redirect_uris_of_public_clients_match_any_port(oauth: OAuthHarness, api: Api) -> None:
    """RFC 8252 7.3: a native app (or the docs page on a development server) listens on whatever port is free."""
    registered = ("http://127.0.0.1/cb", "http://localhost:8000/cb")
    public = oauth.register(redirect_uris=registered)
    confidential = oauth.register(public=False, redirect_uris=registered)
    verifier, challenge = pkce_pair()

    def page(client: dict[str, str], redirect_uri: str) -> int:
        url = oauth.authorize_url(client["client_id"], challenge=challenge, redirect_uri=redirect_uri)
        return oauth.client.get(url, follow_redirects=False).status_code

    for port_changed in ("http://127.0.0.1:43123/cb", "http://localhost:9000/cb", "http://localhost/cb"):
        assert page(public, port_changed) == 200, port_changed
        assert page(confidential, port_changed) == 400, port_changed
    for still_wrong in (
        "http://127.0.0.1:43123/cb/",  # path
        "http://127.0.0.1:43123/cb?x=1",  # query
        "http://[::1]:43123/cb",  # another loopback host than registered
        "https://127.0.0.1:43123/cb",  # scheme
        "http://user@127.0.0.1:43123/cb",
        "http://127.0.0.1:notaport/cb",
    ):
        assert page(public, still_wrong) == 400, still_wrong

    url = oauth.authorize_url(public["client_id"], challenge=challenge, redirect_uri="http://127.0.0.1:43123/cb")
    back = sign_in_and_consent(oauth.client, url, api.customer())
    assert back.headers["location"].startswith("http://127.0.0.1:43123/cb?")
    exchange = {
        "grant_type": "authorization_code",
        "code": query_of(back.headers["location"])["code"],
        "code_verifier": verifier,
        "client_id": public["client_id"],
        "redirect_uri": "http://127.0.0.1:43123/cb",  # the one the code was issued for, port included
    }
    assert oauth.client.post("/oauth/token", data=exchange).status_code == 200


def test_redirect_uri_at_the_token_endpoint_must_match_the_authorization_request(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register(redirect_uris=(REDIRECT_URI, "https://app.example/other"))
    code, verifier = oauth.code_for(app, api.customer())
    response = oauth.token(
        app,
        grant_type="authorization_code",
        code=code,
        redirect_uri="https://app.example/other",
        code_verifier=verifier,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.backend
def test_unknown_or_missing_client_shows_an_error_page(oauth: OAuthHarness) -> None:
    for client_id in ("no-such-client", ""):
        page = oauth.client.get(oauth.authorize_url(client_id))
        assert page.status_code == 400
        assert page.headers["content-type"].startswith("text/html")
        assert "invalid_client" in page.text


@pytest.mark.backend
def test_errors_after_a_valid_redirect_uri_go_back_to_the_client_with_state(oauth: OAuthHarness) -> None:
    public = oauth.register(public=True)
    _, challenge = pkce_pair()
    cases = [
        (oauth.authorize_url(public["client_id"]), "invalid_request"),  # public client without PKCE
        (
            oauth.authorize_url(public["client_id"], challenge=challenge, code_challenge_method="plain"),
            "invalid_request",
        ),
        (oauth.authorize_url(public["client_id"], challenge=challenge, scope="read admin"), "invalid_scope"),
        (oauth.authorize_url(public["client_id"], response_type="token"), "unsupported_response_type"),
    ]
    for url, error in cases:
        answer = oauth.client.get(url, follow_redirects=False)
        assert answer.status_code == 302, (url, answer.text)
        params = query_of(answer.headers["location"])
        assert answer.headers["location"].startswith(REDIRECT_URI)
        assert params["error"] == error, url
        assert params["state"] == "st-123"


@pytest.mark.backend
def test_denying_consent_redirects_with_access_denied(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    _, challenge = pkce_pair()
    answer = sign_in_and_consent(
        oauth.client, oauth.authorize_url(app["client_id"], challenge=challenge), api.customer(), decision="deny"
    )
    assert answer.status_code == 302
    params = query_of(answer.headers["location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "st-123"
    assert "code" not in params


def test_a_signed_in_browser_goes_straight_to_consent(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    oauth.code_for(app, user)
    _, challenge = pkce_pair()
    page = oauth.client.get(oauth.authorize_url(app["client_id"], challenge=challenge))
    assert forms_of(page.text)[0].fields["step"] == "consent"
    assert user.username in page.text
    answer = submit_consent(oauth.client, page, "allow")
    assert "code" in query_of(answer.headers["location"])

    # prompt=login asks again; "use another account" signs out
    relogin = oauth.client.get(oauth.authorize_url(app["client_id"], challenge=challenge, prompt="login"))
    assert forms_of(relogin.text)[0].fields["step"] == "sign_in"
    page = oauth.client.get(oauth.authorize_url(app["client_id"], challenge=challenge))
    switch = forms_of(page.text)[1]
    assert switch.fields["step"] == "switch_account"
    signed_out = oauth.client.post(switch.action, data=switch.fields)
    assert forms_of(signed_out.text)[0].fields["step"] == "sign_in"


@pytest.mark.backend
def test_prompt_none_never_shows_a_page(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    _, challenge = pkce_pair()
    url = oauth.authorize_url(app["client_id"], challenge=challenge, prompt="none", scope="openid read")
    answer = oauth.client.get(url, follow_redirects=False)
    assert query_of(answer.headers["location"])["error"] == "login_required"
    oauth.code_for(app, api.customer())
    answer = oauth.client.get(url, follow_redirects=False)
    assert query_of(answer.headers["location"])["error"] == "consent_required"


@pytest.mark.backend
def test_forms_need_their_csrf_token(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    _, challenge = pkce_pair()
    url = oauth.authorize_url(app["client_id"], challenge=challenge)
    sign_in = forms_of(oauth.client.get(url).text)[0]
    signed = oauth.client.cookies["shop_oauth_session"]
    for token in ("", "forged", "jeton-forgé"):
        refused = oauth.client.post(
            sign_in.action,
            data={**sign_in.fields, "csrf_token": token, "username": user.username, "password": user.password},
        )
        assert refused.status_code == 403
        assert "expired" in refused.text
    # another browser (no cookie, or the cookie with its signature altered) cannot replay this page's form either
    oauth.client.cookies.clear()
    form = {**sign_in.fields, "username": user.username, "password": user.password}
    assert oauth.client.post(sign_in.action, data=form).status_code == 403
    tampered = signed[:-1] + ("A" if signed[-1] != "A" else "B")
    replay = oauth.client.post(sign_in.action, data=form, headers={"Cookie": f"shop_oauth_session={tampered}"})
    assert replay.status_code == 403
    signed_in = oauth.client.post(sign_in.action, data=form, headers={"Cookie": f"shop_oauth_session={signed}"})
    assert forms_of(signed_in.text)[0].fields["step"] == "consent"


@pytest.mark.backend
def test_the_sign_in_cookie_is_locked_down(oauth: OAuthHarness, app: Litestar) -> None:
    client = oauth.register()
    page = oauth.client.get(oauth.authorize_url(client["client_id"], challenge=pkce_pair()[1]))
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("shop_oauth_session=")
    assert "HttpOnly" in cookie
    assert "Path=/oauth" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie


@pytest.mark.backend
def test_wrong_password_shows_the_form_again(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    url = oauth.authorize_url(app["client_id"], challenge=pkce_pair()[1])
    sign_in = forms_of(oauth.client.get(url).text)[0]
    wrong = oauth.client.post(sign_in.action, data={**sign_in.fields, "username": user.username, "password": "nope"})
    assert wrong.status_code == 400
    assert "Wrong username or password" in wrong.text
    assert forms_of(wrong.text)[0].fields["step"] == "sign_in"
    unknown = oauth.client.post(sign_in.action, data={**sign_in.fields, "username": "ghost", "password": "nope"})
    assert unknown.status_code == 400
    by_email = oauth.client.post(
        sign_in.action, data={**sign_in.fields, "username": user.profile["email"].upper(), "password": user.password}
    )
    assert forms_of(by_email.text)[0].fields["step"] == "consent"


@pytest.mark.backend
def test_repeated_failed_sign_ins_are_refused_for_a_while(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    url = oauth.authorize_url(app["client_id"], challenge=pkce_pair()[1])
    sign_in = forms_of(oauth.client.get(url).text)[0]

    def attempt(password: str) -> int:
        data = {**sign_in.fields, "username": user.username, "password": password}
        return oauth.client.post(sign_in.action, data=data).status_code

    assert [attempt("wrong") for _ in range(5)] == [400] * 5
    locked = oauth.client.post(
        sign_in.action, data={**sign_in.fields, "username": user.username, "password": user.password}
    )
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 60
    # another account from the same address is still welcome
    other = api.customer()
    fine = oauth.client.post(
        sign_in.action, data={**sign_in.fields, "username": other.username, "password": other.password}
    )
    assert fine.status_code == 200


@pytest.mark.backend
def test_one_address_trying_many_accounts_is_refused(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    url = oauth.authorize_url(app["client_id"], challenge=pkce_pair()[1])
    sign_in = forms_of(oauth.client.get(url).text)[0]
    statuses = [
        oauth.client.post(sign_in.action, data={**sign_in.fields, "username": f"user{n}", "password": "x"}).status_code
        for n in range(21)
    ]
    assert statuses[:20] == [400] * 20
    assert statuses[20] == 429


@pytest.mark.backend
def test_plain_http_is_refused_except_on_loopback(client: TestClient[Litestar]) -> None:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "insecure_transport"
    page = client.get("/oauth/authorize?response_type=code&client_id=x")
    assert page.status_code == 400
    assert "insecure_transport" in page.text
