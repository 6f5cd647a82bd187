"""Tables owned by audit: the append-only event log (CADF fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.storage import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_action", "action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    action: Mapped[str] = mapped_column(String(80))  # e.g. "account:login", "tenant:quota:update"
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure | pending
    initiator: Mapped[str] = mapped_column(String(120))  # "user:admin", "system:reconciler"
    target: Mapped[str] = mapped_column(String(200))  # "user:42", "tenant:health"
    observer: Mapped[str] = mapped_column(String(80), default="controlplane")
    org: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
