"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('identity_customer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('username', sa.String(length=150), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('first_name', sa.String(length=150), nullable=False),
    sa.Column('last_name', sa.String(length=150), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=True),
    sa.Column('is_staff', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_customer'))
    )
    op.create_index('uq_identity_customer_username', 'identity_customer', [sa.text('lower(username)')], unique=True)
    op.create_index('uq_identity_customer_email', 'identity_customer', [sa.text('lower(email)')], unique=True)
    op.create_table('identity_access_token',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('client_id', sa.String(length=100), nullable=True),
    sa.Column('scope', sa.String(length=500), nullable=False),
    sa.Column('expires_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('revoked_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['identity_customer.id'], name=op.f('fk_identity_access_token_customer_id_identity_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_access_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_identity_access_token_token_hash'))
    )
    with op.batch_alter_table('identity_access_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_access_token_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_access_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_access_token_customer_id'))

    op.drop_table('identity_access_token')
    op.drop_index('uq_identity_customer_email', table_name='identity_customer')
    op.drop_index('uq_identity_customer_username', table_name='identity_customer')
    op.drop_table('identity_customer')
