"""Wire shapes of the catalog (msgspec). Prices travel as JSON strings ("999.99")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec
from litestar.openapi.spec import OpenAPIType, Schema

from shop_kernel import AMOUNT_PATTERN, MAX_ROW_ID, RowIdField

__all__ = (
    "AveragePrice",
    "CategoryNode",
    "CategoryPatch",
    "CategoryRef",
    "CategoryWrite",
    "ProductPatch",
    "ProductRead",
    "ProductWrite",
)

CategoryName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["Smartphones"])]
ProductName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["iPhone 15 Pro"])]
Description = Annotated[str, msgspec.Meta(max_length=10_000, examples=["Latest iPhone with titanium design"])]
SKU_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
"""Printable ASCII, no space at either end: a code people type and print on labels. Also what makes
"compared case-insensitively" mean the same in Python, SQLite (whose `lower()` folds ASCII only) and
PostgreSQL."""
Sku = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=50,
        pattern=SKU_PATTERN,
        examples=["IP15P-001"],
        description="Unique, compared case-insensitively; printable ASCII without leading or trailing spaces.",
    ),
]
Price = Annotated[
    Decimal,
    msgspec.Meta(
        examples=[Decimal("999.99")],
        description="Greater than 0, at most 10 digits with 2 decimal places; sent and returned as a string.",
        extra_json_schema={"extra": {"pattern": AMOUNT_PATTERN}},
    ),
]
Stock = Annotated[
    int,
    # Litestar drops a lower bound of 0 from optional fields (PATCH); `extra` states it in the document.
    msgspec.Meta(ge=0, le=2_000_000_000, examples=[50], extra_json_schema={"extra": {"minimum": 0}}),
]
CategoryIds = Annotated[
    list[RowIdField],
    msgspec.Meta(
        max_length=100,
        examples=[[2]],
        # Litestar does not carry the bounds of list items into the document; state them here.
        extra_json_schema={"extra": {"items": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_ROW_ID)}},
    ),
]


class CategoryRef(msgspec.Struct):
    """A category as shown inside a product."""

    id: int
    name: str
    parent: int | None
    full_path: str


class CategoryNode(msgspec.Struct):
    """A category with its whole subtree under `children`."""

    id: int
    name: str
    parent: int | None
    children: list[CategoryNode]
    full_path: str
    created_at: datetime
    updated_at: datetime


class CategoryWrite(msgspec.Struct):
    """`POST`/`PUT` of a category; `parent` null (or absent) makes a root."""

    name: CategoryName
    parent: RowIdField | None = None


class CategoryPatch(msgspec.Struct):
    name: CategoryName | msgspec.UnsetType = msgspec.UNSET
    parent: RowIdField | msgspec.UnsetType | None = msgspec.UNSET


class ProductRead(msgspec.Struct):
    id: int
    name: str
    description: str
    price: Decimal
    sku: str
    categories: list[CategoryRef]
    stock_quantity: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class ProductWrite(msgspec.Struct):
    """`POST`/`PUT` of a product, and one row of a bulk upload."""

    name: ProductName
    price: Price
    sku: Sku
    description: Description = ""
    categories: CategoryIds = msgspec.field(default_factory=list)
    stock_quantity: Stock = 0
    is_active: bool = True


class ProductPatch(msgspec.Struct):
    name: ProductName | msgspec.UnsetType = msgspec.UNSET
    price: Price | msgspec.UnsetType = msgspec.UNSET
    sku: Sku | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    categories: CategoryIds | msgspec.UnsetType = msgspec.UNSET
    stock_quantity: Stock | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class AveragePrice(msgspec.Struct):
    category: str
    category_path: str
    average_price: Annotated[float, msgspec.Meta(examples=[649.99])]
    total_products: int
