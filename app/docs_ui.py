"""The OpenAPI UIs (Swagger UI at `/schema`, Redoc at `/schema/redoc`) with assets served by the app itself.

Litestar's render plugins load their JavaScript, CSS, fonts and favicon from public CDNs by default;
an operator's browser without internet access (or a strict content policy) would get a blank page.
The files are vendored unmodified under `app/static/openapi/` (see its README for versions and licenses).

Swagger UI's Authorize button signs in through our OAuth2 server: authorization code with PKCE, sent back
to an absolute redirect URI built from the request (Swagger UI would derive `/oauth2-redirect.html` from
`/schema`, a page that does not exist). In development the docs page's own public client (demo data,
`DOCS_CLIENT_ID`) is filled in; elsewhere the operator types the id of a client registered for the page.
"""

from __future__ import annotations

from copy import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar import Request
    from litestar.router import Router

__all__ = (
    "ASSETS_PATH",
    "DOCS_CLIENT_ID",
    "DOCS_REDIRECT_PATH",
    "docs_assets_router",
    "docs_render_plugins",
)

ASSETS_DIR = Path(__file__).parent / "static" / "openapi"
ASSETS_PATH = "/schema/assets"
SWAGGER = f"{ASSETS_PATH}/swagger-ui-5.18.2"
REDOC = f"{ASSETS_PATH}/redoc-2.5.4"
FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER}/favicon-32x32.png'>"
DOCS_REDIRECT_PATH = f"{SWAGGER}/oauth2-redirect.html"
DOCS_CLIENT_ID = "shop-api-docs"
"""The public client of the docs page in development data (app/demo.py); never created in production."""


class SwaggerWithSignIn(SwaggerRenderPlugin):
    """Swagger UI whose `oauth2RedirectUrl` is absolute, from the URL the page was requested at."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        page = copy(self)  # one per request: the shared plugin is never changed
        # Percent-encoded but for the URL's own delimiters: the value lands inside a JavaScript string.
        page.oauth2_redirect_url = quote(f"{str(request.base_url).rstrip('/')}{DOCS_REDIRECT_PATH}", safe=":/[]")
        return SwaggerRenderPlugin.render(page, request, openapi_schema)


def docs_render_plugins(*, docs_client_id: str | None = None) -> list[OpenAPIRenderPlugin]:
    init_oauth: dict[str, Any] = {
        "appName": "Shop API docs",
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "read write",
    }
    if docs_client_id:
        init_oauth["clientId"] = docs_client_id
    return [
        SwaggerWithSignIn(
            path=["/swagger", "/"],
            js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
            init_oauth=init_oauth,
            favicon=FAVICON,
        ),
        RedocRenderPlugin(path="/redoc", js_url=f"{REDOC}/redoc.standalone.js", google_fonts=False, favicon=FAVICON),
    ]


def docs_assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[ASSETS_DIR],
        include_in_schema=False,
    )
