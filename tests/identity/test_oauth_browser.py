"""A real browser (headless Chromium through Playwright) signs in, consents and gets a working code.

Uses Debian's chromium at /usr/bin/chromium; Playwright never downloads a browser. Screenshots of both
pages are written to the test's temporary directory, and to docs/images/ when UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.identity.conftest import LiveShop
from tests.identity.oauth import pkce_pair
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

pytestmark = needs_chromium


def test_a_browser_signs_in_consents_and_the_code_works(live_shop: LiveShop, tmp_path: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    verifier, challenge = pkce_pair()
    authorize = str(
        httpx.URL(
            f"{live_shop.base}/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": live_shop.public_client_id,
                "redirect_uri": live_shop.redirect_uri,
                "scope": "openid profile read write",
                "state": "browser-state",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
    )
    arrived: list[str] = []

    def callback(route: Route) -> None:  # the client app: note where the browser was sent, answer a page
        arrived.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>Signed in.</p>")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 720})
            page.route(f"{live_shop.redirect_uri}**", callback)
            page.goto(authorize)
            assert page.get_by_role("heading").inner_text().startswith("Sign in")
            page.get_by_label("Username or e-mail").fill(live_shop.user.username)
            page.get_by_label("Password").fill(live_shop.user.password)
            page.screenshot(path=str(tmp_path / "oauth-sign-in.png"))
            page.get_by_role("button", name="Sign in").click()

            page.wait_for_selector("text=Allow Shop web app")
            assert "openid" in page.content()
            page.screenshot(path=str(tmp_path / "oauth-consent.png"))
            page.get_by_role("button", name="Allow").click()
            page.wait_for_selector("text=Signed in.")
        finally:
            browser.close()

    assert len(arrived) == 1
    params = {name: values[0] for name, values in parse_qs(urlsplit(arrived[0]).query).items()}
    assert arrived[0].startswith(live_shop.redirect_uri + "?")
    assert params["state"] == "browser-state"
    token = httpx.post(
        f"{live_shop.base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": live_shop.redirect_uri,
            "code_verifier": verifier,
            "client_id": live_shop.public_client_id,
        },
    )
    assert token.status_code == 200, token.text
    profile = httpx.get(
        f"{live_shop.base}/api/auth/profile/", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert profile.json()["username"] == live_shop.user.username
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        for name in ("oauth-sign-in.png", "oauth-consent.png"):
            shutil.copy(tmp_path / name, DOCS_IMAGES / name)
