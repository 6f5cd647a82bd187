"""Neutron: networks, subnets, routers (with the external gateway), security groups, ports."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import Any

from openstack import exceptions as sdk_exc

from controlplane.backends.cloud import (
    Network,
    Port,
    Router,
    RouterInterface,
    SecurityGroup,
    SecurityGroupRule,
    SecurityGroupRuleSpec,
    Subnet,
)
from controlplane.backends.openstack.connection import ConnectionHolder
from controlplane.backends.openstack.errors import translated
from controlplane.errors import BackendNotFound, PermanentError

log = logging.getLogger(__name__)

_GATEWAY_OWNER = "network:router_gateway"
_ANY_PREFIXES = frozenset({"0.0.0.0/0", "::/0"})


def network_from_sdk(obj: Any) -> Network:
    return Network(
        id=obj.id,
        name=obj.name or "",
        project_id=obj.project_id or "",
        external=bool(obj.is_router_external),
        status=obj.status or "",
        subnet_ids=tuple(obj.subnet_ids or ()),
    )


def subnet_from_sdk(obj: Any) -> Subnet:
    return Subnet(
        id=obj.id,
        name=obj.name or "",
        network_id=obj.network_id,
        project_id=obj.project_id or "",
        cidr=obj.cidr,
        gateway_ip=obj.gateway_ip,
        dns_nameservers=tuple(obj.dns_nameservers or ()),
    )


def router_from_sdk(obj: Any) -> Router:
    gateway = obj.external_gateway_info or {}
    return Router(
        id=obj.id,
        name=obj.name or "",
        project_id=obj.project_id or "",
        external_network_id=gateway.get("network_id"),
        external_ips=tuple(
            ip["ip_address"] for ip in gateway.get("external_fixed_ips") or () if "ip_address" in ip
        ),
    )


def port_from_sdk(obj: Any) -> Port:
    return Port(
        id=obj.id,
        name=obj.name or "",
        network_id=obj.network_id,
        project_id=obj.project_id or "",
        device_owner=obj.device_owner or "",
        device_id=obj.device_id or "",
        status=obj.status or "",
        fixed_ips=tuple(ip["ip_address"] for ip in obj.fixed_ips or () if "ip_address" in ip),
    )


def rule_from_dict(raw: dict[str, Any]) -> SecurityGroupRule:
    """A rule from Neutron's JSON (as embedded in a security group, or a rule resource)."""
    return SecurityGroupRule(
        id=raw["id"],
        security_group_id=raw["security_group_id"],
        spec=SecurityGroupRuleSpec(
            direction=raw["direction"],
            ethertype=raw.get("ethertype") or "IPv4",
            protocol=raw.get("protocol"),
            port_range_min=raw.get("port_range_min"),
            port_range_max=raw.get("port_range_max"),
            remote_ip_prefix=raw.get("remote_ip_prefix"),
            remote_group_id=raw.get("remote_group_id"),
        ),
    )


def rule_from_sdk(obj: Any) -> SecurityGroupRule:
    return rule_from_dict(
        {
            "id": obj.id,
            "security_group_id": obj.security_group_id,
            "direction": obj.direction,
            "ethertype": obj.ether_type,
            "protocol": obj.protocol,
            "port_range_min": obj.port_range_min,
            "port_range_max": obj.port_range_max,
            "remote_ip_prefix": obj.remote_ip_prefix,
            "remote_group_id": obj.remote_group_id,
        }
    )


def security_group_from_sdk(obj: Any) -> SecurityGroup:
    return SecurityGroup(
        id=obj.id,
        name=obj.name or "",
        project_id=obj.project_id or "",
        description=obj.description or "",
        rules=tuple(
            sorted((rule_from_dict(r) for r in obj.security_group_rules or ()), key=lambda r: r.id)
        ),
    )


def normalized_rule(spec: SecurityGroupRuleSpec) -> SecurityGroupRuleSpec:
    """The form Neutron compares rules in: lower-case protocol, network-address prefixes,
    and "any address" written as no prefix at all."""
    prefix = spec.remote_ip_prefix
    if prefix is not None:
        prefix = str(ipaddress.ip_network(prefix, strict=False))
        if prefix in _ANY_PREFIXES:
            prefix = None
    return SecurityGroupRuleSpec(
        direction=spec.direction,
        ethertype=spec.ethertype,
        protocol=spec.protocol.lower() if spec.protocol else None,
        port_range_min=spec.port_range_min,
        port_range_max=spec.port_range_max,
        remote_ip_prefix=prefix,
        remote_group_id=spec.remote_group_id,
    )


def _interfaces_from_ports(router_id: str, ports: Any) -> list[RouterInterface]:
    found = []
    for port in ports:
        if port.device_owner == _GATEWAY_OWNER:
            continue
        for ip in port.fixed_ips or ():
            if ip.get("subnet_id"):
                found.append(
                    RouterInterface(router_id=router_id, subnet_id=ip["subnet_id"], port_id=port.id)
                )
    return found


class NetworkMixin(ConnectionHolder):
    # ------------------------------------------------------------------ networks
    def find_external_network(self, name: str) -> Network | None:
        with translated(f"find external network {name!r}"):
            found = list(self._conn().network.networks(name=name, is_router_external=True))
        return network_from_sdk(found[0]) if found else None

    def find_network(self, name: str, *, project_id: str) -> Network | None:
        with translated(f"find network {name!r}"):
            found = list(self._conn().network.networks(name=name, project_id=project_id))
        return network_from_sdk(found[0]) if found else None

    def get_network(self, network_id: str) -> Network:
        with translated(f"get network {network_id}"):
            return network_from_sdk(self._conn().network.get_network(network_id))

    def ensure_network(self, name: str, *, project_id: str) -> Network:
        existing = self.find_network(name, project_id=project_id)
        if existing is not None:
            return existing
        with translated(f"create network {name!r}"):
            created = self._conn().network.create_network(name=name, project_id=project_id)
        log.info("created network %s (%s) in project %s", name, created.id, project_id)
        return network_from_sdk(created)

    def delete_network(self, network_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete network {network_id}"):
            self._conn().network.delete_network(network_id, ignore_missing=missing_ok)

    # ------------------------------------------------------------------ subnets
    def find_subnet(self, name: str, *, network_id: str) -> Subnet | None:
        with translated(f"find subnet {name!r}"):
            found = list(self._conn().network.subnets(name=name, network_id=network_id))
        return subnet_from_sdk(found[0]) if found else None

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
        try:
            ip_version = ipaddress.ip_network(cidr, strict=True).version
        except ValueError as exc:
            raise PermanentError(
                f"subnet {name!r}: {cidr!r} is not a network address: {exc}", backend="openstack"
            ) from exc
        existing = self.find_subnet(name, network_id=network_id)
        if existing is not None:
            return existing
        attrs: dict[str, Any] = {
            "name": name,
            "network_id": network_id,
            "project_id": project_id,
            "cidr": cidr,
            "ip_version": ip_version,
            "dns_nameservers": list(dns_nameservers),
        }
        if gateway_ip is not None:
            attrs["gateway_ip"] = gateway_ip
        with translated(f"create subnet {name!r} ({cidr})"):
            created = self._conn().network.create_subnet(**attrs)
        log.info("created subnet %s (%s) %s in project %s", name, created.id, cidr, project_id)
        return subnet_from_sdk(created)

    def delete_subnet(self, subnet_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete subnet {subnet_id}"):
            self._conn().network.delete_subnet(subnet_id, ignore_missing=missing_ok)

    # ------------------------------------------------------------------ routers
    def find_router(self, name: str, *, project_id: str) -> Router | None:
        with translated(f"find router {name!r}"):
            found = list(self._conn().network.routers(name=name, project_id=project_id))
        return router_from_sdk(found[0]) if found else None

    def ensure_router(
        self, name: str, *, project_id: str, external_network_id: str | None = None
    ) -> Router:
        gateway = {"network_id": external_network_id} if external_network_id else None
        existing = self.find_router(name, project_id=project_id)
        if existing is not None:
            if gateway is None or existing.external_network_id is not None:
                return existing
            with translated(f"set gateway of router {name!r}"):
                updated = self._conn().network.update_router(
                    existing.id, external_gateway_info=gateway
                )
            log.info("set gateway of router %s to network %s", existing.id, external_network_id)
            return router_from_sdk(updated)
        attrs: dict[str, Any] = {"name": name, "project_id": project_id}
        if gateway is not None:
            attrs["external_gateway_info"] = gateway
        with translated(f"create router {name!r}"):
            created = self._conn().network.create_router(**attrs)
        log.info("created router %s (%s) in project %s", name, created.id, project_id)
        return router_from_sdk(created)

    def delete_router(self, router_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete router {router_id}"):
            self._conn().network.delete_router(router_id, ignore_missing=missing_ok)

    def list_router_interfaces(self, router_id: str) -> list[RouterInterface]:
        with translated(f"list interfaces of router {router_id}"):
            ports = list(self._conn().network.ports(device_id=router_id))
        return _interfaces_from_ports(router_id, ports)

    def ensure_router_interface(self, router_id: str, *, subnet_id: str) -> RouterInterface:
        for interface in self.list_router_interfaces(router_id):
            if interface.subnet_id == subnet_id:
                return interface
        with translated(f"attach subnet {subnet_id} to router {router_id}"):
            body = self._conn().network.add_interface_to_router(router_id, subnet=subnet_id)
        log.info("attached subnet %s to router %s", subnet_id, router_id)
        return RouterInterface(router_id=router_id, subnet_id=subnet_id, port_id=body["port_id"])

    def remove_router_interface(self, router_id: str, *, subnet_id: str) -> None:
        try:
            with translated(f"detach subnet {subnet_id} from router {router_id}"):
                self._conn().network.remove_interface_from_router(router_id, subnet=subnet_id)
        except BackendNotFound:
            return  # router or interface gone: done

    # ------------------------------------------------------------------ security groups
    def find_security_group(self, name: str, *, project_id: str) -> SecurityGroup | None:
        with translated(f"find security group {name!r}"):
            found = list(self._conn().network.security_groups(name=name, project_id=project_id))
        return security_group_from_sdk(found[0]) if found else None

    def ensure_security_group(
        self, name: str, *, project_id: str, description: str = ""
    ) -> SecurityGroup:
        existing = self.find_security_group(name, project_id=project_id)
        if existing is not None:
            return existing
        with translated(f"create security group {name!r}"):
            created = self._conn().network.create_security_group(
                name=name, project_id=project_id, description=description
            )
        log.info("created security group %s (%s) in project %s", name, created.id, project_id)
        return security_group_from_sdk(created)

    def delete_security_group(self, security_group_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete security group {security_group_id}"):
            self._conn().network.delete_security_group(
                security_group_id, ignore_missing=missing_ok
            )

    def list_security_group_rules(self, security_group_id: str) -> list[SecurityGroupRule]:
        with translated(f"list rules of security group {security_group_id}"):
            rules = self._conn().network.security_group_rules(security_group_id=security_group_id)
            return sorted((rule_from_sdk(r) for r in rules), key=lambda r: r.id)

    def add_security_group_rule(
        self, security_group_id: str, spec: SecurityGroupRuleSpec
    ) -> SecurityGroupRule:
        action = f"add {spec.direction} rule to security group {security_group_id}"
        attrs: dict[str, Any] = {
            "security_group_id": security_group_id,
            "direction": spec.direction,
            "ether_type": spec.ethertype,
        }
        for key in ("protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
                    "remote_group_id"):
            value = getattr(spec, key)
            if value is not None:
                attrs[key] = value
        with translated(action):
            try:
                created = self._conn().network.create_security_group_rule(**attrs)
            except sdk_exc.ConflictException as exc:
                # "Security group rule already exists. Rule id is …" means done; a 409 for
                # another reason (over quota) is raised as it is.
                if "already exists" not in str(exc.details or "").lower():
                    raise
                created = None
        if created is not None:
            return rule_from_sdk(created)
        wanted = normalized_rule(spec)
        for rule in self.list_security_group_rules(security_group_id):
            if normalized_rule(rule.spec) == wanted:
                return rule
        raise PermanentError(
            f"{action}: Neutron reported a duplicate rule but lists no equal rule",
            backend="openstack",
        )

    def delete_security_group_rule(self, rule_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete security group rule {rule_id}"):
            self._conn().network.delete_security_group_rule(rule_id, ignore_missing=missing_ok)

    # ------------------------------------------------------------------ ports
    def list_ports(
        self, *, project_id: str | None = None, network_id: str | None = None
    ) -> list[Port]:
        query = {k: v for k, v in (("project_id", project_id), ("network_id", network_id)) if v}
        with translated("list ports"):
            return [port_from_sdk(p) for p in self._conn().network.ports(**query)]
