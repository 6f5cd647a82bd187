"""Quota and usage of tenant projects as the worker read them, kept for the console (issue 12: the
console holds no cloud credential, so it shows what the worker recorded, with its age)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from controlplane.backends import Backends
from controlplane.backends.cloud import CloudBackend, ComputeQuotas, NetworkQuotas, Quota, VolumeQuotas
from controlplane.errors import ControlPlaneError, TemporaryError
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tenancy.models import ProjectUsage, Tenant, TenantResource
from controlplane.tenancy.phases import ACTIVE_PHASES
from controlplane.tenancy.usage import ProjectQuotas, read_project_quotas

log = logging.getLogger(__name__)

# Flat quota key (as requests and the portal name them) -> (group, attribute of the port's type).
FIELDS = {
    "compute.cores": ("compute", "cores"),
    "compute.ram_mb": ("compute", "ram"),
    "compute.instances": ("compute", "instances"),
    "network.networks": ("network", "networks"),
    "network.subnets": ("network", "subnets"),
    "network.ports": ("network", "ports"),
    "network.routers": ("network", "routers"),
    "network.floating_ips": ("network", "floatingips"),
    "network.security_groups": ("network", "security_groups"),
    "network.security_group_rules": ("network", "security_group_rules"),
    "volume.gigabytes": ("volume", "gigabytes"),
    "volume.volumes": ("volume", "volumes"),
    "volume.snapshots": ("volume", "snapshots"),
}
_TYPES = {"compute": ComputeQuotas, "network": NetworkQuotas, "volume": VolumeQuotas}


@dataclass(frozen=True)
class Snapshot:
    quotas: ProjectQuotas
    observed_at: datetime

    @property
    def age_seconds(self) -> float:
        return (utcnow() - as_utc(self.observed_at)).total_seconds()


def flatten_quotas(quotas: ProjectQuotas) -> dict[str, list[int | None]]:
    out: dict[str, list[int | None]] = {}
    for key, (group, attribute) in FIELDS.items():
        quota: Quota = getattr(getattr(quotas, group), attribute)
        out[key] = [quota.limit, quota.in_use]
    return out


def unflatten_quotas(flat: dict[str, Any]) -> ProjectQuotas:
    groups: dict[str, dict[str, Quota]] = {group: {} for group in _TYPES}
    for key, (group, attribute) in FIELDS.items():
        limit, in_use = flat.get(key) or (-1, None)
        groups[group][attribute] = Quota(int(limit), None if in_use is None else int(in_use))
    return ProjectQuotas(
        compute=ComputeQuotas(**groups["compute"]),
        network=NetworkQuotas(**groups["network"]),
        volume=VolumeQuotas(**groups["volume"]),
    )


def record_usage(db: Database, cloud: CloudBackend) -> int:
    """The worker's hook: read every active tenant project's quotas (outside any transaction) and
    keep them; a project that cannot be read keeps its older snapshot. How many were recorded."""
    with db.transaction() as s:
        projects = list(s.execute(
            select(TenantResource.tenant_slug, TenantResource.key, TenantResource.external_id)
            .join(Tenant, Tenant.slug == TenantResource.tenant_slug)
            .where(TenantResource.key.like("project:%"))
            .where(Tenant.phase.in_([p.value for p in ACTIVE_PHASES]))
        ))
    recorded = 0
    for slug, key, project_id in projects:
        try:
            quotas = read_project_quotas(cloud, project_id)
        except ControlPlaneError as exc:
            log.warning("usage of %s (%s) not read: %s", slug, key, exc.message)
            continue
        with db.transaction() as s:
            row = s.get(ProjectUsage, project_id) or ProjectUsage(project_id=project_id, tenant_slug=slug)
            row.environment, row.observed_at = key.split(":", 1)[1], utcnow()
            row.quotas = flatten_quotas(quotas)
            s.add(row)
        recorded += 1
    return recorded


def latest(db: Database, project_id: str) -> Snapshot | None:
    with db.transaction() as s:
        row = s.get(ProjectUsage, project_id)
        if row is None:
            return None
        return Snapshot(unflatten_quotas(row.quotas), as_utc(row.observed_at))


def project_quotas(
    db: Database, backends: Backends, project_id: str, *, max_age: float
) -> tuple[ProjectQuotas, float | None]:
    """The project's quotas and usage, and how old they are (None: read live now). A process that
    holds the cloud reads it (at most `max_age` old); the console reads what the worker recorded."""
    if backends.holds_cloud:
        return read_project_quotas(backends.cloud, project_id, max_age=max_age), None
    snapshot = latest(db, project_id)
    if snapshot is None:
        raise TemporaryError(
            "the worker has not recorded this project's usage yet", backend="openstack",
            hint="the worker records usage after each pass; is it running?",
        )
    return snapshot.quotas, snapshot.age_seconds
