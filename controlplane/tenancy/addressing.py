"""The address plan: each tenant environment gets its own subnet from a pool, never overlapping."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.errors import Conflict
from controlplane.tenancy.models import SubnetAllocation
from controlplane.tenancy.spec import TenantSpec

DEFAULT_POOL = "10.64.0.0/12"  # 4,096 /24s: room for every ministry's environments


def next_free_subnet(pool: str, prefix: int, taken: Iterable[str]) -> str:
    """The first subnet of `prefix` length in `pool` that overlaps none of `taken`. Pure."""
    network = ipaddress.ip_network(pool)
    used = sorted(ipaddress.ip_network(c) for c in taken)
    for candidate in network.subnets(new_prefix=prefix):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise Conflict(
        f"the address pool {pool} has no free /{prefix} left",
        hint="widen the pool (tenant_address_pool) or release decommissioned tenants",
    )


def allocation_for(session: Session, tenant: str, environment: str) -> str | None:
    return session.scalar(
        select(SubnetAllocation.cidr).where(
            SubnetAllocation.tenant_slug == tenant, SubnetAllocation.environment == environment
        )
    )


def allocate_subnet(
    session: Session, *, tenant: str, environment: str, prefix: int, pool: str = DEFAULT_POOL
) -> str:
    """Return the environment's subnet, allocating one if it has none (idempotent)."""
    existing = allocation_for(session, tenant, environment)
    if existing:
        return existing
    for _ in range(5):
        taken = session.scalars(select(SubnetAllocation.cidr)).all()
        cidr = next_free_subnet(pool, prefix, taken)
        try:
            with session.begin_nested():
                session.add(SubnetAllocation(cidr=cidr, tenant_slug=tenant, environment=environment))
            return cidr
        except IntegrityError:
            # Another worker took this CIDR, or allocated this environment, between read and write.
            existing = allocation_for(session, tenant, environment)
            if existing:
                return existing
    raise Conflict("could not allocate a subnet after 5 attempts; try again")


def preview_allocations(
    session: Session, tenant: str, spec: TenantSpec, pool: str = DEFAULT_POOL
) -> dict[str, str]:
    """The subnet each environment has or would get, allocating nothing (for `plan`)."""
    taken = list(session.scalars(select(SubnetAllocation.cidr)))
    result = {}
    for env in spec.environments:
        cidr = allocation_for(session, tenant, env.name)
        if cidr is None:
            cidr = next_free_subnet(pool, env.subnet_prefix, taken)
            taken.append(cidr)
        result[env.name] = cidr
    return result


def release_subnets(session: Session, tenant: str) -> list[str]:
    cidrs = list(session.scalars(select(SubnetAllocation.cidr).where(SubnetAllocation.tenant_slug == tenant)))
    session.execute(delete(SubnetAllocation).where(SubnetAllocation.tenant_slug == tenant))
    return cidrs
