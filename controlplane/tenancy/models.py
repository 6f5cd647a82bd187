"""Tables owned by tenancy: tenants, their cloud resources, address plan, leases, events, runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.storage import Base, utcnow

_TS = DateTime(timezone=True)


class Tenant(Base):
    """Desired state (the spec) and where reconciliation of it stands."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name_en: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(300), default="")
    # generation increases with every accepted spec change; applied_generation is the last
    # one fully converged. Equal generations plus a non-empty plan means drift.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    applied_generation: Mapped[int] = mapped_column(Integer, default=0)
    phase: Mapped[str] = mapped_column(String(20), default="pending")
    domain_id: Mapped[str] = mapped_column(String(64), default="")
    imported: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(_TS)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_reconciled_at: Mapped[datetime | None] = mapped_column(_TS)
    drift_count: Mapped[int] = mapped_column(Integer, default=0)
    # digest of spec + baseline playbook at the last successful baseline run; rerun when it changes
    baseline_digest: Mapped[str] = mapped_column(String(64), default="")
    retention_until: Mapped[datetime | None] = mapped_column(_TS)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_TS, default=utcnow, onupdate=utcnow)


class TenantResource(Base):
    """A cloud or Vault object the control plane made or adopted for a tenant (id by logical key)."""

    __tablename__ = "tenant_resources"
    __table_args__ = (UniqueConstraint("tenant_slug", "key", name="uq_tenant_resources_tenant_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_slug: Mapped[str] = mapped_column(ForeignKey("tenants.slug", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(120))  # e.g. "project:prod", "network:prod"
    external_id: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class SubnetAllocation(Base):
    """The address plan: one CIDR per tenant environment, never handed out twice while held."""

    __tablename__ = "subnet_allocations"
    __table_args__ = (
        UniqueConstraint("tenant_slug", "environment", name="uq_subnet_allocations_tenant_env"),
    )

    cidr: Mapped[str] = mapped_column(String(43), primary_key=True)
    tenant_slug: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    allocated_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class TenantLease(Base):
    """Which worker may act on a tenant until when; a crashed worker's lease simply expires."""

    __tablename__ = "tenant_leases"

    tenant_slug: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(120))
    acquired_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(_TS)


class TenantEvent(Base):
    __tablename__ = "tenant_events"
    __table_args__ = (
        Index("ix_tenant_events_tenant_time", "tenant_slug", "occurred_at"),
        Index("ix_tenant_events_tenant_id", "tenant_slug", "id"),  # newest events of a tenant (0005)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_slug: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # action | drift | phase | error | playbook
    message: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(String(36), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PlaybookRun(Base):
    __tablename__ = "playbook_runs"
    __table_args__ = (Index("ix_playbook_runs_tenant", "tenant_slug", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_slug: Mapped[str] = mapped_column(String(32))
    playbook: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), default="running")
    rc: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(_TS)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PlaybookEvent(Base):
    __tablename__ = "playbook_events"
    __table_args__ = (UniqueConstraint("run_id", "counter", name="uq_playbook_events_run_counter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("playbook_runs.id", ondelete="CASCADE"))
    counter: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(60))
    task: Mapped[str] = mapped_column(String(300), default="")
    host: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[str] = mapped_column(String(20), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class SigningPublicKey(Base):
    """Public keys of every version of an organisation's signing key, archived when seen."""

    __tablename__ = "signing_public_keys"
    __table_args__ = (UniqueConstraint("key_name", "version", name="uq_signing_public_keys_key_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_slug: Mapped[str] = mapped_column(String(32))
    key_name: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(20), default="ed25519")
    public_key: Mapped[str] = mapped_column(String(200))  # base64 of the raw key
    archived_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class ProjectUsage(Base):
    """Quota limits and usage of one tenant project as the worker last read them from the cloud: the
    console (which holds no cloud credential) shows these with their age (tenancy.snapshots)."""

    __tablename__ = "project_usage"

    project_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    tenant_slug: Mapped[str] = mapped_column(ForeignKey("tenants.slug", ondelete="CASCADE"), index=True)
    environment: Mapped[str] = mapped_column(String(32))
    quotas: Mapped[dict[str, Any]] = mapped_column(JSON)  # flat key -> [limit, in_use or null]
    observed_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class WorkerTask(Base):
    """A change the console asked for and only the worker can make (it holds the cloud and key
    credentials): rotate a signing key, take a decommission stage (tenancy.handoff)."""

    __tablename__ = "worker_tasks"
    __table_args__ = (Index("ix_worker_tasks_pending", "done_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # key:rotate | decommission:advance
    tenant_slug: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by: Mapped[str] = mapped_column(String(120))
    requested_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(_TS)
    outcome: Mapped[str] = mapped_column(String(16), default="")  # "" pending | done | failed
    error: Mapped[str] = mapped_column(Text, default="")
