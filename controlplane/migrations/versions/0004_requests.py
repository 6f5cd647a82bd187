"""requests: resource requests and their steps

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("applied_generation", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_requests")),
    )
    with op.batch_alter_table("resource_requests", schema=None) as batch_op:
        batch_op.create_index("ix_resource_requests_org_state", ["org", "state"], unique=False)
        batch_op.create_index("ix_resource_requests_state", ["state"], unique=False)

    op.create_table(
        "request_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["resource_requests.id"],
            name=op.f("fk_request_steps_request_id_resource_requests"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_steps")),
    )
    with op.batch_alter_table("request_steps", schema=None) as batch_op:
        batch_op.create_index("ix_request_steps_request", ["request_id", "occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("request_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_request_steps_request")
    op.drop_table("request_steps")
    with op.batch_alter_table("resource_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_requests_state")
        batch_op.drop_index("ix_resource_requests_org_state")
    op.drop_table("resource_requests")
