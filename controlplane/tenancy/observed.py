"""What the cloud and Vault hold for one tenant right now, as the planner sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.backends.cloud import (
    ComputeQuotas,
    Domain,
    Group,
    Network,
    NetworkQuotas,
    Project,
    Router,
    SecurityGroup,
    Subnet,
    VolumeQuotas,
)
from controlplane.backends.keys import SigningKey

MANAGED_TAG = "cp-managed"
BASELINE_SG = "baseline"  # our per-project group: no ingress, all egress
EXTERNAL_NETWORK = "public"


def org_tag(slug: str) -> str:
    return f"cp-org={slug}"


def env_tag(env: str) -> str:
    return f"cp-env={env}"


@dataclass(frozen=True)
class ObservedEnvironment:
    project: Project | None = None
    network: Network | None = None
    subnet: Subnet | None = None
    router: Router | None = None
    router_subnet_ids: frozenset[str] = frozenset()
    baseline_sg: SecurityGroup | None = None
    default_sg: SecurityGroup | None = None  # Neutron's own per-project group
    role_assignments: frozenset[tuple[str, str]] = frozenset()  # (group_id, role name)
    compute: ComputeQuotas | None = None
    network_quotas: NetworkQuotas | None = None
    volume: VolumeQuotas | None = None


@dataclass(frozen=True)
class ObservedTenant:
    domain: Domain | None = None
    groups: dict[str, Group | None] = field(default_factory=dict)  # "admins" -> Group
    members: dict[str, frozenset[str]] = field(default_factory=dict)  # "admins" -> usernames
    users: dict[str, str] = field(default_factory=dict)  # username -> user id (people in spec)
    environments: dict[str, ObservedEnvironment] = field(default_factory=dict)
    # projects in the domain that no environment of the spec names (removed environments)
    extra_projects: tuple[Project, ...] = ()
    external_network: Network | None = None
    signing_key: SigningKey | None = None
    policy_hcl: str | None = None
    approle: bool = False
    kv_marker: bool = False

    def env(self, name: str) -> ObservedEnvironment:
        return self.environments.get(name, ObservedEnvironment())
