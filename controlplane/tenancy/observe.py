"""Observation: read what the cloud and Vault hold for one tenant (read-only backend calls)."""

from __future__ import annotations

from controlplane.backends import Backends
from controlplane.backends.cloud import CloudBackend, Network, Project
from controlplane.backends.keys import KeyBackend, signing_key_name, tenant_policy_name
from controlplane.errors import BackendNotFound
from controlplane.tenancy.observed import (
    BASELINE_SG,
    EXTERNAL_NETWORK,
    ObservedEnvironment,
    ObservedTenant,
)
from controlplane.tenancy.spec import GROUP_ROLES, TenantSpec

KV_MARKER = "tenants/{slug}/_meta"


def _observe_environment(cloud: CloudBackend, project: Project) -> ObservedEnvironment:
    name = project.name
    assignments = frozenset(
        (a.group_id, a.role_name) for a in cloud.list_role_assignments(project.id) if a.group_id
    )
    network = cloud.find_network(f"{name}-net", project_id=project.id)
    subnet = cloud.find_subnet(f"{name}-subnet", network_id=network.id) if network else None
    router = cloud.find_router(f"{name}-router", project_id=project.id)
    interfaces = (
        frozenset(i.subnet_id for i in cloud.list_router_interfaces(router.id))
        if router
        else frozenset[str]()
    )
    return ObservedEnvironment(
        project=project,
        network=network,
        subnet=subnet,
        router=router,
        router_subnet_ids=interfaces,
        baseline_sg=cloud.find_security_group(BASELINE_SG, project_id=project.id),
        default_sg=cloud.find_security_group("default", project_id=project.id),
        role_assignments=assignments,
        compute=cloud.get_compute_quotas(project.id),
        network_quotas=cloud.get_network_quotas(project.id),
        volume=cloud.get_volume_quotas(project.id),
    )


def _observe_vault(keys: KeyBackend, slug: str) -> dict[str, object]:
    found: dict[str, object] = {}
    try:
        found["signing_key"] = keys.get_signing_key(signing_key_name(slug))
    except BackendNotFound:
        found["signing_key"] = None
    try:
        found["policy_hcl"] = keys.read_policy(tenant_policy_name(slug))
    except BackendNotFound:
        found["policy_hcl"] = None
    try:
        keys.read_role_id(tenant_policy_name(slug))
        found["approle"] = True
    except BackendNotFound:
        found["approle"] = False
    try:
        keys.get_secret(KV_MARKER.format(slug=slug))
        found["kv_marker"] = True
    except BackendNotFound:
        found["kv_marker"] = False
    return found


class ExternalNetworkCache:
    """The shared external network rarely changes; look it up once per cloud per process."""

    def __init__(self) -> None:
        self._by_cloud: dict[int, Network] = {}

    def get(self, cloud: CloudBackend) -> Network | None:
        network = self._by_cloud.get(id(cloud))
        if network is None:
            network = cloud.find_external_network(EXTERNAL_NETWORK)
            if network is not None:
                self._by_cloud[id(cloud)] = network
        return network


EXTERNAL = ExternalNetworkCache()


def observe_tenant(spec: TenantSpec, backends: Backends) -> ObservedTenant:
    """Everything the planner compares with the spec. A new tenant costs a handful of calls."""
    cloud = backends.cloud
    vault = _observe_vault(backends.keys, spec.slug)
    external = EXTERNAL.get(cloud)
    domain = cloud.find_domain(spec.domain_name)
    if domain is None:
        return ObservedTenant(external_network=external, **vault)  # type: ignore[arg-type]
    groups = {g: cloud.find_group(spec.group_name(g), domain_id=domain.id) for g in GROUP_ROLES}
    members = {
        g: frozenset(u.name for u in cloud.list_group_members(group.id))
        for g, group in groups.items()
        if group is not None
    }
    wanted_users = {u for names in spec.people.values() for u in names}
    users = {}
    for username in sorted(wanted_users):
        user = cloud.find_user(username, domain_id=domain.id)
        if user is not None:
            users[username] = user.id
    projects = {p.name: p for p in cloud.list_projects(domain_id=domain.id)}
    environments = {}
    for env in spec.environments:
        project = projects.pop(spec.project_name(env.name), None)
        if project is not None:
            environments[env.name] = _observe_environment(cloud, project)
    return ObservedTenant(
        domain=domain,
        groups=groups,
        members=members,
        users=users,
        environments=environments,
        extra_projects=tuple(projects.values()),
        external_network=external,
        **vault,  # type: ignore[arg-type]
    )
