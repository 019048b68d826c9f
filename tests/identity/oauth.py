"""Helpers for OAuth tests: a browser-like walk through the sign-in and consent forms, PKCE, clients."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import msgspec
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity import ClientRegistration, IdentityPlugin, OAuthClientService
from shop_kernel import Unit
from tests.support.api import Api, Caller

REDIRECT_URI = "https://app.example/callback"
HTTPS_BASE = "https://testserver.local"


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """Reads the forms of a page as a browser would submit them (hidden inputs, named buttons)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(action=values.get("action", "")))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms and "name" in values:
            self.forms[-1].buttons.append((values["name"], values.get("value", "")))


def forms_of(html: str) -> list[Form]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def sign_in_and_consent(
    http: httpx.Client | TestClient[Litestar],
    authorize_url: str,
    user: Caller,
    *,
    decision: str = "allow",
) -> httpx.Response:
    """Load the authorize page, submit the sign-in form, then the consent form; returns the final answer."""
    page = http.get(authorize_url, follow_redirects=False)
    assert page.status_code == 200, page.text
    sign_in = forms_of(page.text)[0]
    assert sign_in.fields["step"] == "sign_in"
    consent = http.post(
        urljoin(str(page.url), sign_in.action),
        data={**sign_in.fields, "username": user.username, "password": user.password},
        follow_redirects=False,
    )
    assert consent.status_code == 200, consent.text
    return submit_consent(http, consent, decision)


def submit_consent(http: httpx.Client | TestClient[Litestar], page: httpx.Response, decision: str) -> httpx.Response:
    form = forms_of(page.text)[0]
    assert form.fields["step"] == "consent", page.text
    assert ("decision", decision) in form.buttons
    return http.post(
        urljoin(str(page.url), form.action), data={**form.fields, "decision": decision}, follow_redirects=False
    )


@dataclass
class OAuthHarness:
    """Drives the authorization server through the test client, over https."""

    client: TestClient[Litestar]
    api: Api

    def register(
        self,
        *,
        public: bool = True,
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        redirect_uris: Iterable[str] = (REDIRECT_URI,),
        scopes: Iterable[str] = ("openid", "profile", "email", "read", "write"),
        may_introspect: bool = False,
        name: str = "Test app",
    ) -> dict[str, Any]:
        """Register a client through the app's service (the staff API has its own tests)."""
        registration = ClientRegistration(
            name=name,
            public=public,
            grant_types=list(grant_types),
            redirect_uris=list(redirect_uris),
            scopes=list(scopes),
            may_introspect=may_introspect,
        )

        async def create(session: AsyncSession) -> dict[str, Any]:
            return dict(msgspec.to_builtins(await OAuthClientService(Unit(session)).create(registration)))

        return self.api.run(create)

    def authorize_url(
        self,
        client_id: str,
        *,
        scope: str = "read write",
        state: str = "st-123",
        challenge: str | None = None,
        redirect_uri: str = REDIRECT_URI,
        **extra: str,
    ) -> str:
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope}
        if state:
            params["state"] = state
        if challenge:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        params.update(extra)
        return str(httpx.URL("/oauth/authorize", params=params))

    def code_for(
        self, client: dict[str, Any], user: Caller, *, scope: str = "read write", **extra: str
    ) -> tuple[str, str]:
        """Run the browser part; returns (code, verifier)."""
        verifier, challenge = pkce_pair()
        answer = sign_in_and_consent(
            self.client, self.authorize_url(client["client_id"], scope=scope, challenge=challenge, **extra), user
        )
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT_URI + "?")
        return query_of(location)["code"], verifier

    def token(self, client: dict[str, Any], **form: str) -> httpx.Response:
        auth = None
        if client.get("client_secret"):
            auth = httpx.BasicAuth(client["client_id"], client["client_secret"])
        else:
            form.setdefault("client_id", client["client_id"])
        return self.client.post("/oauth/token", data=form, auth=auth)

    def exchange(self, client: dict[str, Any], code: str, verifier: str) -> httpx.Response:
        return self.token(
            client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier
        )

    def tokens_for(
        self, client: dict[str, Any], user: Caller, *, scope: str = "read write", **extra: str
    ) -> dict[str, Any]:
        code, verifier = self.code_for(client, user, scope=scope, **extra)
        response = self.exchange(client, code, verifier)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def endpoint(self, path: str, client: dict[str, Any], **form: str) -> httpx.Response:
        auth = None
        if client.get("client_secret"):
            auth = httpx.BasicAuth(client["client_id"], client["client_secret"])
        else:
            form.setdefault("client_id", client["client_id"])
        return self.client.post(path, data=form, auth=auth)


@contextmanager
def over_https(client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    """The test client talking https (authlib refuses plain http except on loopback addresses)."""
    previous = client.base_url
    client.base_url = httpx.URL(HTTPS_BASE)
    client.cookies.clear()
    client.blocking_portal.call(client.app.plugins.get(IdentityPlugin).throttle.clear)
    try:
        yield client
    finally:
        client.cookies.clear()
        client.base_url = previous
