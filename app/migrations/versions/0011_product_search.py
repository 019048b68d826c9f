"""product search: an FTS5 index (SQLite) or a weighted tsvector with GIN (PostgreSQL), kept by triggers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

The triggers keep the index in the transaction of every write of a product's name, SKU or description, so
a rolled-back upload leaves no trace in it and a Core bulk insert needs no code of its own (docs/search.md).
`shop search-reindex` rebuilds it from the products, for recovery only.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from shop_catalog import SEARCH_SCHEMA_V1_DOWN, SEARCH_SCHEMA_V1_UP

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    _run(SEARCH_SCHEMA_V1_UP[op.get_bind().dialect.name])


def downgrade() -> None:
    _run(SEARCH_SCHEMA_V1_DOWN[op.get_bind().dialect.name])
