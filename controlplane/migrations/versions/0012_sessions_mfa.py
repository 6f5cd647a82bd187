"""sessions and MFA: pending MFA sign-ins server-side, session details for fresh authentication and
the sessions page, per (name, address) throttling instead of the username-wide lockout

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-08 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authenticated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('client_ip', sa.String(length=45), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('user_agent', sa.String(length=200), nullable=False, server_default=''))

    op.create_table('mfa_pending',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('next_url', sa.String(length=256), nullable=False),
    sa.Column('client_ip', sa.String(length=45), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mfa_pending_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_mfa_pending'))
    )
    with op.batch_alter_table('mfa_pending', schema=None) as batch_op:
        batch_op.create_index('ix_mfa_pending_expires_at', ['expires_at'], unique=False)

    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_username_client_ip',
                              ['username', 'client_ip', 'occurred_at'], unique=False)
    # A locked username is what let anyone lock anyone out; the throttle now slows per address.
    op.drop_table('login_lockouts')


def downgrade() -> None:
    op.create_table('login_lockouts',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_login_lockouts'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_username_client_ip')
    with op.batch_alter_table('mfa_pending', schema=None) as batch_op:
        batch_op.drop_index('ix_mfa_pending_expires_at')
    op.drop_table('mfa_pending')
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_column('user_agent')
        batch_op.drop_column('client_ip')
        batch_op.drop_column('authenticated_at')
