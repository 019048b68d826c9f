"""`CatalogPlugin`: mounts the catalog context into any Litestar app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.plugins import InitPluginProtocol

from shop_catalog import models as _models  # noqa: F401  (tables join the shared metadata)
from shop_catalog.cache import COUNT_TTL_SECONDS, CatalogCache
from shop_catalog.controllers import CategoryController, ProductController
from shop_kernel import install_shared

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ("CatalogPlugin", "CatalogSettings")


@dataclass(frozen=True)
class CatalogSettings:
    """Configuration a host app passes to the plugin."""

    cache_ttl_seconds: float = 2.0
    """How long a replica may serve a category tree or average price another replica has changed."""
    count_ttl_seconds: float = COUNT_TTL_SECONDS
    """How old the `count` of a product-list page may be when more pages follow (decision 98); 0: never cached."""
    large_subtree_links: int = 5000
    """From this many product links, a category filter tests each product in page order instead of
    listing the subtree's products and sorting them (decision 99). Changes speed only, never results."""
    price_range_share: int = 16
    """SQLite: a small price range is read and sorted (instead of filtering along the ordering's index) only when
    the catalog holds at least this many times as many products (decision 146). Changes speed only."""


class CatalogPlugin(InitPluginProtocol):
    """Categories, products, bulk upload and analytics; the host app provides the SQLAlchemy session the kernel's
    `unit` of work is built over (`shop_kernel.units`)."""

    def __init__(self, settings: CatalogSettings | None = None) -> None:
        self.settings = settings or CatalogSettings()
        self.cache = CatalogCache(
            self.settings.cache_ttl_seconds,
            count_ttl_seconds=self.settings.count_ttl_seconds,
            large_subtree_links=self.settings.large_subtree_links,
            price_range_share=self.settings.price_range_share,
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        install_shared(app_config)
        self.cache.install(app_config)
        app_config.route_handlers.extend([CategoryController, ProductController])
        return app_config
