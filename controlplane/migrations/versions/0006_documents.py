"""documents: the registry and verification counts (public keys live in signing_public_keys, 0002)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("doc_type", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("recipient", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_name", sa.String(length=128), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by", sa.String(length=32), nullable=True),
        sa.Column("import_ref", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_documents")),
        sa.UniqueConstraint("org", "import_ref", name="uq_documents_org_import_ref"),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index("ix_documents_org_issued_at", ["org", "issued_at"], unique=False)

    op.create_table(
        "document_verification_counts",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "issuer", "verdict", name=op.f("pk_document_verification_counts")),
    )


def downgrade() -> None:
    op.drop_table("document_verification_counts")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_org_issued_at")
    op.drop_table("documents")
