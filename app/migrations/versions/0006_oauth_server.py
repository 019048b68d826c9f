"""OAuth2 server: clients, authorization codes, token families and refresh tokens

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_REFERENCED_TABLES = {"resolve_fks": False}


def upgrade() -> None:
    op.create_table(
        "identity_oauth_client",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("client_secret_hash", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("grant_types", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("may_introspect", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_oauth_client")),
        sa.UniqueConstraint("client_id", name=op.f("uq_identity_oauth_client_client_id")),
    )
    op.create_table(
        "identity_authorization_code",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=True),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=10), nullable=True),
        sa.Column("auth_time", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("used_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("family_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["identity_oauth_client.client_id"],
            name=op.f("fk_identity_authorization_code_client_id_identity_oauth_client"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["identity_customer.id"],
            name=op.f("fk_identity_authorization_code_customer_id_identity_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_authorization_code")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_identity_authorization_code_code_hash")),
    )
    with op.batch_alter_table("identity_authorization_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_authorization_code_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_authorization_code_customer_id"), ["customer_id"], unique=False)

    # SQLite rebuilds this table (a unique constraint cannot be added in place). Reflecting it would also
    # reflect the tables its foreign keys point to, and identity_customer's lower() indexes cannot be reflected
    # (SAWarning "Skipped unsupported reflection of expression-based index"). The rebuild needs only the
    # referenced table's name and key column, which alembic stubs itself: the DDL is the same.
    with op.batch_alter_table("identity_access_token", schema=None, reflect_kwargs=NO_REFERENCED_TABLES) as batch_op:
        batch_op.add_column(sa.Column("family_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("refresh_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("refresh_expires_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("refresh_used_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_identity_access_token_family_id"), ["family_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_identity_access_token_refresh_token_hash"), ["refresh_token_hash"]
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_access_token", schema=None, reflect_kwargs=NO_REFERENCED_TABLES) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_identity_access_token_refresh_token_hash"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_identity_access_token_family_id"))
        batch_op.drop_column("refresh_used_at")
        batch_op.drop_column("refresh_expires_at")
        batch_op.drop_column("refresh_token_hash")
        batch_op.drop_column("family_id")

    with op.batch_alter_table("identity_authorization_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_authorization_code_customer_id"))
        batch_op.drop_index(batch_op.f("ix_identity_authorization_code_client_id"))

    op.drop_table("identity_authorization_code")
    op.drop_table("identity_oauth_client")
