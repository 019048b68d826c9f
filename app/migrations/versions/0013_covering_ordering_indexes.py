"""PostgreSQL: the name and created_at ordering indexes carry the price (INCLUDE), so a page under a price filter
is read from the index alone (decision 215). SQLite keeps its indexes as they are.

Each index is built anew CONCURRENTLY under a temporary name, the old one dropped CONCURRENTLY, and the new one
renamed: the product list never runs without its ordering's index, and writes go on during the build.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_catalog_product_active_name": ["is_active", "name", "id"],
    "ix_catalog_product_active_created": ["is_active", "created_at", "id"],
}


def _rebuild(include: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            building = f"{name}_building"
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {building}")  # left by a build that was interrupted
            op.create_index(
                building, "catalog_product", columns, postgresql_include=include, postgresql_concurrently=True
            )
            op.drop_index(name, table_name="catalog_product", postgresql_concurrently=True)
            op.execute(f"ALTER INDEX {building} RENAME TO {name}")


def upgrade() -> None:
    _rebuild(["price"])


def downgrade() -> None:
    _rebuild([])
