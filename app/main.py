"""The app factory: one Litestar app composed of the context plugins and the shared auth middleware."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme, Tag
from litestar_saq import SAQConfig, SAQPlugin

from app.auth import build_auth_middleware
from app.db import make_alchemy_config
from app.health import HealthController
from app.settings import Settings, get_settings
from shop_catalog import CatalogPlugin
from shop_identity import SCOPES, IdentityPlugin, IdentitySettings
from shop_kernel import problem_exception_handlers
from shop_notify import NotifyPlugin
from shop_ordering import OrderingPlugin

__all__ = ("create_app",)

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
"""Used only when no REDIS_URL is configured and `shop serve` did not start the embedded one."""
TOKEN_URL = "/oauth/token"  # noqa: S105 - a path, not a secret


def openapi_config(settings: Settings) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Shop API",
        version="0.1.0",
        description=(
            "E-commerce REST API: catalog with an unlimited-depth category tree, orders with inventory, "
            "customers, OAuth2. Errors are RFC 9457 `application/problem+json` documents."
        ),
        path="/schema",
        render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        tags=[
            Tag(name="Customers", description="Registration and profiles"),
            Tag(name="Operations", description="Health and readiness probes"),
            Tag(name="Notifications", description="SMS and e-mail log, retries, delivery reports"),
            Tag(
                name="OAuth2",
                description=(
                    "OAuth2 authorization server and OpenID Connect provider: authorization code with PKCE (S256), "
                    "refresh token rotation, client credentials, revocation, introspection, discovery "
                    "(see docs/oauth.md)."
                ),
            ),
        ],
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(
                    type="http", scheme="bearer", description="An OAuth2 access token: `Authorization: Bearer <token>`"
                ),
                "OAuth2": SecurityScheme(
                    type="oauth2",
                    flows=OAuthFlows(
                        authorization_code=OAuthFlow(
                            authorization_url="/oauth/authorize",
                            token_url=TOKEN_URL,
                            scopes=dict(SCOPES),
                        ),
                        client_credentials=OAuthFlow(token_url=TOKEN_URL, scopes=dict(SCOPES)),
                    ),
                ),
            }
        ),
        enabled_endpoints=None if settings.openapi_enabled else set(),
    )


def identity_settings(settings: Settings) -> IdentitySettings:
    return IdentitySettings(
        access_token_ttl=settings.access_token_ttl,
        refresh_token_ttl=settings.refresh_token_ttl,
        issuer=settings.oauth_issuer,
        signing_key_pem=settings.signing_key_pem(),
        retired_signing_key_pems=settings.oauth_retired_signing_key_pems,
        session_secret=f"oauth-session:{settings.secret_key}".encode(),
        secure_cookies=settings.secure_cookies,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    alchemy = make_alchemy_config(settings)
    session_maker = alchemy.create_session_maker()
    notify = NotifyPlugin(settings.notify, session_maker=session_maker)
    queues = SAQPlugin(
        SAQConfig(
            queue_configs=[
                notify.queue_config(
                    settings.redis_url or LOCAL_REDIS,
                    in_process=settings.worker_in_process and bool(settings.redis_url),
                )
            ]
        )
    )
    return Litestar(
        route_handlers=[HealthController],
        plugins=[
            SQLAlchemyPlugin(config=alchemy),
            IdentityPlugin(identity_settings(settings)),
            CatalogPlugin(),
            OrderingPlugin(),
            notify,
            queues,
        ],
        middleware=[build_auth_middleware(settings, session_maker)],
        exception_handlers=problem_exception_handlers(),
        openapi_config=openapi_config(settings) if settings.openapi_enabled else None,
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="debug",
            disable_stack_trace={404, 401, 403, 405},
        ),
        debug=False,
        state=State({"settings": settings, "alchemy": alchemy}),
    )
