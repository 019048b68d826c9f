"""an index per ordering of the public product list: (is_active, price|name|created_at, id)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_catalog_product_active_price": ["is_active", "price", "id"],
    "ix_catalog_product_active_name": ["is_active", "name", "id"],
    "ix_catalog_product_active_created": ["is_active", "created_at", "id"],
}


def upgrade() -> None:
    # PostgreSQL builds them CONCURRENTLY (outside the migration's transaction): the previous release keeps
    # writing products while a large catalog is indexed (decision 67). SQLite has no such option.
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            op.create_index(name, "catalog_product", columns, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.drop_index(name, table_name="catalog_product", postgresql_concurrently=True)
