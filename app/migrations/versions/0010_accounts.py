"""accounts: one-time secrets (password reset, e-mail verification), verified e-mail, and the customer and
secret of a notification

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", DateTimeUTC(timezone=True), nullable=True))
    op.create_table(
        "identity_account_secret",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("used_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("failed_tries", sa.Integer(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["identity_customer.id"],
            name=op.f("fk_identity_account_secret_customer_id_identity_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_account_secret")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_identity_account_secret_secret_hash")),
    )
    with op.batch_alter_table("identity_account_secret", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_account_secret_customer_id"), ["customer_id"], unique=False)
    with op.batch_alter_table("notify_notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("secret", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_notify_notification_customer_id"), ["customer_id"], unique=False)
    # order notifications logged before this revision: their customer is their order's (erasure and export find them)
    op.execute(
        "UPDATE notify_notification SET customer_id = (SELECT o.customer_id FROM ordering_order o "
        "WHERE o.order_number = notify_notification.order_number) "
        "WHERE customer_id IS NULL AND order_number IS NOT NULL"
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ and PostgreSQL), not batch mode: a batch copy of identity_customer would lose
    # its expression indexes (lower(username), lower(email)), which alembic cannot reflect on SQLite.
    op.drop_index(op.f("ix_notify_notification_customer_id"), table_name="notify_notification")
    op.execute("ALTER TABLE notify_notification DROP COLUMN secret")
    op.execute("ALTER TABLE notify_notification DROP COLUMN customer_id")
    op.drop_index(op.f("ix_identity_account_secret_customer_id"), table_name="identity_account_secret")
    op.drop_table("identity_account_secret")
    op.execute("ALTER TABLE identity_customer DROP COLUMN email_verified_at")
