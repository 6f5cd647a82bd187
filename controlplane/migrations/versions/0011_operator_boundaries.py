"""operator boundaries: who minted each token, hourly token use, org invites, staff changes

Tokens record the person who minted them (the root person for a token minted by a token), requests
and their steps the person behind their actor, so separation of duties compares people. Plain token
reads are counted per hour instead of audited one by one. An organisation's first admin is invited
(one-time link) instead of created with a password an operator knows; staff-account changes wait for
a second operator. Existing organisation tokens with no expiry get one (90 days from now), and the
tokens and people of organisations already being decommissioned are revoked and disabled.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
DEFAULT_EXPIRY = timedelta(days=90)  # accounts.tokens.DEFAULT_ORG_TOKEN_DAYS
_DECOMMISSIONED = ("disabled", "archived", "retained", "deleting", "deleted")


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by_user_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_api_tokens_created_by_user_id", ["created_by_user_id"], unique=False)
    with op.batch_alter_table("resource_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by_user_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("request_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_user_id", sa.Integer(), nullable=True))
    op.create_table(
        "api_token_use_hours",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("hour", _TS, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"], ondelete="CASCADE",
                                name=op.f("fk_api_token_use_hours_token_id_api_tokens")),
        sa.PrimaryKeyConstraint("token_id", "hour", name=op.f("pk_api_token_use_hours")),
    )
    op.create_table(
        "org_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_org_invites_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_invites")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_org_invites_secret_hash")),
    )
    op.create_index("ix_org_invites_org", "org_invites", ["org"], unique=False)
    op.create_table(
        "staff_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("filed_by_user_id", sa.Integer(), nullable=False),
        sa.Column("filed_by", sa.String(120), nullable=False),
        sa.Column("filed_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_changes")),
    )
    op.create_index("ix_staff_changes_state", "staff_changes", ["state"], unique=False)
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """Attribute existing tokens and requests to people, expire forever-tokens, close dead orgs."""
    now = datetime.now(UTC)
    users: dict[str, int] = {name: uid for name, uid in conn.execute(sa.text("SELECT username, id FROM users"))}
    tokens = conn.execute(sa.text("SELECT id, prefix, created_by, user_id FROM api_tokens ORDER BY id")).all()
    by_prefix: dict[str, int | None] = {}
    # Tokens are minted after their maker, so one pass in id order resolves chains of tokens.
    for token_id, prefix, created_by, user_id in tokens:
        kind, _, name = (created_by or "").partition(":")
        person = user_id or (users.get(name) if kind == "user" else by_prefix.get(name) if kind == "token" else None)
        by_prefix[prefix] = person
        if person is not None:
            conn.execute(sa.text("UPDATE api_tokens SET created_by_user_id = :p WHERE id = :i"),
                         {"p": person, "i": token_id})

    def person_of(audit_name: str) -> int | None:
        kind, _, name = (audit_name or "").partition(":")
        return users.get(name) if kind == "user" else by_prefix.get(name) if kind == "token" else None

    for table, column, key in (("resource_requests", "created_by_user_id", "created_by"),
                               ("request_steps", "actor_user_id", "actor")):
        rows = conn.execute(sa.text(f"SELECT id, {key} FROM {table}")).all()  # noqa: S608 - fixed names
        for row_id, audit_name in rows:
            person = person_of(audit_name)
            if person is not None:
                conn.execute(sa.text(f"UPDATE {table} SET {column} = :p WHERE id = :i"),  # noqa: S608
                             {"p": person, "i": row_id})
    conn.execute(sa.text("UPDATE api_tokens SET expires_at = :e WHERE expires_at IS NULL AND user_id IS NULL"),
                 {"e": now + DEFAULT_EXPIRY})
    dead = [slug for (slug,) in conn.execute(
        sa.text("SELECT slug FROM tenants WHERE phase IN :phases").bindparams(
            sa.bindparam("phases", expanding=True)), {"phases": list(_DECOMMISSIONED)}).all()]
    if dead:
        orgs = {"orgs": dead}
        conn.execute(sa.text("UPDATE api_tokens SET revoked_at = :now WHERE revoked_at IS NULL AND org IN :orgs")
                     .bindparams(sa.bindparam("orgs", expanding=True)), {**orgs, "now": now})
        conn.execute(sa.text("UPDATE login_sessions SET revoked_at = :now WHERE revoked_at IS NULL AND user_id IN "
                             "(SELECT id FROM users WHERE org IN :orgs)")
                     .bindparams(sa.bindparam("orgs", expanding=True)), {**orgs, "now": now})
        conn.execute(sa.text("UPDATE users SET disabled = :t WHERE org IN :orgs")
                     .bindparams(sa.bindparam("orgs", expanding=True)), {**orgs, "t": True})


def downgrade() -> None:
    op.drop_index("ix_staff_changes_state", table_name="staff_changes")
    op.drop_table("staff_changes")
    op.drop_index("ix_org_invites_org", table_name="org_invites")
    op.drop_table("org_invites")
    op.drop_table("api_token_use_hours")
    with op.batch_alter_table("request_steps", schema=None) as batch_op:
        batch_op.drop_column("actor_user_id")
    with op.batch_alter_table("resource_requests", schema=None) as batch_op:
        batch_op.drop_column("created_by_user_id")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_api_tokens_created_by_user_id")
        batch_op.drop_column("created_by_user_id")
