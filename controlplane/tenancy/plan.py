"""The planner: desired spec + observed state -> ordered actions. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from controlplane.backends.cloud import Quota, SecurityGroupRule
from controlplane.tenancy.observed import (
    BASELINE_SG,
    MANAGED_TAG,
    ObservedEnvironment,
    ObservedTenant,
    env_tag,
    org_tag,
)
from controlplane.tenancy.spec import GROUP_ROLES, EnvironmentSpec, TenantSpec

Verb = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Action:
    """One idempotent step. `op` names the executor's handler; `params` are its arguments."""

    op: str
    verb: Verb
    resource: str  # what a person reads in a plan, e.g. "network health-prod-net"
    env: str = ""
    detail: str = ""  # e.g. "cores 32 -> 64"
    drift: bool = False  # the cloud moved away from an applied spec
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str) -> Any:
        return dict(self.params)[name]

    def describe(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.verb]
        text = f"{sign} {self.resource}"
        if self.detail:
            text += f" ({self.detail})"
        return text + ("  [drift]" if self.drift else "")


# Which actions may run together: an action only needs what earlier stages made.
STAGES: dict[str, int] = {
    "ensure_domain": 1,
    "update_domain": 1,
    "ensure_group": 2,
    "ensure_project": 2,
    "update_project": 2,
    "ensure_signing_key": 2,
    "ensure_policy": 2,
    "ensure_approle": 3,
    "ensure_kv_path": 2,
    "assign_role": 3,
    "ensure_network": 3,
    "ensure_security_group": 3,
    "harden_default_security_group": 3,
    "delete_security_group_rule": 3,
    "set_compute_quotas": 3,
    "set_network_quotas": 3,
    "set_volume_quotas": 3,
    "add_group_member": 3,
    "remove_group_member": 3,
    "ensure_subnet": 4,
    "ensure_router": 3,  # needs only its project and the external network
    "ensure_router_interface": 5,
}


def stages_of(plan: Plan) -> list[list[Action]]:
    """The plan's actions grouped by stage, in stage order, keeping plan order within a stage."""
    grouped: dict[int, list[Action]] = {}
    for action in plan.actions:
        grouped.setdefault(STAGES[action.op], []).append(action)
    return [grouped[k] for k in sorted(grouped)]


@dataclass(frozen=True)
class Plan:
    tenant: str
    actions: tuple[Action, ...]
    refusals: tuple[str, ...] = ()  # reasons the plan must not be applied, for a person
    notes: tuple[str, ...] = ()

    @property
    def drift(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.drift)

    @property
    def empty(self) -> bool:
        return not self.actions

    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0}
        for a in self.actions:
            counts[a.verb] += 1
        return counts


@dataclass
class _Builder:
    spec: TenantSpec
    drift: bool  # True when the spec is already applied: every difference is drift
    imported: bool = False  # adopting objects the control plane did not create is allowed
    actions: list[Action] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        op: str,
        verb: Verb,
        resource: str,
        *,
        env: str = "",
        detail: str = "",
        drift: bool | None = None,
        **params: Any,
    ) -> None:
        # A resource that never existed is not drift even in an applied tenant; callers say so.
        self.actions.append(
            Action(
                op,
                verb,
                resource,
                env,
                detail,
                self.drift if drift is None else drift,
                tuple(sorted(params.items())),
            )
        )


COMPUTE_FIELDS = (("cores", "cores"), ("ram_mb", "ram"), ("instances", "instances"))
NETWORK_FIELDS = (
    ("networks", "networks"),
    ("subnets", "subnets"),
    ("ports", "ports"),
    ("routers", "routers"),
    ("floating_ips", "floatingips"),
    ("security_groups", "security_groups"),
    ("security_group_rules", "security_group_rules"),
)
VOLUME_FIELDS = (("gigabytes", "gigabytes"), ("volumes", "volumes"), ("snapshots", "snapshots"))


def _quota_changes(
    kind: str, desired: Any, observed: Any, fields_: tuple[tuple[str, str], ...]
) -> Iterator[tuple[str, int, Quota | None]]:
    for spec_name, api_name in fields_:
        want = getattr(desired, spec_name)
        have: Quota | None = getattr(observed, api_name) if observed is not None else None
        if have is None or have.limit != want:
            yield api_name, want, have


def _plan_quotas(b: _Builder, env: EnvironmentSpec, seen: ObservedEnvironment, project: str) -> None:
    q = env.quotas
    for kind, desired, observed, fields_, op in (
        ("compute", q.compute, seen.compute, COMPUTE_FIELDS, "set_compute_quotas"),
        ("network", q.network, seen.network_quotas, NETWORK_FIELDS, "set_network_quotas"),
        ("volume", q.volume, seen.volume, VOLUME_FIELDS, "set_volume_quotas"),
    ):
        changes = list(_quota_changes(kind, desired, observed, fields_))
        if not changes:
            continue
        for name, want, have in changes:
            if have is not None and have.in_use is not None and want != -1 and have.in_use > want:
                b.refusals.append(
                    f"{project}: {kind} quota {name} {want} is below current usage {have.in_use} "
                    f"(limit now {have.limit}); free resources first or ask for at least {have.in_use}"
                )
        detail = ", ".join(f"{n} {h.limit if h else '?'} -> {w}" for n, w, h in changes)
        b.add(
            op,
            "update",
            f"{kind} quotas {project}",
            env=env.name,
            detail=detail,
            limits=tuple((name, want) for name, want, _ in changes),
        )


def _describe_rule(rule: SecurityGroupRule) -> str:
    r = rule.spec
    ports = f" {r.port_range_min}-{r.port_range_max}" if r.port_range_min is not None else ""
    return f"{r.protocol or 'any'}{ports} from {r.remote_ip_prefix or r.remote_group_id or 'anywhere'}"


def _plan_environment(
    b: _Builder, env: EnvironmentSpec, seen: ObservedEnvironment, cidr: str, group_ids: dict[str, str]
) -> None:
    spec, name = b.spec, env.name
    project = spec.project_name(name)
    tags = [MANAGED_TAG, org_tag(spec.slug), env_tag(name)]
    if seen.project is None:
        b.add(
            "ensure_project",
            "create",
            f"project {project}",
            env=name,
            name=project,
            description=f"{spec.names['en']} ({name})",
            tags=tuple(tags),
        )
    elif MANAGED_TAG not in seen.project.tags:
        b.add(
            "update_project",
            "update",
            f"project {project}",
            env=name,
            detail="adopt: add tags",
            drift=False,
            tags=tuple(sorted(set(seen.project.tags) | set(tags))),
            enabled=True,
        )
    elif not seen.project.enabled:
        b.add(
            "update_project",
            "update",
            f"project {project}",
            env=name,
            detail="enable",
            tags=tuple(seen.project.tags),
            enabled=True,
        )
    for group, role in GROUP_ROLES.items():
        gid = group_ids.get(group, "")
        if not gid or (gid, role) not in seen.role_assignments:
            b.add(
                "assign_role",
                "create",
                f"role {role} for {spec.group_name(group)} on {project}",
                env=name,
                group=group,
                role=role,
            )
    net_name, subnet_name, router_name = f"{project}-net", f"{project}-subnet", f"{project}-router"
    if seen.network is None:
        b.add("ensure_network", "create", f"network {net_name}", env=name, name=net_name)
    if seen.subnet is None:
        b.add(
            "ensure_subnet",
            "create",
            f"subnet {subnet_name}",
            env=name,
            detail=cidr,
            name=subnet_name,
            cidr=cidr,
            dns=tuple(env.dns_nameservers),
        )
    elif seen.subnet.cidr != cidr:
        b.notes.append(
            f"{project}: subnet {subnet_name} has {seen.subnet.cidr}, the address plan "
            f"says {cidr}; left as it is (changing it would renumber every server)"
        )
    if seen.router is None or seen.router.external_network_id is None:
        b.add(
            "ensure_router",
            "create" if seen.router is None else "update",
            f"router {router_name}",
            env=name,
            detail="gateway to the external network",
            name=router_name,
        )
    if seen.subnet is None or seen.router is None or seen.subnet.id not in seen.router_subnet_ids:
        b.add("ensure_router_interface", "create", f"interface {router_name} -> {subnet_name}", env=name)
    if seen.baseline_sg is None:
        b.add(
            "ensure_security_group",
            "create",
            f"security group {BASELINE_SG} in {project}",
            env=name,
            detail="no ingress, all egress",
        )
    for rule in seen.baseline_sg.ingress_rules if seen.baseline_sg else ():
        b.add(
            "delete_security_group_rule",
            "delete",
            f"ingress rule in {project}/{BASELINE_SG}",
            env=name,
            detail=_describe_rule(rule),
            rule_id=rule.id,
        )
    # Neutron gives every project a "default" group that admits traffic from its members, and makes
    # it on first use, so a new project's group does not exist yet when we plan: harden it after.
    default_ingress = seen.default_sg.ingress_rules if seen.default_sg else ()
    if seen.project is None or seen.default_sg is None or default_ingress:
        detail = ", ".join(_describe_rule(r) for r in default_ingress) or "remove its ingress rules"
        b.add(
            "harden_default_security_group",
            "update",
            f"security group default in {project}",
            env=name,
            detail=detail,
        )
    _plan_quotas(b, env, seen, project)


def plan_tenant(
    spec: TenantSpec,
    observed: ObservedTenant,
    *,
    allocations: dict[str, str],
    policy_hcl: str,
    applied: bool,
    imported: bool = False,
) -> Plan:
    """Every action that brings the cloud and Vault to `spec`, in dependency order.

    `applied` says the spec's current generation was converged before, so any difference now
    is drift. `imported` allows adopting a domain the control plane did not create.
    """
    b = _Builder(spec=spec, drift=applied, imported=imported)
    domain = observed.domain
    tags = (MANAGED_TAG, org_tag(spec.slug))
    if domain is None:
        b.add(
            "ensure_domain", "create", f"domain {spec.domain_name}", description=spec.names["en"], tags=tags
        )
    else:
        if MANAGED_TAG not in domain.tags and not imported:
            b.refusals.append(
                f"a Keystone domain named {spec.domain_name!r} already exists and is not managed by "
                f"the control plane; adopt it with: controlplane tenants import {spec.slug}"
            )
        if MANAGED_TAG not in domain.tags or not domain.enabled or domain.description != spec.names["en"]:
            b.add(
                "update_domain",
                "update",
                f"domain {spec.domain_name}",
                drift=False,
                detail="adopt / enable / rename",
                description=spec.names["en"],
                tags=tuple(sorted(set(domain.tags) | set(tags))),
            )
    for project in observed.extra_projects:
        b.notes.append(
            f"project {project.name} is not in the spec any more; it is left in place "
            "(remove environments through decommission)"
        )
    group_ids: dict[str, str] = {}
    for group in GROUP_ROLES:
        g = observed.groups.get(group)
        if g is None:
            b.add("ensure_group", "create", f"group {spec.group_name(group)}", group=group)
        else:
            group_ids[group] = g.id
    for env in spec.environments:
        _plan_environment(b, env, observed.env(env.name), allocations[env.name], group_ids)
    for group, usernames in spec.people.items():
        have = observed.members.get(group, frozenset())
        for username in sorted(set(usernames) - have):
            if username not in observed.users:
                b.notes.append(
                    f"{spec.group_name(group)}: user {username!r} does not exist in the "
                    f"domain yet; added once it does"
                )
                continue
            b.add(
                "add_group_member",
                "create",
                f"member {username} of {spec.group_name(group)}",
                group=group,
                username=username,
            )
        for username in sorted(have - set(usernames)):
            b.add(
                "remove_group_member",
                "delete",
                f"member {username} of {spec.group_name(group)}",
                group=group,
                username=username,
            )
    _plan_vault(b, observed, policy_hcl)
    return Plan(spec.slug, tuple(b.actions), tuple(b.refusals), tuple(b.notes))


def _plan_vault(b: _Builder, observed: ObservedTenant, policy_hcl: str) -> None:
    slug = b.spec.slug
    if observed.signing_key is None:
        b.add("ensure_signing_key", "create", f"vault transit key {slug} (ed25519)")
    if observed.policy_hcl is None:
        b.add("ensure_policy", "create", f"vault policy tenant-{slug}", hcl=policy_hcl, drift=False)
    elif observed.policy_hcl.strip() != policy_hcl.strip():
        b.add(
            "ensure_policy",
            "update",
            f"vault policy tenant-{slug}",
            detail="policy text differs",
            hcl=policy_hcl,
        )
    if not observed.approle:
        b.add("ensure_approle", "create", f"vault approle tenant-{slug}")
    if not observed.kv_marker:
        b.add("ensure_kv_path", "create", f"vault kv tenants/{slug}/")
