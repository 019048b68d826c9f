"""shop_catalog: the category tree, products, bulk upload and price analytics.

Public API for other contexts and host apps; everything else in this package is internal.
"""

from shop_catalog.bulk import BulkUpload
from shop_catalog.cache import stock_changed
from shop_catalog.models import Category, Product, product_category
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
    UnavailableProducts,
    check_stock,
    release_stock,
    reserve_stock,
)

__all__ = (
    "SEARCH_SCHEMA_V1_DOWN",
    "SEARCH_SCHEMA_V1_UP",
    "BulkUpload",
    "CatalogPlugin",
    "CatalogSettings",
    "Category",
    "CategoryRef",
    "CategoryService",
    "CategoryWrite",
    "InsufficientStock",
    "Product",
    "ProductRead",
    "ProductService",
    "ProductWrite",
    "ReservedProduct",
    "Shortage",
    "UnavailableProducts",
    "check_stock",
    "product_category",
    "rebuild_search_index",
    "release_stock",
    "reserve_stock",
    "search_owns",
    "stock_changed",
)
