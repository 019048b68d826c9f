"""The API docs work in a real browser with no internet: every request the pages make goes to our server.

Debian's chromium at /usr/bin/chromium, driven by Playwright (which never downloads a browser); `make test`
installs chromium where it is missing.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.live import live_server

pytestmark = needs_chromium


def test_swagger_ui_and_redoc_show_the_operations_offline(tmp_path: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    elsewhere: list[str] = []
    with live_server({"APP_ENV": "development", "VAR_DIR": str(tmp_path)}) as (base, _):

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

                page.goto(f"{base}/schema/redoc")
                page.get_by_role("heading", name="Place an order").wait_for(timeout=20_000)
                assert page.get_by_role("heading", name="List products").count() == 1
            finally:
                browser.close()
    # Redoc's "API docs by Redocly" footer shows a logo from its CDN; offline it is simply missing
    assert [url for url in elsewhere if url != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
