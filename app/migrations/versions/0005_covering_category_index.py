"""covering index for products of a category

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_product_category", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_product_category_category_id")
        batch_op.create_index(
            "ix_catalog_product_category_category_product", ["category_id", "product_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("catalog_product_category", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_product_category_category_product")
        batch_op.create_index("ix_catalog_product_category_category_id", ["category_id"], unique=False)
