"""The cloud port: what tenant vending needs from an OpenStack-like cloud.

Everything here is the project's own vocabulary: frozen dataclasses in, frozen dataclasses
out, never SDK objects. The real adapter is `controlplane.backends.openstack.OpenStackCloud`;
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
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from controlplane.backends.health import HealthCheck

Direction = Literal["ingress", "egress"]
EtherType = Literal["IPv4", "IPv6"]

#: The services `CloudBackend.check` reports on, in this order.
CLOUD_SERVICES = ("keystone", "neutron", "nova", "placement", "glance", "cinder")


# --------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class Domain:
    """A Keystone domain: one per organisation. Tags are a set, reported sorted."""

    id: str
    name: str
    description: str = ""
    enabled: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Project:
    """A Keystone project inside a domain: one per environment of an organisation.

    Tags are a set, reported sorted."""

    id: str
    name: str
    domain_id: str
    description: str = ""
    enabled: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    domain_id: str
    description: str = ""


@dataclass(frozen=True)
class User:
    id: str
    name: str
    domain_id: str
    enabled: bool = True


@dataclass(frozen=True)
class RoleAssignment:
    """A role held on a project by exactly one of a user or a group."""

    role_id: str
    role_name: str
    project_id: str
    user_id: str | None = None
    group_id: str | None = None


# --------------------------------------------------------------------------- network
@dataclass(frozen=True)
class Network:
    id: str
    name: str
    project_id: str
    external: bool = False
    status: str = ""
    subnet_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    network_id: str
    project_id: str
    cidr: str
    gateway_ip: str | None = None
    dns_nameservers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Router:
    id: str
    name: str
    project_id: str
    #: The network the external gateway is set to, or None when the router has no gateway.
    external_network_id: str | None = None
    external_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouterInterface:
    router_id: str
    subnet_id: str
    port_id: str


@dataclass(frozen=True)
class SecurityGroupRuleSpec:
    """What a rule allows; None means "any" (any protocol, any port, any remote)."""

    direction: Direction
    ethertype: EtherType = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclass(frozen=True)
class SecurityGroupRule:
    id: str
    security_group_id: str
    spec: SecurityGroupRuleSpec


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    project_id: str
    description: str = ""
    rules: tuple[SecurityGroupRule, ...] = ()  # sorted by id

    @property
    def ingress_rules(self) -> tuple[SecurityGroupRule, ...]:
        return tuple(r for r in self.rules if r.spec.direction == "ingress")

    @property
    def egress_rules(self) -> tuple[SecurityGroupRule, ...]:
        return tuple(r for r in self.rules if r.spec.direction == "egress")


@dataclass(frozen=True)
class Port:
    id: str
    name: str
    network_id: str
    project_id: str
    device_owner: str = ""
    device_id: str = ""
    status: str = ""
    fixed_ips: tuple[str, ...] = ()


# --------------------------------------------------------------------------- compute / volume
@dataclass(frozen=True)
class Server:
    id: str
    name: str
    project_id: str
    status: str = ""


@dataclass(frozen=True)
class Volume:
    id: str
    name: str
    project_id: str
    size_gb: int = 0
    status: str = ""


# --------------------------------------------------------------------------- quotas
@dataclass(frozen=True)
class Quota:
    """One quota: its limit (-1 = unlimited) and what is used, when the API reports usage."""

    limit: int
    in_use: int | None = None


@dataclass(frozen=True)
class ComputeQuotas:
    cores: Quota
    ram: Quota  # MiB
    instances: Quota


@dataclass(frozen=True)
class NetworkQuotas:
    networks: Quota
    subnets: Quota
    ports: Quota
    routers: Quota
    floatingips: Quota
    security_groups: Quota
    security_group_rules: Quota


@dataclass(frozen=True)
class VolumeQuotas:
    gigabytes: Quota
    volumes: Quota
    snapshots: Quota


# --------------------------------------------------------------------------- inventory
@dataclass(frozen=True)
class ProjectResources:
    """What exists in the cloud under one project id: proof that a decommission left nothing."""

    project_id: str
    networks: tuple[Network, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    routers: tuple[Router, ...] = ()
    ports: tuple[Port, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    servers: tuple[Server, ...] = ()
    volumes: tuple[Volume, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(
            (self.networks, self.subnets, self.routers, self.ports, self.security_groups,
             self.servers, self.volumes)
        )

    def summary(self) -> dict[str, int]:
        """Counts per kind, e.g. for a log line or an audit record."""
        return {
            "networks": len(self.networks),
            "subnets": len(self.subnets),
            "routers": len(self.routers),
            "ports": len(self.ports),
            "security_groups": len(self.security_groups),
            "servers": len(self.servers),
            "volumes": len(self.volumes),
        }


@dataclass(frozen=True)
class UserCredentials:
    """Who `CloudBackend.as_user` authenticates as: a user's password, scoped to one project."""

    user_id: str
    password: str = field(repr=False)
    project_id: str


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
