"""The API docs work in a real browser with no internet: every request the pages make goes to our server,
and the Authorize button signs in through our OAuth2 server, as a newcomer would use it.

Debian's chromium at /usr/bin/chromium, driven by Playwright (which never downloads a browser); `make test`
installs chromium where it is missing.
"""

from __future__ import annotations

from pathlib import Path

from app.demo import DEMO_CUSTOMER_PASSWORD
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.live import live_server

pytestmark = needs_chromium


def test_swagger_ui_and_redoc_show_the_operations_offline_and_authorize_signs_in(tmp_path: Path) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    elsewhere: list[str] = []
    # development data (--setup): the docs page's public client and the demo customer
    with live_server({"APP_ENV": "development", "VAR_DIR": str(tmp_path)}, "--setup") as (base, _):

        def only_our_server(route: Route) -> None:
            if route.request.url.startswith(base):
                route.continue_()
            else:  # a CDN, a font, a telemetry call: the docs must not need it
                elsewhere.append(route.request.url)
                route.abort()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.route("**/*", only_our_server)

                page.goto(f"{base}/schema")
                page.wait_for_selector(".opblock", timeout=20_000)
                operations = page.locator(".opblock-summary-path").all_inner_texts()
                assert "/api/orders" in operations
                assert "/api/products/categories/{category_id}/average-price" in operations
                assert page.locator(".opblock").count() >= 25

                # Authorize: the docs client is filled in; sign in as the demo customer in the pop-up
                page.locator("button.authorize").first.click()
                flow = page.locator(".auth-container").filter(has_text="authorizationCode")
                expect(flow.locator("#client_id_authorizationCode")).to_have_value("shop-api-docs")
                with page.expect_popup() as popup_info:
                    flow.locator("button.authorize").click()
                popup = popup_info.value
                popup.get_by_label("Username or e-mail").fill("john_doe")
                popup.get_by_label("Password").fill(DEMO_CUSTOMER_PASSWORD)
                popup.get_by_role("button", name="Sign in").click()
                with popup.expect_event("close", timeout=20_000):  # oauth2-redirect.html hands the code over
                    popup.get_by_role("button", name="Allow").click()
                expect(flow.locator("button", has_text="Logout")).to_be_visible(timeout=20_000)
                flow.locator("button.btn-done").click()

                # Try it out on the profile: Swagger sends the token it got
                profile = page.locator(".opblock-get:has(.opblock-summary-path[data-path='/api/auth/profile'])")
                profile.locator(".opblock-summary").click()
                profile.get_by_role("button", name="Try it out").click()
                profile.get_by_role("button", name="Execute").click()
                status = profile.locator(".live-responses-table tr.response .response-col_status")
                expect(status).to_have_text("200", timeout=20_000)
                assert '"username": "john_doe"' in profile.locator(".live-responses-table").inner_text()

                page.goto(f"{base}/schema/redoc")
                page.get_by_role("heading", name="Place an order").wait_for(timeout=20_000)
                assert page.get_by_role("heading", name="List products").count() == 1
            finally:
                browser.close()
    # Redoc's "API docs by Redocly" footer shows a logo from its CDN; offline it is simply missing
    assert [url for url in elsewhere if url != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
