"""audit checkpoints as C2SP notes: the signed checkpoint text and the witness's cosignature lines

Checkpoints signed before this revision keep their old text (NULL `note`: rebuilt from the row as
`controlplane audit log` / size / root / `time ...`) and their old co-signature columns, so they
still verify; new ones store the exact C2SP tlog-checkpoint text the audit key signed and the
cosignature/v1 line(s) the independent witness answered.

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-08 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("cosignature", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_column("cosignature")
        batch.drop_column("note")
