"""Leases: a row per tenant saying which worker may act on it until when (ironic-style locks)."""

from __future__ import annotations

import os
import socket
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
    stale = (TenantLease.expires_at < now) | (TenantLease.owner == owner)
    holder = session.get(TenantLease, tenant)
    if holder is not None and _owner_is_dead_here(holder.owner):
        # A worker on this host that died (killed, OOM) cannot renew: don't wait out its TTL.
        stale = stale | (TenantLease.owner == holder.owner)
    taken = session.execute(
        update(TenantLease)
        .where(TenantLease.tenant_slug == tenant)
        .where(stale)
        .values(owner=owner, acquired_at=now, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def _owner_is_dead_here(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def renew_lease(session: Session, tenant: str, *, owner: str, ttl: timedelta = DEFAULT_TTL) -> bool:
    result = session.execute(
        update(TenantLease)
        .where(TenantLease.tenant_slug == tenant, TenantLease.owner == owner)
        .values(expires_at=utcnow() + ttl)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_lease(session: Session, tenant: str, *, owner: str) -> None:
    session.execute(delete(TenantLease).where(TenantLease.tenant_slug == tenant, TenantLease.owner == owner))
