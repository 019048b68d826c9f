"""catalog

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from advanced_alchemy.types import DateTimeUTC
revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('catalog_category',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['catalog_category.id'], name=op.f('fk_catalog_category_parent_id_catalog_category')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_category'))
    )
    with op.batch_alter_table('catalog_category', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_category_parent_id'), ['parent_id'], unique=False)

    op.create_table('catalog_product',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('price', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('sku', sa.String(length=50), nullable=False),
    sa.Column('stock_quantity', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint('price > 0', name=op.f('ck_catalog_product_price_positive')),
    sa.CheckConstraint('stock_quantity >= 0', name=op.f('ck_catalog_product_stock_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_product'))
    )
    with op.batch_alter_table('catalog_product', schema=None) as batch_op:
        batch_op.create_index('ix_catalog_product_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_product_is_active'), ['is_active'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_product_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_product_price'), ['price'], unique=False)
    op.create_index('uq_catalog_product_sku', 'catalog_product', [sa.text('lower(sku)')], unique=True)

    op.create_table('catalog_product_category',
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('category_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['catalog_category.id'], name=op.f('fk_catalog_product_category_category_id_catalog_category'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['catalog_product.id'], name=op.f('fk_catalog_product_category_product_id_catalog_product'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('product_id', 'category_id', name=op.f('pk_catalog_product_category'))
    )
    with op.batch_alter_table('catalog_product_category', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_product_category_category_id'), ['category_id'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('catalog_product_category', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_product_category_category_id'))

    op.drop_table('catalog_product_category')
    with op.batch_alter_table('catalog_product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_product_price'))
        batch_op.drop_index(batch_op.f('ix_catalog_product_name'))
        batch_op.drop_index(batch_op.f('ix_catalog_product_is_active'))
        batch_op.drop_index('ix_catalog_product_created_at')

    op.drop_index('uq_catalog_product_sku', table_name='catalog_product')
    op.drop_table('catalog_product')
    with op.batch_alter_table('catalog_category', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_category_parent_id'))

    op.drop_table('catalog_category')
