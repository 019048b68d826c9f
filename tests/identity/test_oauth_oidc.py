"""OpenID Connect: discovery, JWKS, id_token, userinfo."""

from __future__ import annotations

import hashlib
from base64 import urlsafe_b64encode

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.identity.oauth import HTTPS_BASE, REDIRECT_URI, OAuthHarness, query_of
from tests.support.api import Api


@pytest.mark.backend
def test_discovery_documents_are_valid_metadata(oauth: OAuthHarness) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        response = oauth.client.get(path)
        assert response.status_code == 200
        metadata = response.json()
        assert metadata["issuer"] == HTTPS_BASE
        assert metadata["token_endpoint"] == f"{HTTPS_BASE}/oauth/token"
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert metadata["response_types_supported"] == ["code"]
        assert "implicit" not in metadata["grant_types_supported"]
        assert "password" not in metadata["grant_types_supported"]
        # what we do not support is said, not left to defaults (request_uri's default is true)
        assert metadata["request_parameter_supported"] is False
        assert metadata["request_uri_parameter_supported"] is False
        assert metadata["claims_parameter_supported"] is False
        assert "amr" in metadata["claims_supported"]
    AuthorizationServerMetadata(oauth.client.get("/.well-known/oauth-authorization-server").json()).validate()
    OpenIDProviderMetadata(oauth.client.get("/.well-known/openid-configuration").json()).validate()


def test_id_token_verifies_against_the_published_keys(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    token = oauth.tokens_for(app, user, scope="openid profile email read", nonce="n-0S6_WzA2Mj")
    assert set(token["scope"].split()) == {"openid", "profile", "email", "read"}

    discovery = oauth.client.get("/.well-known/openid-configuration").json()
    jwks = oauth.client.get(discovery["jwks_uri"].removeprefix(HTTPS_BASE)).json()
    assert all("d" not in key for key in jwks["keys"])  # no private parts
    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["kid"] == jwks["keys"][0]["kid"]
    claims = decoded.claims
    assert claims["iss"] == discovery["issuer"]
    assert claims["aud"] == [app["client_id"]]
    assert claims["sub"] == str(user.id)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["auth_time"] <= claims["iat"]
    assert claims["email"] == user.profile["email"]
    assert claims["preferred_username"] == user.username
    digest = hashlib.sha256(token["access_token"].encode()).digest()
    assert claims["at_hash"] == urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["amr"] == ["pwd"]
    assert set(claims) <= set(discovery["claims_supported"]), set(claims) - set(discovery["claims_supported"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]}, aud={"essential": True, "value": app["client_id"]}
    ).validate(claims)


@pytest.mark.backend
def test_request_objects_are_refused_not_ignored(oauth: OAuthHarness) -> None:
    """OIDC Core 6: a request object the server does not support is an error sent back to the client."""
    app = oauth.register()
    for parameter, error in (("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")):
        url = oauth.authorize_url(app["client_id"], scope="openid", challenge="x" * 43, **{parameter: "eyJhbGciOi"})
        answer = oauth.client.get(url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        params = query_of(answer.headers["location"])
        assert answer.headers["location"].startswith(REDIRECT_URI + "?")
        assert (params["error"], params["state"]) == (error, "st-123")


def test_a_nonce_cannot_be_replayed(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    oauth.tokens_for(app, user, scope="openid", nonce="once-only")
    oauth.client.cookies.clear()
    page = oauth.client.get(
        oauth.authorize_url(app["client_id"], scope="openid", nonce="once-only", challenge="x" * 43),
        follow_redirects=False,
    )
    assert page.status_code == 302
    assert "error=invalid_request" in page.headers["location"]


def test_userinfo_releases_claims_by_scope(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    minimal = oauth.tokens_for(app, user, scope="openid")
    response = oauth.client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {minimal['access_token']}"})
    assert response.status_code == 200
    assert response.json() == {"sub": str(user.id)}

    oauth.client.cookies.clear()
    full = oauth.tokens_for(app, user, scope="openid profile email")
    headers = {"Authorization": f"Bearer {full['access_token']}"}
    claims = oauth.client.post("/oauth/userinfo", headers=headers).json()
    assert claims["email"] == user.profile["email"]
    assert claims["email_verified"] is False
    assert claims["given_name"] == user.profile["first_name"]
    assert claims["preferred_username"] == user.username


def test_userinfo_needs_an_openid_token_of_a_user(oauth: OAuthHarness, api: Api) -> None:
    app = oauth.register()
    user = api.customer()
    no_openid = oauth.tokens_for(app, user, scope="read")
    assert (
        oauth.client.get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {no_openid['access_token']}"}
        ).status_code
        == 403
    )
    assert oauth.client.get("/oauth/userinfo").status_code == 401
    service = api.issue_token(None, ("openid", "read"), client_id="svc")
    assert oauth.client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {service}"}).status_code == 403


@pytest.mark.backend
def test_the_jwks_is_cacheable_and_public(oauth: OAuthHarness) -> None:
    response = oauth.client.get("/oauth/jwks")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    key = response.json()["keys"][0]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
