"""process roles: what the worker read from the cloud for the console, and what the console asks
the worker to do (issue 12: the console holds no cloud-admin or key-management credential)

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_usage",
        sa.Column("project_id", sa.String(length=120), nullable=False),
        sa.Column("tenant_slug", sa.String(length=32), nullable=False),
        sa.Column("environment", sa.String(length=32), nullable=False),
        sa.Column("quotas", sa.JSON(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_slug"], ["tenants.slug"], ondelete="CASCADE",
                                name=op.f("fk_project_usage_tenant_slug_tenants")),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_usage")),
    )
    op.create_index(op.f("ix_project_usage_tenant_slug"), "project_usage", ["tenant_slug"])
    op.create_table(
        "worker_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("tenant_slug", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_tasks")),
    )
    op.create_index("ix_worker_tasks_pending", "worker_tasks", ["done_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_worker_tasks_pending", table_name="worker_tasks")
    op.drop_table("worker_tasks")
    op.drop_index(op.f("ix_project_usage_tenant_slug"), table_name="project_usage")
    op.drop_table("project_usage")
