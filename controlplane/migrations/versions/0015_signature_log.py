"""signature log: one row per signature made with an organisation's key, pointing at its audit event

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_signatures",
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("signed_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_name", sa.String(length=128), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("signed_by", sa.String(length=120), nullable=False),
        sa.Column("person", sa.String(length=120), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_document_signatures")),
    )
    op.create_index("ix_document_signatures_event_id", "document_signatures",
                    ["event_id", "batch_index"], unique=True)
    op.create_index("ix_document_signatures_org_signed_at", "document_signatures", ["org", "signed_at"])


def downgrade() -> None:
    op.drop_index("ix_document_signatures_org_signed_at", table_name="document_signatures")
    op.drop_index("ix_document_signatures_event_id", table_name="document_signatures")
    op.drop_table("document_signatures")
