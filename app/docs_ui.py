"""The OpenAPI UIs (Swagger UI at `/schema`, Redoc at `/schema/redoc`) with assets served by the app itself.

Litestar's render plugins load their JavaScript, CSS, fonts and favicon from public CDNs by default;
an operator's browser without internet access (or a strict content policy) would get a blank page.
The files are vendored unmodified under `app/static/openapi/` (see its README for versions and licenses).
"""

from __future__ import annotations

from pathlib import Path

from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

__all__ = ("ASSETS_PATH", "docs_assets_router", "docs_render_plugins")

ASSETS_DIR = Path(__file__).parent / "static" / "openapi"
ASSETS_PATH = "/schema/assets"
SWAGGER = f"{ASSETS_PATH}/swagger-ui-5.18.2"
REDOC = f"{ASSETS_PATH}/redoc-2.5.4"
FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER}/favicon-32x32.png'>"


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    return [
        SwaggerRenderPlugin(
            path=["/swagger", "/"],
            js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
            oauth2_redirect_url=f"{SWAGGER}/oauth2-redirect.html",
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
