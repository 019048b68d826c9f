"""Every context's ORM models, imported together so the shared metadata is complete (for Alembic)."""

from shop_catalog import Category, Product, product_category
from shop_identity import AccessToken, Customer

__all__ = ("AccessToken", "Category", "Customer", "Product", "product_category")
