"""audit log: CADF event ids, Merkle leaf positions, tree nodes, signed checkpoints, archived keys

Existing events get a random CADF id; they are integrated into the log by the sequencer like new ones.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 19:55:00
"""

from __future__ import annotations

import hashlib
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_uuid", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("leaf_index", sa.BigInteger(), nullable=True))
    conn = op.get_bind()
    events = sa.table("audit_events", sa.column("id", sa.Integer), sa.column("event_uuid", sa.String))
    ids = [row[0] for row in conn.execute(sa.select(events.c.id))]
    if ids:
        conn.execute(
            events.update()
            .where(events.c.id == sa.bindparam("b_id"))
            .values(event_uuid=sa.bindparam("b_uuid")),
            [{"b_id": i, "b_uuid": str(uuid.uuid4())} for i in ids],
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("event_uuid", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_index("ix_audit_events_leaf_index", ["leaf_index"], unique=True)
        batch_op.create_index("ix_audit_events_org_id", ["org", "id"], unique=False)
        batch_op.create_index("ix_audit_events_initiator_id", ["initiator", "id"], unique=False)
        batch_op.create_index("ix_audit_events_org_occurred_at", ["org", "occurred_at"], unique=False)
        batch_op.create_index(
            "ix_audit_events_unsequenced",
            ["id"],
            unique=False,
            postgresql_where=sa.text("leaf_index IS NULL"),
            sqlite_where=sa.text("leaf_index IS NULL"),
        )

    op.create_table(
        "audit_tree_nodes",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tree_nodes")),
    )
    state = op.create_table(
        "audit_tree_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_tree_state")),
    )
    conn.execute(
        state.insert().values(
            id=1, tree_size=0, root_hash=hashlib.sha256(b"").digest(), updated_at=sa.func.now()
        )
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_name", sa.String(length=128), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("witness_key_name", sa.String(length=128), nullable=True),
        sa.Column("witness_key_version", sa.Integer(), nullable=True),
        sa.Column("witness_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("witness_signature", sa.LargeBinary(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("tree_size", name=op.f("uq_audit_checkpoints_tree_size")),
    )
    op.create_table(
        "audit_keys",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_audit_keys")),
    )


def downgrade() -> None:
    op.drop_table("audit_keys")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_tree_state")
    op.drop_table("audit_tree_nodes")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_unsequenced")
        batch_op.drop_index("ix_audit_events_leaf_index")
        batch_op.drop_index("ix_audit_events_org_occurred_at")
        batch_op.drop_index("ix_audit_events_initiator_id")
        batch_op.drop_index("ix_audit_events_org_id")
        batch_op.drop_column("leaf_index")
        batch_op.drop_column("event_uuid")
