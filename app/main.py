"""The app factory: one Litestar app composed of the context plugins and the shared auth middleware."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme, Tag
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar_saq import SAQConfig, SAQPlugin

from app.allow import complete_allow_headers
from app.auth import build_auth_middleware
from app.body_limits import RequestBodyMiddleware
from app.cache_bus import RedisInvalidationBus
from app.db import make_alchemy_config
from app.docs_ui import DOCS_CLIENT_ID, docs_assets_router, docs_render_plugins
from app.edge import EdgeMiddleware, edge_headers_for_unrouted
from app.health import HealthController
from app.limits import (
    FallbackCounter,
    FallbackFailureCounter,
    MemoryCounter,
    RedisCounter,
    RedisFailureCounter,
    WindowCounter,
    rate_limit_middleware,
)
from app.observability import MetricsController, log_startup_warnings, logging_config
from app.redis_outage import RedisOutage
from app.settings import Settings, get_settings
from app.verified_email import VerifiedEmailForOrdersMiddleware
from app.worker import worker_queue
from shop_catalog import CatalogPlugin
from shop_identity import SCOPES, IdentityPlugin, IdentitySettings, MemoryFailureCounter, PersonalData
from shop_kernel import (
    RESPONSE_CACHE,
    ResponseCache,
    close_unit_of_work_runner,
    document_problems,
    problem_exception_handlers,
)
from shop_notify import NotifyPlugin, erase_customer_notifications, export_customer_notifications
from shop_ordering import OrderingPlugin, customer_order_summary, erase_customer_orders, export_customer_orders

if TYPE_CHECKING:
    from litestar.plugins import PluginProtocol
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_identity import FailureCounter

__all__ = ("context_plugins", "create_app")

TOKEN_URL = "/oauth/token"  # noqa: S105 - a path, not a secret


def openapi_config(settings: Settings) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Shop API",
        version="0.1.0",
        description=(
            "E-commerce REST API: catalog with an unlimited-depth category tree, orders with inventory, "
            "customers, OAuth2. Errors are RFC 9457 `application/problem+json` documents. Text anywhere in a request "
            "(body fields and field names, query and path parameters, forms, CSV) must be UTF-8 without control "
            "characters other than tab, line feed and carriage return; anything else is a 400 of type "
            "`/problems/invalid-text` naming the field."
        ),
        path="/schema",
        render_plugins=docs_render_plugins(docs_client_id=DOCS_CLIENT_ID if settings.demo_data else None),
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
        # the docs page's development client never works in production, even in a copied database
        refused_client_ids=frozenset({DOCS_CLIENT_ID}) if settings.is_production else frozenset(),
        account_link_base_url=settings.account_link_base_url,
    )


def context_plugins(
    settings: Settings,
    session_maker: Callable[[], AsyncSession],
    *,
    sign_in_failures: FailureCounter | None = None,
    plugins: Sequence[PluginProtocol] = (),
) -> list[PluginProtocol]:
    """The contexts' plugins and the host's own `plugins`: what the app mounts, and what its worker (in this
    process or `shop worker`) asks for outbox subscribers (`shop_kernel.OutboxConsumer`)."""
    return [
        IdentityPlugin(
            identity_settings(settings),
            sign_in_failures=sign_in_failures,
            customer_orders=customer_order_summary,
            personal_data=(
                PersonalData("orders", export_customer_orders, erase_customer_orders),
                PersonalData("notifications", export_customer_notifications, erase_customer_notifications),
            ),
        ),
        CatalogPlugin(settings.catalog),
        OrderingPlugin(),
        NotifyPlugin(settings.notify, session_maker=session_maker),
        *plugins,
    ]


def create_app(settings: Settings | None = None, *, plugins: Sequence[PluginProtocol] = ()) -> Litestar:
    """The app. `plugins` are mounted beside the contexts (a sibling consumer of the outbox, say); the outbox
    subscribers any mounted plugin declares join the relay of the worker (see `app.worker`)."""
    settings = settings or get_settings()
    alchemy = make_alchemy_config(settings)
    engine = alchemy.get_engine()
    session_maker = alchemy.create_session_maker()
    # Redis makes limits and cached pages shared by every replica; while it is unreachable they are kept in
    # this process (limits, sign-in failures) or skipped (cache), never a 500 (app/redis_outage.py).
    outage = RedisOutage()
    counter: WindowCounter = (
        FallbackCounter(RedisCounter(settings.redis_url), MemoryCounter(), outage)
        if settings.redis_url
        else MemoryCounter()
    )
    sign_in_failures = (
        FallbackFailureCounter(RedisFailureCounter(settings.redis_url), MemoryFailureCounter(), outage)
        if settings.redis_url
        else None
    )
    mounted = context_plugins(settings, session_maker, sign_in_failures=sign_in_failures, plugins=plugins)
    queues = SAQPlugin(
        SAQConfig(
            queue_configs=[
                worker_queue(settings, mounted, in_process=settings.worker_in_process and bool(settings.redis_url))
            ]
        )
    )
    # anonymous catalog reads answered from memory; a write anywhere drops what it changed everywhere (Redis)
    response_cache = ResponseCache()
    bus = RedisInvalidationBus(settings.redis_url, response_cache) if settings.redis_url else None
    app = Litestar(
        route_handlers=[
            HealthController,
            *([MetricsController] if settings.metrics_enabled else []),
            *([docs_assets_router()] if settings.openapi_enabled else []),
        ],
        plugins=[
            SQLAlchemyPlugin(config=alchemy),
            *mounted,
            queues,
            StructlogPlugin(
                StructlogConfig(structlog_logging_config=logging_config(settings), enable_middleware_logging=False)
            ),
        ],
        # Outermost first: request id, security headers, metrics and access log in one pass (they time
        # everything below, rate-limited answers included), then the body's size and deadline (an oversized
        # body is refused before any work), then who is calling, then how often they may; then (installed
        # by the plugins) the text rule and the response cache.
        middleware=[
            EdgeMiddleware(
                production=settings.is_production, metrics=settings.metrics_enabled, access_log=settings.access_log
            ),
            RequestBodyMiddleware(settings.request_limits.body_timeout_seconds),
            build_auth_middleware(settings, session_maker),
            *([VerifiedEmailForOrdersMiddleware()] if settings.require_verified_email_for_orders else []),
            *rate_limit_middleware(settings.rate_limits, counter),
        ],
        # Every route unless it declares its own (the bulk upload takes more, delivery reports less).
        request_max_body_size=settings.request_limits.max_body_bytes,
        exception_handlers=problem_exception_handlers(),
        before_send=[edge_headers_for_unrouted(production=settings.is_production)],
        # Every operation's error answers in the OpenAPI document, 429 too where rates are limited.
        on_startup=[
            partial(document_problems, everywhere={429} if settings.rate_limits.enabled else set()),
            partial(log_startup_warnings, settings),
            *([bus.start] if bus else []),
        ],
        on_shutdown=[
            *([bus.stop] if bus else []),
            partial(close_unit_of_work_runner, engine),
            counter.close,
            *([sign_in_failures.close] if sign_in_failures else []),
        ],
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_allow_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=[
                "Location",
                "X-Request-ID",
                "Idempotent-Replayed",
                "X-Created-Count",
                "X-Updated-Count",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
                "Retry-After",
            ],
            allow_credentials=False,
            max_age=600,
        )
        if settings.cors_allow_origins
        else None,
        openapi_config=openapi_config(settings) if settings.openapi_enabled else None,
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        logging_config=None,  # the structlog plugin sets it
        debug=False,
        state=State({"settings": settings, "alchemy": alchemy, RESPONSE_CACHE: response_cache}),
    )
    complete_allow_headers(app)  # OPTIONS lists every method of its path (app/allow.py)
    return app
