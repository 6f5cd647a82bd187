"""Tables owned by requests: resource requests and every step of their lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.storage import Base, utcnow

_TS = DateTime(timezone=True)


class ResourceRequest(Base):
    """One organisation's request to change its tenant; approved, it becomes a spec generation."""

    __tablename__ = "resource_requests"
    __table_args__ = (
        Index("ix_resource_requests_org_state", "org", "state"),
        Index("ix_resource_requests_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org: Mapped[str] = mapped_column(String(32))  # tenant slug
    kind: Mapped[str] = mapped_column(String(20))  # quota_change | new_environment
    environment: Mapped[str] = mapped_column(String(16))
    # quota_change: {"quotas": {"compute": {"cores": 48}, ...}} (partial);
    # new_environment: {"name": ..., "quotas": {...full...}, "description": ...}
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="draft")
    created_by: Mapped[str] = mapped_column(String(120))  # audit name, e.g. "user:alice"
    # The person behind the filer (a session's user, a token's minting person): separation of duties
    # compares people, whatever channel they used.
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_TS, default=utcnow, onupdate=utcnow)
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    # the tenant generation the approval stored; the request is applied once it has converged
    applied_generation: Mapped[int | None] = mapped_column(Integer)
    approved_at: Mapped[datetime | None] = mapped_column(_TS)
    outcome: Mapped[str] = mapped_column(Text, default="")


class RequestStep(Base):
    """One step of a request's history: who did what, when, and why."""

    __tablename__ = "request_steps"
    __table_args__ = (Index("ix_request_steps_request", "request_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("resource_requests.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(120))
    actor_user_id: Mapped[int | None] = mapped_column(Integer)  # the person behind `actor`, if any
    occurred_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    comment: Mapped[str] = mapped_column(Text, default="")
