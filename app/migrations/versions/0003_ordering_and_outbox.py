"""ordering and outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from advanced_alchemy.types import DateTimeUTC
revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('kernel_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('dispatched_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_outbox'))
    )
    with op.batch_alter_table('kernel_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_kernel_outbox_pending', ['dispatched_at', 'id'], unique=False)

    op.create_table('ordering_order',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('order_number', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['identity_customer.id'], name=op.f('fk_ordering_order_customer_id_identity_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ordering_order')),
    sa.UniqueConstraint('customer_id', 'idempotency_key', name='uq_ordering_order_idempotency'),
    sa.UniqueConstraint('order_number', name=op.f('uq_ordering_order_order_number'))
    )
    with op.batch_alter_table('ordering_order', schema=None) as batch_op:
        batch_op.create_index('ix_ordering_order_customer_recent', ['customer_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_ordering_order_recent', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_ordering_order_status', ['status'], unique=False)

    op.create_table('ordering_order_item',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_ordering_order_item_quantity_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['ordering_order.id'], name=op.f('fk_ordering_order_item_order_id_ordering_order'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['catalog_product.id'], name=op.f('fk_ordering_order_item_product_id_catalog_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ordering_order_item'))
    )
    with op.batch_alter_table('ordering_order_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ordering_order_item_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ordering_order_item_product_id'), ['product_id'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('ordering_order_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ordering_order_item_product_id'))
        batch_op.drop_index(batch_op.f('ix_ordering_order_item_order_id'))

    op.drop_table('ordering_order_item')
    with op.batch_alter_table('ordering_order', schema=None) as batch_op:
        batch_op.drop_index('ix_ordering_order_status')
        batch_op.drop_index('ix_ordering_order_recent')
        batch_op.drop_index('ix_ordering_order_customer_recent')

    op.drop_table('ordering_order')
    with op.batch_alter_table('kernel_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_kernel_outbox_pending')

    op.drop_table('kernel_outbox')
