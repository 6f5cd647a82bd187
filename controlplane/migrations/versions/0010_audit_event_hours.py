"""audit event hours: per-hour counts the sequencer keeps, so the auditor's timeline reads no raw events

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Events sequenced before this migration are counted here (per organisation, then all of them
# under org '*'); later ones by the sequencer itself.
_HOUR = {
    "postgresql": "date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', occurred_at)",
}
BACKFILL = {
    dialect: [
        f"INSERT INTO audit_event_hours (hour, org, outcome, events) SELECT {hour}, {org}, outcome, "
        "count(*) FROM audit_events WHERE leaf_index IS NOT NULL GROUP BY 1, 2, 3"
        for org in ("org", "'*'")
    ]
    for dialect, hour in _HOUR.items()
}


def upgrade() -> None:
    op.create_table(
        "audit_event_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "org", "outcome", name=op.f("pk_audit_event_hours")),
    )
    for statement in BACKFILL[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("audit_event_hours")
