"""Catalog tables: an adjacency-list category tree, products, and the product-category link."""

from __future__ import annotations

from decimal import Decimal

from advanced_alchemy.base import IdentityAuditBase, orm_registry
from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Numeric, String, Table, Text, event, func
from sqlalchemy.orm import Mapped, mapped_column

from shop_catalog.search_schema import create_search_schema

__all__ = ("Category", "Product", "product_category")

product_category = Table(
    "catalog_product_category",
    orm_registry.metadata,
    Column("product_id", ForeignKey("catalog_product.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("catalog_category.id", ondelete="CASCADE"), primary_key=True),
    # covering index for "products of these categories": the primary key leads with product_id
    Index("ix_catalog_product_category_category_product", "category_id", "product_id"),
)


class Category(IdentityAuditBase):
    """A node of the tree; `parent_id` NULL for roots. Subtrees are read with recursive CTEs."""

    __tablename__ = "catalog_category"

    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_category.id"), index=True, default=None)


class Product(IdentityAuditBase):
    __tablename__ = "catalog_product"

    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), index=True)
    sku: Mapped[str] = mapped_column(String(50))
    stock_quantity: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True, index=True)

    __table_args__ = (
        Index("uq_catalog_product_sku", func.lower(sku), unique=True),
        Index("ix_catalog_product_created_at", "created_at"),
        # One per `ordering` of the public list (active products only, ties broken by id): a page is read
        # in index order and stops after its rows, whatever the size of the catalog. On PostgreSQL the price
        # rides along (INCLUDE, not a key), so a price filter is tested in the index, never in the table
        # (decision 215); stock stays out of every index, so an order's stock update remains a HOT update.
        Index("ix_catalog_product_active_price", "is_active", "price", "id"),
        Index("ix_catalog_product_active_name", "is_active", "name", "id", postgresql_include=["price"]),
        Index("ix_catalog_product_active_created", "is_active", "created_at", "id", postgresql_include=["price"]),
        CheckConstraint("stock_quantity >= 0", name="stock_not_negative"),
        CheckConstraint("price > 0", name="price_positive"),
    )


# `create_all` builds the search index with the table, as migration 0011 does (docs/search.md)
event.listen(Product.__table__, "after_create", create_search_schema)
