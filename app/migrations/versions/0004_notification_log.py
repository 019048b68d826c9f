"""notification log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from advanced_alchemy.types import DateTimeUTC
revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notify_notification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('event_key', sa.String(length=200), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('order_number', sa.String(length=20), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('provider_message_id', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_notification')),
    sa.UniqueConstraint('event_key', 'channel', 'recipient', name='uq_notify_notification_once')
    )
    with op.batch_alter_table('notify_notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_notification_order_number'), ['order_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_notification_provider_message_id'), ['provider_message_id'], unique=False)
        batch_op.create_index('ix_notify_notification_status', ['status'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('notify_notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_notification_status')
        batch_op.drop_index(batch_op.f('ix_notify_notification_provider_message_id'))
        batch_op.drop_index(batch_op.f('ix_notify_notification_order_number'))

    op.drop_table('notify_notification')
