"""Current quota usage of a tenant environment, read from the cloud port (never inside a transaction)."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.backends.cloud import CloudBackend
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.spec import TenantSpec

Usage = dict[str, int | None]  # flat quota key ("compute.cores") → in use now (None: not reported)


@dataclass(frozen=True)
class Target:
    """What a request acts on, read in one short transaction before any backend call."""

    spec: TenantSpec
    project_ids: dict[str, str]  # environment → OpenStack project id, where known
    generation: int


def load_target(db: Database, org: str) -> Target:
    with db.transaction() as s:
        tenant = registry.get_tenant(s, org)
        resources = registry.resources_of(s, org)
        return Target(
            spec=registry.tenant_spec(tenant),
            project_ids={k.split(":", 1)[1]: v for k, v in resources.items() if k.startswith("project:")},
            generation=tenant.generation,
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


def read_usage(cloud: CloudBackend, target: Target, environment: str) -> Usage:
    """Usage per quota key; empty when the environment has no project in the cloud yet."""
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
