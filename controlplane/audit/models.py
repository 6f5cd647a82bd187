"""Tables owned by audit: the append-only event log (CADF fields), its Merkle tree and signed checkpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.storage import Base, utcnow

# CADF observer of every event: this control plane (one service id however many processes run).
OBSERVER = "controlplane"


def new_event_uuid() -> str:
    return str(uuid.uuid4())


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_action", "action"),
        # The auditor console filters by organisation and by actor and pages by id (keyset); without
        # these a rare organisation's filter scanned the table (261 ms at 1M events, 1.2 ms with).
        Index("ix_audit_events_org_id", "org", "id"),
        Index("ix_audit_events_initiator_id", "initiator", "id"),
        Index("ix_audit_events_org_occurred_at", "org", "occurred_at"),
        # Gap-free position in the Merkle log; NULL until the sequencer integrates the event.
        Index("ix_audit_events_leaf_index", "leaf_index", unique=True),
        # The sequencer's queue, a small index whatever the planner's statistics say: with stale
        # ones PostgreSQL walked the primary key past every sequenced row (220 ms a batch at 1M).
        Index(
            "ix_audit_events_unsequenced",
            "id",
            postgresql_where=text("leaf_index IS NULL"),
            sqlite_where=text("leaf_index IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    action: Mapped[str] = mapped_column(String(80))  # e.g. "account:login", "tenant:quota:update"
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure | pending
    initiator: Mapped[str] = mapped_column(String(120))  # "user:admin", "system:reconciler"
    target: Mapped[str] = mapped_column(String(200))  # "user:42", "tenant:health"
    observer: Mapped[str] = mapped_column(String(80), default=OBSERVER)
    org: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The CADF event id (a UUID), stable across exports.
    event_uuid: Mapped[str] = mapped_column(String(36), default=new_event_uuid)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger)


class AuditTreeNode(Base):
    """A complete subtree of the Merkle log: leaves [index * 2**level, (index + 1) * 2**level).
    Level 0 holds the leaf hashes. Written once by the sequencer, never updated."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditTreeState(Base):
    """One row: how many leaves are integrated and the root over them. Its row lock serialises
    sequencers (two may run; the second waits, then sees the first one's leaves)."""

    __tablename__ = "audit_tree_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger, default=0)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditCheckpoint(Base):
    """A signed statement of (tree size, root, time); valid as long as it matches the tree at its size."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_name: Mapped[str] = mapped_column(String(128))
    key_version: Mapped[int] = mapped_column(Integer)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    # The witness (standing for a security agency) co-signs after checking consistency.
    witness_key_name: Mapped[str | None] = mapped_column(String(128))
    witness_key_version: Mapped[int | None] = mapped_column(Integer)
    witness_signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    witness_signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    # C2SP tlog-checkpoint text as signed (NULL: a checkpoint from before, in the old text) and the
    # independent witness's cosignature/v1 line(s) over it (tlog-cosignature).
    note: Mapped[str | None] = mapped_column(Text)
    cosignature: Mapped[str | None] = mapped_column(Text)


class AuditKey(Base):
    """Public keys of the audit and witness keys, every version, archived when first used to sign."""

    __tablename__ = "audit_keys"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    archived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# The org value of audit_event_hours rows that count every organisation's events together.
ALL_ORGS = "*"


class AuditEventHour(Base):
    """Events per hour and outcome, for each organisation and (org ALL_ORGS) for all of them: at
    most 3 rows an hour for the unfiltered chart, whatever the volume. Added by the sequencer in the
    transaction that gives the events their leaf index, so each event is counted exactly once.
    Derived data for the auditor's charts (not part of the log; `audit check` does not use it)."""

    __tablename__ = "audit_event_hours"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)  # UTC, :00
    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
