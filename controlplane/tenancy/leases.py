"""Leases: a row per tenant saying which worker may act on it until when (ironic-style locks)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.storage import utcnow
from controlplane.tenancy.models import TenantLease

DEFAULT_TTL = timedelta(minutes=5)


def acquire_lease(session: Session, tenant: str, *, owner: str, ttl: timedelta = DEFAULT_TTL) -> bool:
    """Take the tenant's lease if it is free, expired or already ours. Atomic on SQLite and PostgreSQL:
    an insert races on the primary key, a takeover is a conditional update."""
    now = utcnow()
    try:
        with session.begin_nested():
            session.add(TenantLease(tenant_slug=tenant, owner=owner, acquired_at=now, expires_at=now + ttl))
        return True
    except IntegrityError:
        pass
    taken = session.execute(
        update(TenantLease)
        .where(TenantLease.tenant_slug == tenant)
        .where((TenantLease.expires_at < now) | (TenantLease.owner == owner))
        .values(owner=owner, acquired_at=now, expires_at=now + ttl)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def renew_lease(session: Session, tenant: str, *, owner: str, ttl: timedelta = DEFAULT_TTL) -> bool:
    result = session.execute(
        update(TenantLease).where(TenantLease.tenant_slug == tenant, TenantLease.owner == owner)
        .values(expires_at=utcnow() + ttl)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_lease(session: Session, tenant: str, *, owner: str) -> None:
    session.execute(delete(TenantLease).where(TenantLease.tenant_slug == tenant,
                                              TenantLease.owner == owner))
