"""Reads that run on nearly every catalog request, built once per database dialect.

Building a SELECT with a correlated subquery costs about as much as running it on SQLite (measured with
bench/floor.py and py-spy: statement construction and its cache key were a third of a product detail's
SQLAlchemy time). The statements here are built on first use and reused with bound parameters.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from sqlalchemy import Select, String, Table, bindparam, func, select
from sqlalchemy import cast as sql_cast

from shop_catalog.models import Product, product_category

__all__ = ("product_by_id", "products_with_categories")

PRODUCT = cast("Table", Product.__table__)


@cache
def products_with_categories(dialect: str) -> Select[Any]:
    """Product columns plus their category ids folded into one text column, so a page is one query."""
    link = product_category
    if dialect == "postgresql":
        folded = func.string_agg(sql_cast(link.c.category_id, String), ",")
    else:
        folded = func.group_concat(link.c.category_id, ",")
    category_ids = select(folded).where(link.c.product_id == PRODUCT.c.id).scalar_subquery()
    return select(PRODUCT, category_ids.label("category_ids"))


@cache
def product_by_id(dialect: str) -> Select[Any]:
    """One product with its category ids; parameter `product_id`."""
    return products_with_categories(dialect).where(PRODUCT.c.id == bindparam("product_id"))
