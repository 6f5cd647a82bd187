"""The executor: turns each planned Action into idempotent backend calls, resolving ids as it goes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.backends import Backends, stopping
from controlplane.backends.keys import SigningKey, signing_key_name, tenant_policy_name
from controlplane.errors import PermanentError, TemporaryError
from controlplane.tenancy.observe import KV_MARKER
from controlplane.tenancy.observed import BASELINE_SG, ObservedTenant
from controlplane.tenancy.plan import Action
from controlplane.tenancy.spec import TenantSpec

APPROLE_TOKEN_TTL = 20 * 60
APPROLE_SECRET_ID_TTL = 30 * 24 * 3600


@dataclass
class ApplyContext:
    """Ids known so far: seeded from the observation, filled in as resources are created."""

    spec: TenantSpec
    backends: Backends
    domain_id: str = ""
    external_network_id: str = ""
    groups: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    projects: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)
    subnets: dict[str, str] = field(default_factory=dict)
    routers: dict[str, str] = field(default_factory=dict)
    signing_key: SigningKey | None = None

    @classmethod
    def from_observed(cls, spec: TenantSpec, backends: Backends, seen: ObservedTenant) -> ApplyContext:
        ctx = cls(spec=spec, backends=backends)
        ctx.domain_id = seen.domain.id if seen.domain else ""
        ctx.external_network_id = seen.external_network.id if seen.external_network else ""
        ctx.groups = {g: grp.id for g, grp in seen.groups.items() if grp is not None}
        ctx.users = dict(seen.users)
        for name, env in seen.environments.items():
            if env.project:
                ctx.projects[name] = env.project.id
            if env.network:
                ctx.networks[name] = env.network.id
            if env.subnet:
                ctx.subnets[name] = env.subnet.id
            if env.router:
                ctx.routers[name] = env.router.id
        ctx.signing_key = seen.signing_key
        return ctx

    def need(self, mapping: dict[str, str], key: str, what: str) -> str:
        try:
            return mapping[key]
        except KeyError:
            raise PermanentError(
                f"{what} for {key!r} is unknown; a previous step must have failed", backend="controlplane"
            ) from None


def _ensure_domain(ctx: ApplyContext, a: Action) -> str:
    d = ctx.backends.cloud.ensure_domain(
        ctx.spec.domain_name, description=a.param("description"), tags=a.param("tags")
    )
    ctx.domain_id = d.id
    return d.id


def _update_domain(ctx: ApplyContext, a: Action) -> str:
    ctx.backends.cloud.update_domain(
        ctx.domain_id, description=a.param("description"), enabled=True, tags=a.param("tags")
    )
    return ctx.domain_id


def _ensure_group(ctx: ApplyContext, a: Action) -> str:
    group = a.param("group")
    g = ctx.backends.cloud.ensure_group(
        ctx.spec.group_name(group), domain_id=ctx.domain_id, description=f"{ctx.spec.names['en']}: {group}"
    )
    ctx.groups[group] = g.id
    return g.id


def _ensure_project(ctx: ApplyContext, a: Action) -> str:
    p = ctx.backends.cloud.ensure_project(
        a.param("name"), domain_id=ctx.domain_id, description=a.param("description"), tags=a.param("tags")
    )
    ctx.projects[a.env] = p.id
    return p.id


def _update_project(ctx: ApplyContext, a: Action) -> str:
    pid = ctx.need(ctx.projects, a.env, "project")
    ctx.backends.cloud.update_project(pid, enabled=a.param("enabled"), tags=a.param("tags"))
    return pid


def _assign_role(ctx: ApplyContext, a: Action) -> str:
    pid = ctx.need(ctx.projects, a.env, "project")
    gid = ctx.need(ctx.groups, a.param("group"), "group")
    ctx.backends.cloud.assign_role(pid, a.param("role"), group_id=gid)
    return f"{gid}:{a.param('role')}"


def _ensure_network(ctx: ApplyContext, a: Action) -> str:
    n = ctx.backends.cloud.ensure_network(
        a.param("name"), project_id=ctx.need(ctx.projects, a.env, "project")
    )
    ctx.networks[a.env] = n.id
    return n.id


def _ensure_subnet(ctx: ApplyContext, a: Action) -> str:
    s = ctx.backends.cloud.ensure_subnet(
        a.param("name"),
        network_id=ctx.need(ctx.networks, a.env, "network"),
        project_id=ctx.need(ctx.projects, a.env, "project"),
        cidr=a.param("cidr"),
        dns_nameservers=a.param("dns"),
    )
    ctx.subnets[a.env] = s.id
    return s.id


def _ensure_router(ctx: ApplyContext, a: Action) -> str:
    if not ctx.external_network_id:
        raise PermanentError(
            "the shared external network 'public' does not exist",
            backend="openstack",
            hint="create it (scripts/devcloud up does locally)",
        )
    r = ctx.backends.cloud.ensure_router(
        a.param("name"),
        project_id=ctx.need(ctx.projects, a.env, "project"),
        external_network_id=ctx.external_network_id,
    )
    ctx.routers[a.env] = r.id
    return r.id


def _ensure_router_interface(ctx: ApplyContext, a: Action) -> str:
    i = ctx.backends.cloud.ensure_router_interface(
        ctx.need(ctx.routers, a.env, "router"), subnet_id=ctx.need(ctx.subnets, a.env, "subnet")
    )
    return i.port_id


def _ensure_security_group(ctx: ApplyContext, a: Action) -> str:
    sg = ctx.backends.cloud.ensure_security_group(
        BASELINE_SG,
        project_id=ctx.need(ctx.projects, a.env, "project"),
        description="Control-plane baseline: no ingress, all egress",
    )
    return sg.id


def _delete_rule(ctx: ApplyContext, a: Action) -> str:
    ctx.backends.cloud.delete_security_group_rule(a.param("rule_id"))
    return str(a.param("rule_id"))


def _harden_default_sg(ctx: ApplyContext, a: Action) -> str:
    cloud = ctx.backends.cloud
    project_id = ctx.need(ctx.projects, a.env, "project")
    # Looking the group up by project makes Neutron create it if it does not exist yet.
    group = cloud.find_security_group("default", project_id=project_id)
    if group is None:
        group = cloud.ensure_security_group("default", project_id=project_id)
    for rule in group.ingress_rules:
        cloud.delete_security_group_rule(rule.id)
    return group.id


def _quota_setter(method: str) -> Callable[[ApplyContext, Action], str]:
    def handler(ctx: ApplyContext, a: Action) -> str:
        pid = ctx.need(ctx.projects, a.env, "project")
        getattr(ctx.backends.cloud, method)(pid, **dict(a.param("limits")))
        return pid

    return handler


def _add_member(ctx: ApplyContext, a: Action) -> str:
    uid = ctx.need(ctx.users, a.param("username"), "user")
    ctx.backends.cloud.add_group_member(ctx.need(ctx.groups, a.param("group"), "group"), uid)
    return uid


def _remove_member(ctx: ApplyContext, a: Action) -> str:
    gid = ctx.need(ctx.groups, a.param("group"), "group")
    user = ctx.backends.cloud.find_user(a.param("username"), domain_id=ctx.domain_id)
    if user is not None:
        ctx.backends.cloud.remove_group_member(gid, user.id)
    return a.param("username")  # type: ignore[no-any-return]


def _ensure_signing_key(ctx: ApplyContext, a: Action) -> str:
    ctx.signing_key = ctx.backends.keys.ensure_signing_key(signing_key_name(ctx.spec.slug))
    return ctx.signing_key.name


def _ensure_policy(ctx: ApplyContext, a: Action) -> str:
    name = tenant_policy_name(ctx.spec.slug)
    ctx.backends.keys.ensure_policy(name, a.param("hcl"))
    return name


def _ensure_approle(ctx: ApplyContext, a: Action) -> str:
    name = tenant_policy_name(ctx.spec.slug)
    role = ctx.backends.keys.ensure_approle(
        name, [name], token_ttl=APPROLE_TOKEN_TTL, secret_id_ttl=APPROLE_SECRET_ID_TTL, secret_id_num_uses=0
    )
    return role.role_id


def _ensure_kv_path(ctx: ApplyContext, a: Action) -> str:
    path = KV_MARKER.format(slug=ctx.spec.slug)
    ctx.backends.keys.put_secret(path, {"managed_by": "controlplane", "tenant": ctx.spec.slug})
    return path


HANDLERS: dict[str, Callable[[ApplyContext, Action], str]] = {
    "ensure_domain": _ensure_domain,
    "update_domain": _update_domain,
    "ensure_group": _ensure_group,
    "ensure_project": _ensure_project,
    "update_project": _update_project,
    "assign_role": _assign_role,
    "ensure_network": _ensure_network,
    "ensure_subnet": _ensure_subnet,
    "ensure_router": _ensure_router,
    "ensure_router_interface": _ensure_router_interface,
    "ensure_security_group": _ensure_security_group,
    "delete_security_group_rule": _delete_rule,
    "harden_default_security_group": _harden_default_sg,
    "set_compute_quotas": _quota_setter("set_compute_quotas"),
    "set_network_quotas": _quota_setter("set_network_quotas"),
    "set_volume_quotas": _quota_setter("set_volume_quotas"),
    "add_group_member": _add_member,
    "remove_group_member": _remove_member,
    "ensure_signing_key": _ensure_signing_key,
    "ensure_policy": _ensure_policy,
    "ensure_approle": _ensure_approle,
    "ensure_kv_path": _ensure_kv_path,
}

RETRY_DELAYS = (0.5, 1.0, 2.0)
# At most this many backend calls in flight in this process, whatever the number of tenants and
# parallel actions: a fleet-wide apply must not flood Keystone and Neutron.
API_SLOTS = threading.BoundedSemaphore(10)


def api_slot() -> threading.BoundedSemaphore:
    """Hold one of the process's API slots for the duration of a `with` block."""
    return API_SLOTS


def set_api_concurrency(limit: int) -> None:
    global API_SLOTS  # noqa: PLW0603 - one process-wide limit, set once at start
    API_SLOTS = threading.BoundedSemaphore(max(1, limit))


def execute(ctx: ApplyContext, action: Action, *, sleep: Callable[[float], Any] = stopping.sleep) -> str:
    """Run one action, retrying temporary failures a few times; return the resulting id."""
    handler = HANDLERS[action.op]
    for delay in (*RETRY_DELAYS, None):
        try:
            with api_slot():
                return handler(ctx, action)
        except TemporaryError:
            if delay is None:
                raise
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
