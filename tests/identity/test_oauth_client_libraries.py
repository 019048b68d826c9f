"""Independent client libraries against the real server: authlib's httpx client and requests-oauthlib.

Each follows the HTML sign-in and consent forms as a browser would, then uses the tokens.
"""

from __future__ import annotations

from urllib.parse import urljoin

import httpx
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from requests_oauthlib import OAuth2Session

from tests.identity.conftest import LiveShop
from tests.identity.oauth import forms_of, sign_in_and_consent
from tests.support.api import Caller


def browse_with_requests(browser: requests.Session, authorize_url: str, user: Caller) -> str:
    """The same walk as `sign_in_and_consent`, with requests; returns the redirect back to the client."""
    page = browser.get(authorize_url, allow_redirects=False)
    sign_in = forms_of(page.text)[0]
    consent = browser.post(
        urljoin(page.url, sign_in.action),
        data={**sign_in.fields, "username": user.username, "password": user.password},
        allow_redirects=False,
    )
    form = forms_of(consent.text)[0]
    back = browser.post(
        urljoin(consent.url, form.action), data={**form.fields, "decision": "allow"}, allow_redirects=False
    )
    assert back.status_code == 302, back.text
    return str(back.headers["Location"])


def test_authlib_client_runs_code_pkce_refresh_revoke_and_oidc(live_shop: LiveShop) -> None:
    base = live_shop.base
    discovery = httpx.get(f"{base}/.well-known/openid-configuration").json()
    client = OAuth2Client(
        live_shop.public_client_id,
        token_endpoint_auth_method="none",
        redirect_uri=live_shop.redirect_uri,
        scope="openid profile email read write",
        code_challenge_method="S256",
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, _state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    with httpx.Client() as browser:
        back = sign_in_and_consent(browser, url, live_shop.user)
    assert back.status_code == 302
    token = client.fetch_token(
        discovery["token_endpoint"], authorization_response=back.headers["location"], code_verifier=verifier
    )
    assert client.get(f"{base}/api/auth/profile/").json()["username"] == live_shop.user.username

    # the OIDC side: verify the id_token against the JWKS named by discovery
    keys = KeySet.import_key_set(httpx.get(discovery["jwks_uri"]).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=discovery["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"value": discovery["issuer"]}, "aud": {"value": live_shop.public_client_id}},
        params={"nonce": nonce, "access_token": token["access_token"]},
    )
    claims.validate()
    assert claims["sub"] == str(live_shop.user.id)
    assert client.get(discovery["userinfo_endpoint"]).json()["sub"] == claims["sub"]

    refreshed = client.refresh_token(discovery["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert client.get(f"{base}/api/auth/profile/").status_code == 200
    revoked = client.revoke_token(discovery["revocation_endpoint"], token=refreshed["access_token"])
    assert revoked.status_code == 200
    assert client.get(f"{base}/api/auth/profile/").status_code == 401


def test_authlib_confidential_client_introspects(live_shop: LiveShop) -> None:
    base = live_shop.base
    client = OAuth2Client(
        live_shop.confidential_client_id,
        live_shop.confidential_client_secret,
        redirect_uri=live_shop.redirect_uri,
        scope="read",
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
    with httpx.Client() as browser:
        back = sign_in_and_consent(browser, url, live_shop.user)
    token = client.fetch_token(
        f"{base}/oauth/token", authorization_response=back.headers["location"], code_verifier=verifier
    )
    info = client.introspect_token(f"{base}/oauth/introspect", token=token["access_token"]).json()
    assert info["active"] is True
    assert info["scope"] == "read"
    assert info["username"] == live_shop.user.username
    client.revoke_token(f"{base}/oauth/revoke", token=token["refresh_token"], token_type_hint="refresh_token")
    assert client.introspect_token(f"{base}/oauth/introspect", token=token["access_token"]).json() == {"active": False}


def test_requests_oauthlib_runs_code_pkce_refresh_revoke_and_introspect(
    live_shop: LiveShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the client library's own rule for http
    base = live_shop.base
    session = OAuth2Session(
        live_shop.confidential_client_id, redirect_uri=live_shop.redirect_uri, scope=["read", "write"], pkce="S256"
    )
    url, _ = session.authorization_url(f"{base}/oauth/authorize")
    with requests.Session() as browser:
        location = browse_with_requests(browser, url, live_shop.user)
    token = session.fetch_token(
        f"{base}/oauth/token", authorization_response=location, client_secret=live_shop.confidential_client_secret
    )
    assert session.get(f"{base}/api/auth/profile/").json()["id"] == live_shop.user.id

    auth = (live_shop.confidential_client_id, live_shop.confidential_client_secret)
    refreshed = session.refresh_token(f"{base}/oauth/token", auth=auth, timeout=10)
    assert refreshed["access_token"] != token["access_token"]
    assert session.get(f"{base}/api/auth/profile/").status_code == 200

    introspected = requests.post(
        f"{base}/oauth/introspect", data={"token": refreshed["access_token"]}, auth=auth, timeout=10
    )
    assert introspected.json()["active"] is True
    assert (
        requests.post(
            f"{base}/oauth/revoke", data={"token": refreshed["access_token"]}, auth=auth, timeout=10
        ).status_code
        == 200
    )
    assert session.get(f"{base}/api/auth/profile/").status_code == 401
    introspected = requests.post(
        f"{base}/oauth/introspect", data={"token": refreshed["access_token"]}, auth=auth, timeout=10
    )
    assert introspected.json() == {"active": False}


def test_requests_oauthlib_public_client(live_shop: LiveShop, monkeypatch: pytest.MonkeyPatch) -> None:
    """With fetch_token's defaults; include_client_id=True, which docs/oauth.md recommends, sends client_id in
    the body as the OAuthHarness tests do."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    base = live_shop.base
    session = OAuth2Session(
        live_shop.public_client_id, redirect_uri=live_shop.redirect_uri, scope=["read"], pkce="S256"
    )
    url, _ = session.authorization_url(f"{base}/oauth/authorize")
    with requests.Session() as browser:
        location = browse_with_requests(browser, url, live_shop.user)
    # requests-oauthlib's default: HTTP Basic with the client id and an empty secret (decision 112)
    token = session.fetch_token(f"{base}/oauth/token", authorization_response=location)
    assert token["scope"] == ["read"]
    refreshed = session.refresh_token(f"{base}/oauth/token", client_id=live_shop.public_client_id)
    assert session.get(f"{base}/api/auth/profile/").status_code == 200
    revoke = requests.post(
        f"{base}/oauth/revoke",
        data={"token": refreshed["refresh_token"], "client_id": live_shop.public_client_id},
        timeout=10,
    )
    assert revoke.status_code == 200
    assert session.get(f"{base}/api/auth/profile/").status_code == 401
