"""The cloud port's vocabulary: the frozen dataclasses `CloudBackend` takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["ingress", "egress"]
EtherType = Literal["IPv4", "IPv6"]


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
