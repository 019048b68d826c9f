"""outbox subscribers: one row per (subscriber, event) handed over

Events still undispatched when this runs have no delivery row, so every subscriber gets them after the upgrade;
`kernel_outbox.dispatched_at` keeps its meaning (every subscriber of the event's topic has it).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kernel_outbox_delivery",
        sa.Column("subscriber", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("delivered_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["kernel_outbox.id"],
            name=op.f("fk_kernel_outbox_delivery_message_id_kernel_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber", "message_id", name=op.f("pk_kernel_outbox_delivery")),
    )


def downgrade() -> None:
    op.drop_table("kernel_outbox_delivery")
