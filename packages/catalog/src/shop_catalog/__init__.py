"""shop_catalog: the category tree, products, bulk upload and price analytics.

Public API for other contexts and host apps; everything else in this package is internal. Its ORM models live in
`shop_catalog.models`, which host apps import for their metadata and migrations and no other context may import
(decision 161).
"""

from shop_catalog.bulk import BulkUpload
from shop_catalog.cache import stock_changed
from shop_catalog.plugin import CatalogPlugin, CatalogSettings
from shop_catalog.schemas import CategoryRef, CategoryWrite, ProductRead, ProductWrite
from shop_catalog.search import rebuild_search_index, search_owns
from shop_catalog.search_schema import SCHEMA_V1_DOWN as SEARCH_SCHEMA_V1_DOWN
from shop_catalog.search_schema import SCHEMA_V1_UP as SEARCH_SCHEMA_V1_UP
from shop_catalog.services import CategoryService, ProductService
from shop_catalog.stock import (
    InsufficientStock,
    ReservedProduct,
    Shortage,
    StockTaking,
    UnavailableProducts,
    check_stock,
    current_products,
    release_stock,
    reserve_stock,
)

__all__ = (
    "SEARCH_SCHEMA_V1_DOWN",
    "SEARCH_SCHEMA_V1_UP",
    "BulkUpload",
    "CatalogPlugin",
    "CatalogSettings",
    "CategoryRef",
    "CategoryService",
    "CategoryWrite",
    "InsufficientStock",
    "ProductRead",
    "ProductService",
    "ProductWrite",
    "ReservedProduct",
    "Shortage",
    "StockTaking",
    "UnavailableProducts",
    "check_stock",
    "current_products",
    "rebuild_search_index",
    "release_stock",
    "reserve_stock",
    "search_owns",
    "stock_changed",
)
