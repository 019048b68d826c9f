"""OWASP API2:2023 Broken authentication: the shared bearer-token middleware, through a protected endpoint.

Missing, malformed, unknown, forged, expired and revoked tokens are 401 with a `Bearer` challenge; tokens
are stored hashed and accepted only in the Authorization header; password-reset secrets are stored as keyed
digests and refused when forged, retired or used. Refresh-token reuse (the whole family is
revoked), code reuse and expired codes are in tests/identity/test_oauth_tokens.py and
test_oauth_code_flow.py; sign-in throttling in tests/identity/test_oauth_browser.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import DEMO_STAFF_TOKEN
from app.docs_ui import DOCS_CLIENT_ID
from app.limits import RedisFailureCounter
from app.main import create_app
from app.settings import Settings
from shop_identity import ClientRegistration, OAuthClientService, TokenService, hash_token
from shop_identity.models import AccessToken, AccountSecret, Customer
from shop_identity.oauth.throttle import SignInThrottle
from shop_kernel import OutboxMessage, Unit
from tests.security.conftest import production_settings
from tests.support.api import Api

PROTECTED = "/api/auth/profile/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: object, error: str | None = None) -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    challenge = response.headers["www-authenticate"]  # type: ignore[attr-defined]
    assert challenge.startswith('Bearer realm="shop"')
    if error:
        assert f'error="{error}"' in challenge
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    assert response.json()["status"] == 401  # type: ignore[attr-defined]


def test_a_live_token_authenticates(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    assert client.get(PROTECTED, headers=me.headers).json()["username"] == me.username


def test_missing_token(client: TestClient[Litestar]) -> None:
    assert_unauthorized(client.get(PROTECTED))


def test_unknown_token(client: TestClient[Litestar]) -> None:
    assert_unauthorized(client.get(PROTECTED, headers=bearer("no-such-token")), "invalid_token")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "Token abc", "Bearer a b"])
def test_malformed_authorization_header(client: TestClient[Litestar], header: str) -> None:
    assert_unauthorized(client.get(PROTECTED, headers={"Authorization": header}), "invalid_request")


def test_overlong_token_is_refused_without_lookup(client: TestClient[Litestar]) -> None:
    assert_unauthorized(client.get(PROTECTED, headers=bearer("x" * 2000)), "invalid_token")


def test_expired_token(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    expired = api.issue_token(me.id, ttl=timedelta(seconds=-1))
    assert_unauthorized(client.get(PROTECTED, headers=bearer(expired)), "invalid_token")


def test_revoked_token_stops_working_on_the_next_request(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    assert client.get(PROTECTED, headers=me.headers).status_code == 200
    assert api.run(lambda session: TokenService(Unit(session)).revoke(me.token)) is True
    assert_unauthorized(client.get(PROTECTED, headers=me.headers), "invalid_token")
    assert api.run(lambda session: TokenService(Unit(session)).revoke(me.token)) is False


def test_token_of_a_deactivated_account(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()

    async def deactivate(session: AsyncSession) -> None:
        await session.execute(update(Customer).where(Customer.id == me.id).values(is_active=False))
        await session.commit()

    api.run(deactivate)
    assert_unauthorized(client.get(PROTECTED, headers=me.headers), "invalid_token")


def test_tokens_are_stored_hashed(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()

    async def stored(session: AsyncSession) -> list[str]:
        return list(await session.scalars(AccessToken.__table__.select().with_only_columns(AccessToken.token_hash)))

    hashes = api.run(stored)
    assert hash_token(me.token) in hashes
    assert me.token not in hashes


def test_demo_token_does_not_work_in_production(api: Api, settings: Settings) -> None:
    staff = api.staff()
    api.run(
        lambda session: TokenService(Unit(session)).issue(
            customer_id=staff.id, scopes=("read",), ttl=timedelta(days=1), raw_token=DEMO_STAFF_TOKEN
        )
    )
    with TestClient(create_app(production_settings(settings))) as prod_client:
        assert_unauthorized(prod_client.get(PROTECTED, headers=bearer(DEMO_STAFF_TOKEN)), "invalid_token")
        # an ordinary token still works in production
        assert prod_client.get(PROTECTED, headers=staff.headers).status_code == 200
    # the same token in the development app (the one under test) is accepted
    assert api.client.get(PROTECTED, headers=bearer(DEMO_STAFF_TOKEN)).status_code == 200


def test_the_docs_pages_development_client_does_not_work_in_production(api: Api, settings: Settings) -> None:
    """Like the demo tokens: even in a development database copied to production, the client is unknown."""
    redirect = "http://127.0.0.1/schema/assets/swagger-ui-5.18.2/oauth2-redirect.html"
    api.run(
        lambda session: OAuthClientService(Unit(session)).create(
            ClientRegistration(name="Docs", public=True, redirect_uris=[redirect]), client_id=DOCS_CLIENT_ID
        )
    )
    production = replace(production_settings(settings), oauth_issuer="https://shop.example")
    with TestClient(create_app(production), base_url="https://shop.example") as prod_client:
        page = prod_client.get(
            "/oauth/authorize",
            params={"response_type": "code", "client_id": DOCS_CLIENT_ID, "redirect_uri": redirect, "scope": "read"},
        )
        assert page.status_code == 400
        assert "The client does not exist on this server." in page.text
        token = prod_client.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": DOCS_CLIENT_ID})
        assert token.json()["error"] == "invalid_client"
        assert "clientId" not in prod_client.get("/schema").text


def test_forged_tokens_are_refused(client: TestClient[Litestar], api: Api) -> None:
    """Tokens are random and opaque, looked up by their hash: nothing derived from a real one works."""
    me = api.customer()
    token = me.token
    forgeries = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # one character changed
        token[:-4],  # truncated
        token + "x",  # extended
        token.upper() if token.upper() != token else token.lower(),  # other case
        hash_token(token),  # the stored hash presented as the token
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwic2NvcGUiOiJyZWFkIHdyaXRlIn0.",  # an unsigned JWT (alg none)
    ]
    for forged in forgeries:
        assert_unauthorized(client.get(PROTECTED, headers=bearer(forged)), "invalid_token")
    assert client.get(PROTECTED, headers=me.headers).status_code == 200


def test_tokens_are_read_from_the_authorization_header_only(client: TestClient[Litestar], api: Api) -> None:
    """A token in a URL ends up in logs and Referer headers; a cookie would make requests forgeable (CSRF)."""
    me = api.customer()
    assert_unauthorized(client.get(PROTECTED, params={"access_token": me.token}))
    assert_unauthorized(client.get(PROTECTED, headers={"Cookie": f"access_token={me.token}; token={me.token}"}))
    assert_unauthorized(client.get(PROTECTED, headers={"X-Access-Token": me.token, "X-Api-Key": me.token}))


def test_a_second_authorization_header_cannot_smuggle_a_token(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    response = client.get(
        PROTECTED, headers=[("Authorization", "Bearer no-such-token"), ("Authorization", f"Bearer {me.token}")]
    )
    assert response.status_code == 401


def test_failed_sign_ins_are_counted_across_replicas(redis_url: str) -> None:
    """Each replica has its own throttle and Redis client (as `create_app` builds them); the counts are one.

    The sign-in form itself (5 failures, then 429 with Retry-After) is driven in
    tests/identity/test_oauth_code_flow.py::test_repeated_failed_sign_ins_are_refused_for_a_while.
    """
    namespace = f"test-sign-in:{uuid.uuid4().hex}"

    async def scenario() -> None:
        counters = [RedisFailureCounter(redis_url, namespace=namespace) for _ in range(2)]
        first, second = (SignInThrottle(max_failures_per_account=5, counter=counter) for counter in counters)
        try:
            for _ in range(3):
                assert await first.attempt("Alice", "192.0.2.1") is None  # three wrong passwords on one replica
            for _ in range(2):
                assert await second.attempt("alice", "192.0.2.2") is None  # two on the other
            wait = await first.attempt("alice", "192.0.2.9")  # the sixth is refused, on either replica
            assert wait is not None
            assert 60 < wait <= 15 * 60
            assert await second.attempt("bob", "192.0.2.9") is None  # another account is not locked
            await second.succeeded("bob", "192.0.2.9")
            await first.clear()
            # attempts sent at the same moment cannot all slip under the limit: each is counted before its
            # password is checked, atomically, so exactly five of twelve simultaneous ones get a check
            answers = await asyncio.gather(
                *(throttle.attempt("carol", f"198.51.100.{n}") for n in range(6) for throttle in (first, second))
            )
            assert answers.count(None) == 5
        finally:
            await first.clear()
            for counter in counters:
                await counter.close()

    asyncio.run(scenario())


def test_reset_secrets_are_stored_as_keyed_digests_and_cannot_be_guessed(
    client: TestClient[Litestar], api: Api
) -> None:
    """A reset code or link token is stored as an HMAC under the server's key (six digits would fall to a
    plain hash of every code), a forged link is refused, and a code takes five wrong tries in all (the
    whole flow is in tests/identity/test_accounts.py)."""
    buyer = api.customer(phone_number="0722000111", email="api2@example.com")
    assert client.post("/api/auth/password/reset/", json={"phone_number": "0722000111"}).status_code == 202
    assert client.post("/api/auth/password/reset/", json={"email": "api2@example.com"}).status_code == 202

    async def stored(session: AsyncSession) -> tuple[list[str], list[dict[str, object]]]:
        digests = list(await session.scalars(select(AccountSecret.secret_hash).order_by(AccountSecret.id)))
        payloads = list(await session.scalars(select(OutboxMessage.payload).order_by(OutboxMessage.id)))
        return digests, payloads

    digests, payloads = api.run(stored)
    code, token = (str(payload["secret"]) for payload in payloads[-2:])  # not relayed yet: no worker runs here
    assert re.fullmatch(r"\d{6}", code)
    plain = {hashlib.sha256(value.encode()).hexdigest() for value in (code, f"{buyer.id}:{code}", token)}
    assert not plain & set(digests)
    assert len(digests) == 1 + 1  # the e-mail request retired the SMS code but keeps its row

    password = "#forged-Link-42"
    body = {"new_password": password, "new_password_confirm": password}
    forged = client.post("/api/auth/password/reset/confirm/", json={**body, "token": "A" * 43})
    assert forged.status_code == 400
    overlong = client.post("/api/auth/password/reset/confirm/", json={**body, "token": "x" * 201})
    assert overlong.status_code == 400
    retired = client.post(
        "/api/auth/password/reset/confirm/", json={**body, "phone_number": "0722000111", "code": code}
    )
    assert retired.status_code == 400  # a newer request retired the code
    assert client.post("/api/auth/password/reset/confirm/", json={**body, "token": token}).status_code == 200
    assert client.post("/api/auth/password/reset/confirm/", json={**body, "token": token}).status_code == 400
