"""shop_catalog: the catalog bounded context. Public API for other contexts and host apps."""

from shop_catalog.plugin import CatalogPlugin, CatalogSettings

__all__ = ("CatalogPlugin", "CatalogSettings")
