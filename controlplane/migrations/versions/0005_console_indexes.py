"""console indexes: a tenant's newest events by id

The detail page and /api/v1/tenants/{slug}/events read `WHERE tenant_slug = ? ORDER BY id DESC
LIMIT n`. With only (tenant_slug, occurred_at), PostgreSQL walks the primary key backwards and
filters: for a tenant whose events are old that reads most of the table (bench/console: 99,000 rows
and 8.3 ms at 100,000 events, growing with the table); with (tenant_slug, id) it reads n rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 18:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_events", schema=None) as batch_op:
        batch_op.create_index("ix_tenant_events_tenant_id", ["tenant_slug", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tenant_events", schema=None) as batch_op:
        batch_op.drop_index("ix_tenant_events_tenant_id")
