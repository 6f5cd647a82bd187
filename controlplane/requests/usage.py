"""Current quota usage of a tenant environment, read from the cloud port (never inside a transaction),
or, in the console (which holds no cloud credential), as the worker last recorded it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from controlplane.backends import Backends
from controlplane.backends.cloud import CloudBackend
from controlplane.errors import TemporaryError
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.models import ProjectUsage
from controlplane.tenancy.spec import TenantSpec

Usage = dict[str, int | None]  # flat quota key ("compute.cores") → in use now (None: not reported)
# Decisions (auto-approval, growth checks) on recorded usage older than this wait for a fresh one.
RECORDED_MAX_AGE_SECONDS = 15 * 60


@dataclass(frozen=True)
class Target:
    """What a request acts on, read in one short transaction before any backend call."""

    spec: TenantSpec
    project_ids: dict[str, str]  # environment → OpenStack project id, where known
    generation: int
    # environment → (usage, when the worker read it): for a process that holds no cloud credential
    recorded: dict[str, tuple[Usage, datetime]] = field(default_factory=dict)


def load_target(db: Database, org: str) -> Target:
    with db.transaction() as s:
        tenant = registry.get_tenant(s, org)
        resources = registry.resources_of(s, org)
        recorded = {
            row.environment: ({k: v[1] for k, v in row.quotas.items()}, as_utc(row.observed_at))
            for row in s.scalars(select(ProjectUsage).where(ProjectUsage.tenant_slug == org))
        }
        return Target(
            spec=registry.tenant_spec(tenant),
            project_ids={k.split(":", 1)[1]: v for k, v in resources.items() if k.startswith("project:")},
            generation=tenant.generation,
            recorded=recorded,
        )


def find_project_id(cloud: CloudBackend, target: Target, environment: str) -> str | None:
    known = target.project_ids.get(environment)
    if known:
        return known
    domain = cloud.find_domain(target.spec.domain_name)
    if domain is None:
        return None
    project = cloud.find_project(target.spec.project_name(environment), domain_id=domain.id)
    return project.id if project else None


def read_usage(backends: Backends, target: Target, environment: str) -> Usage:
    """Usage per quota key; empty when the environment has no project in the cloud yet. A process
    without the cloud credential (the console) takes what the worker recorded, if recent enough."""
    if not backends.holds_cloud:
        return recorded_usage(target, environment)
    cloud = backends.cloud
    project_id = find_project_id(cloud, target, environment)
    if project_id is None:
        return {}
    c = cloud.get_compute_quotas(project_id)
    n = cloud.get_network_quotas(project_id)
    v = cloud.get_volume_quotas(project_id)
    return {
        "compute.cores": c.cores.in_use,
        "compute.ram_mb": c.ram.in_use,
        "compute.instances": c.instances.in_use,
        "network.networks": n.networks.in_use,
        "network.subnets": n.subnets.in_use,
        "network.ports": n.ports.in_use,
        "network.routers": n.routers.in_use,
        "network.floating_ips": n.floatingips.in_use,
        "network.security_groups": n.security_groups.in_use,
        "network.security_group_rules": n.security_group_rules.in_use,
        "volume.gigabytes": v.gigabytes.in_use,
        "volume.volumes": v.volumes.in_use,
        "volume.snapshots": v.snapshots.in_use,
    }


def recorded_usage(target: Target, environment: str) -> Usage:
    if environment not in target.project_ids:
        return {}  # no project yet: nothing is used
    found = target.recorded.get(environment)
    if found is None or (utcnow() - found[1]).total_seconds() > RECORDED_MAX_AGE_SECONDS:
        raise TemporaryError(
            f"no recent usage of {target.spec.slug}/{environment} recorded by the worker",
            backend="openstack", hint="the worker records usage after each pass; is it running?",
        )
    return dict(found[0])
