"""The cloud port: what tenant vending needs from an OpenStack-like cloud.

Everything here is the project's own vocabulary: frozen dataclasses in, frozen dataclasses
out, never SDK objects (they live in `controlplane.backends.cloud_types` and are re-exported
here). The real adapter is `controlplane.backends.openstack.OpenStackCloud`;
`tests/contract/test_cloud_contract.py` holds the contract every adapter must pass.

Rules every implementation keeps:

- ``find_*`` returns ``None`` when nothing matches; it never creates.
- ``ensure_*`` looks up by name (within the domain, project or network) before creating, so
  calling it twice returns the same object and creates nothing new. When the object exists it
  is returned as it is: comparing it with the desired state is the planner's job, and
  ``update_*`` changes mutable fields.
- ``delete_*`` treats "already gone" (404) as done, so a retry after a crash succeeds. Pass
  ``missing_ok=False`` to get `BackendNotFound` instead: a caller that may not see the object
  (another tenant's) gets a 404 from the cloud, and a silent success would then lie.
  A 403 is never swallowed.
- Failures are raised only as `controlplane.errors` backend errors: `TemporaryError` (retry
  later), `BackendPermissionDenied` (the cloud's policy said no), `BackendNotFound` (no such
  object where one is required) or another `PermanentError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from controlplane.backends.cloud_types import (
    ComputeQuotas,
    Direction,
    Domain,
    EtherType,
    Group,
    Network,
    NetworkQuotas,
    Port,
    Project,
    ProjectResources,
    Quota,
    RoleAssignment,
    Router,
    RouterInterface,
    SecurityGroup,
    SecurityGroupRule,
    SecurityGroupRuleSpec,
    Server,
    Subnet,
    User,
    UserCredentials,
    Volume,
    VolumeQuotas,
)
from controlplane.backends.health import HealthCheck

# The vocabulary is importable from here too: callers name the port's module, not where it is kept.
__all__ = [
    "CLOUD_SERVICES",
    "CloudBackend",
    "ComputeQuotas",
    "Direction",
    "Domain",
    "EtherType",
    "Group",
    "Network",
    "NetworkQuotas",
    "Port",
    "Project",
    "ProjectResources",
    "Quota",
    "RoleAssignment",
    "Router",
    "RouterInterface",
    "SecurityGroup",
    "SecurityGroupRule",
    "SecurityGroupRuleSpec",
    "Server",
    "Subnet",
    "User",
    "UserCredentials",
    "Volume",
    "VolumeQuotas",
]

#: The services `CloudBackend.check` reports on, in this order.
CLOUD_SERVICES = ("keystone", "neutron", "nova", "placement", "glance", "cinder")


# --------------------------------------------------------------------------- the port
@runtime_checkable
class CloudBackend(Protocol):
    """Where tenants live: identity (Keystone), networking (Neutron), quotas (Nova/Neutron/Cinder).

    Raises only `controlplane.errors.TemporaryError` and `PermanentError` subclasses.
    """

    # ---- health
    def check(self) -> list[HealthCheck]:
        """One HealthCheck per service in `CLOUD_SERVICES`: reachable, authenticated, version.

        Fast (short timeouts) and never raises: a failure is a HealthCheck with ``ok=False``
        and a hint that says how to fix it.
        """
        ...

    def as_user(self, credentials: UserCredentials) -> CloudBackend:
        """The same cloud, authenticated as a (tenant) user scoped to one project.

        Nothing is sent until the first call; a wrong password surfaces then as PermanentError.
        """
        ...

    # ---- domains
    def find_domain(self, name: str) -> Domain | None: ...

    def ensure_domain(
        self, name: str, *, description: str = "", tags: Sequence[str] = ()
    ) -> Domain: ...

    def update_domain(
        self,
        domain_id: str,
        *,
        description: str | None = None,
        enabled: bool | None = None,
        tags: Sequence[str] | None = None,
    ) -> Domain:
        """Change only the fields given; raises BackendNotFound if the domain is gone."""
        ...

    def delete_domain(self, domain_id: str, *, missing_ok: bool = True) -> None:
        """Disable, then delete the domain (Keystone refuses to delete an enabled one)."""
        ...

    def list_domains(self, *, tag: str | None = None) -> list[Domain]: ...

    # ---- projects
    def find_project(self, name: str, *, domain_id: str) -> Project | None: ...

    def get_project(self, project_id: str) -> Project:
        """Raises BackendNotFound if there is no such project."""
        ...

    def ensure_project(
        self,
        name: str,
        *,
        domain_id: str,
        description: str = "",
        tags: Sequence[str] = (),
        enabled: bool = True,
    ) -> Project: ...

    def list_projects(self, *, domain_id: str, tag: str | None = None) -> list[Project]: ...

    def update_project(
        self,
        project_id: str,
        *,
        description: str | None = None,
        enabled: bool | None = None,
        tags: Sequence[str] | None = None,
    ) -> Project: ...

    def delete_project(self, project_id: str, *, missing_ok: bool = True) -> None: ...

    # ---- groups and users
    def find_group(self, name: str, *, domain_id: str) -> Group | None: ...

    def ensure_group(self, name: str, *, domain_id: str, description: str = "") -> Group: ...

    def delete_group(self, group_id: str, *, missing_ok: bool = True) -> None: ...

    def find_user(self, name: str, *, domain_id: str) -> User | None: ...

    def ensure_user(
        self, name: str, *, domain_id: str, password: str, default_project_id: str | None = None
    ) -> User:
        """Create the user with this password; an existing user keeps its password."""
        ...

    def delete_user(self, user_id: str, *, missing_ok: bool = True) -> None: ...

    def add_group_member(self, group_id: str, user_id: str) -> None: ...

    def remove_group_member(self, group_id: str, user_id: str) -> None: ...

    def list_group_members(self, group_id: str) -> list[User]: ...

    # ---- role assignments on projects
    def assign_role(
        self,
        project_id: str,
        role_name: str,
        *,
        group_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Grant ``role_name`` on the project to exactly one of a group or a user (idempotent)."""
        ...

    def unassign_role(
        self,
        project_id: str,
        role_name: str,
        *,
        group_id: str | None = None,
        user_id: str | None = None,
    ) -> None: ...

    def list_role_assignments(self, project_id: str) -> list[RoleAssignment]:
        """Direct assignments on the project (not inherited, not effective)."""
        ...

    # ---- networks
    def find_external_network(self, name: str) -> Network | None: ...

    def find_network(self, name: str, *, project_id: str) -> Network | None: ...

    def get_network(self, network_id: str) -> Network:
        """Raises BackendNotFound when the network is absent or invisible to this caller."""
        ...

    def ensure_network(self, name: str, *, project_id: str) -> Network: ...

    def delete_network(self, network_id: str, *, missing_ok: bool = True) -> None: ...

    def find_subnet(self, name: str, *, network_id: str) -> Subnet | None: ...

    def ensure_subnet(
        self,
        name: str,
        *,
        network_id: str,
        project_id: str,
        cidr: str,
        gateway_ip: str | None = None,
        dns_nameservers: Sequence[str] = (),
    ) -> Subnet:
        """``cidr`` must be a network address (``10.1.2.0/24``); no gateway_ip means the first
        address of the range."""
        ...

    def delete_subnet(self, subnet_id: str, *, missing_ok: bool = True) -> None: ...

    def find_router(self, name: str, *, project_id: str) -> Router | None: ...

    def ensure_router(
        self, name: str, *, project_id: str, external_network_id: str | None = None
    ) -> Router:
        """Create the router, or set its gateway on an existing one that has none."""
        ...

    def delete_router(self, router_id: str, *, missing_ok: bool = True) -> None:
        """Delete a router with no interfaces left (its gateway goes with it)."""
        ...

    def ensure_router_interface(self, router_id: str, *, subnet_id: str) -> RouterInterface: ...

    def list_router_interfaces(self, router_id: str) -> list[RouterInterface]: ...

    def remove_router_interface(self, router_id: str, *, subnet_id: str) -> None: ...

    def find_security_group(self, name: str, *, project_id: str) -> SecurityGroup | None: ...

    def ensure_security_group(
        self, name: str, *, project_id: str, description: str = ""
    ) -> SecurityGroup:
        """A new group denies all ingress and allows all egress (IPv4 and IPv6)."""
        ...

    def delete_security_group(
        self, security_group_id: str, *, missing_ok: bool = True
    ) -> None: ...

    def list_security_group_rules(self, security_group_id: str) -> list[SecurityGroupRule]: ...

    def add_security_group_rule(
        self, security_group_id: str, spec: SecurityGroupRuleSpec
    ) -> SecurityGroupRule:
        """Add the rule, or return the identical rule that is already there."""
        ...

    def delete_security_group_rule(self, rule_id: str, *, missing_ok: bool = True) -> None: ...

    def list_ports(
        self, *, project_id: str | None = None, network_id: str | None = None
    ) -> list[Port]: ...

    # ---- servers and volumes (for usage checks and decommission)
    def create_server(
        self,
        name: str,
        *,
        flavor_name: str,
        image_name: str,
        network_id: str | None = None,
        wait_seconds: float = 120.0,
    ) -> Server:
        """Boot a server in the caller's project and wait until it is ACTIVE.

        With no ``network_id`` the server gets no network at all.
        """
        ...

    def delete_server(
        self, server_id: str, *, wait_seconds: float = 120.0, missing_ok: bool = True
    ) -> None: ...

    def delete_volume(self, volume_id: str, *, missing_ok: bool = True) -> None: ...

    def list_project_resources(self, project_id: str) -> ProjectResources:
        """Everything under the project id, including Neutron's "default" security group.

        Looking creates nothing (so it can prove a deleted project left nothing behind).
        """
        ...

    # ---- quotas
    def get_compute_quotas(self, project_id: str) -> ComputeQuotas: ...

    def set_compute_quotas(
        self,
        project_id: str,
        *,
        cores: int | None = None,
        ram: int | None = None,
        instances: int | None = None,
    ) -> ComputeQuotas:
        """Set the limits given. Nova accepts a limit below current usage: compare first.

        Returns the limits as stored; ``in_use`` is None (call get_compute_quotas for usage).
        """
        ...

    def reset_compute_quotas(self, project_id: str) -> None:
        """Back to the cloud's defaults (also what to do before deleting a project)."""
        ...

    def get_network_quotas(self, project_id: str) -> NetworkQuotas: ...

    def set_network_quotas(
        self,
        project_id: str,
        *,
        networks: int | None = None,
        subnets: int | None = None,
        ports: int | None = None,
        routers: int | None = None,
        floatingips: int | None = None,
        security_groups: int | None = None,
        security_group_rules: int | None = None,
    ) -> NetworkQuotas: ...

    def reset_network_quotas(self, project_id: str) -> None: ...

    def get_volume_quotas(self, project_id: str) -> VolumeQuotas: ...

    def set_volume_quotas(
        self,
        project_id: str,
        *,
        gigabytes: int | None = None,
        volumes: int | None = None,
        snapshots: int | None = None,
    ) -> VolumeQuotas: ...

    def reset_volume_quotas(self, project_id: str) -> None: ...
