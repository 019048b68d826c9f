"""Ordering tables: orders and their lines. Stock lives in the catalog and is reserved through its API."""

from __future__ import annotations

from decimal import Decimal

from advanced_alchemy.base import IdentityAuditBase
from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("Order", "OrderItem")


class Order(IdentityAuditBase):
    __tablename__ = "ordering_order"

    order_number: Mapped[str] = mapped_column(String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("identity_customer.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    total_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    notes: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        UniqueConstraint("customer_id", "idempotency_key", name="uq_ordering_order_idempotency"),
        Index("ix_ordering_order_customer_recent", "customer_id", "created_at", "id"),
        Index("ix_ordering_order_recent", "created_at", "id"),
        Index("ix_ordering_order_status", "status"),
    )


class OrderItem(IdentityAuditBase):
    __tablename__ = "ordering_order_item"

    order_id: Mapped[int] = mapped_column(ForeignKey("ordering_order.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_product.id"), index=True)
    """No cascade: a product that has been sold cannot be deleted, only deactivated."""
    product_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    subtotal: Mapped[Decimal] = mapped_column(Numeric(14, 2))

    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
