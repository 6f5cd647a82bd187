"""The planner is pure: desired spec + observed state -> actions, refusals and drift."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from controlplane.backends.cloud import (
    ComputeQuotas,
    Domain,
    Group,
    Network,
    NetworkQuotas,
    Project,
    Quota,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    SecurityGroupRuleSpec,
    Subnet,
    VolumeQuotas,
)
from controlplane.backends.keys import SigningKey
from controlplane.settings import REPO_ROOT
from controlplane.tenancy.observed import (
    MANAGED_TAG,
    ObservedEnvironment,
    ObservedTenant,
    env_tag,
    org_tag,
)
from controlplane.tenancy.plan import plan_tenant
from controlplane.tenancy.spec import GROUP_ROLES, TenantSpec, load_spec_file

POLICY = 'path "transit/sign/health" { capabilities = ["update"] }'


def _spec() -> TenantSpec:
    return load_spec_file(Path(REPO_ROOT / "tenants" / "health.yaml"))


def _allocations(spec: TenantSpec) -> dict[str, str]:
    return {e.name: f"10.64.{i}.0/24" for i, e in enumerate(spec.environments)}


def _q(limit: int, used: int = 0) -> Quota:
    return Quota(limit, used)


def _converged(spec: TenantSpec) -> ObservedTenant:
    """What the cloud looks like right after a successful apply of `spec`."""
    domain = Domain("d1", spec.slug, spec.names["en"], True, (MANAGED_TAG, org_tag(spec.slug)))
    groups = {g: Group(f"g-{g}", spec.group_name(g), "d1") for g in GROUP_ROLES}
    envs = {}
    for i, env in enumerate(spec.environments):
        name = spec.project_name(env.name)
        q = env.quotas
        envs[env.name] = ObservedEnvironment(
            project=Project(
                f"p-{env.name}", name, "d1", "", True, (MANAGED_TAG, org_tag(spec.slug), env_tag(env.name))
            ),
            network=Network(f"n-{env.name}", f"{name}-net", f"p-{env.name}"),
            subnet=Subnet(
                f"s-{env.name}", f"{name}-subnet", f"n-{env.name}", f"p-{env.name}", f"10.64.{i}.0/24"
            ),
            router=Router(f"r-{env.name}", f"{name}-router", f"p-{env.name}", "ext"),
            router_subnet_ids=frozenset({f"s-{env.name}"}),
            baseline_sg=SecurityGroup(f"sg-{env.name}", "baseline", f"p-{env.name}"),
            default_sg=SecurityGroup(f"dsg-{env.name}", "default", f"p-{env.name}"),
            role_assignments=frozenset((f"g-{g}", r) for g, r in GROUP_ROLES.items()),
            compute=ComputeQuotas(_q(q.compute.cores), _q(q.compute.ram_mb), _q(q.compute.instances)),
            network_quotas=NetworkQuotas(
                _q(q.network.networks),
                _q(q.network.subnets),
                _q(q.network.ports),
                _q(q.network.routers),
                _q(q.network.floating_ips),
                _q(q.network.security_groups),
                _q(q.network.security_group_rules),
            ),
            volume=VolumeQuotas(_q(q.volume.gigabytes), _q(q.volume.volumes), _q(q.volume.snapshots)),
        )
    return ObservedTenant(
        domain=domain,
        groups=groups,
        members={g: frozenset() for g in GROUP_ROLES},
        environments=envs,
        external_network=Network("ext", "public", "admin", external=True),
        signing_key=SigningKey(spec.slug, 1, {1: b"k" * 32}),
        policy_hcl=POLICY,
        approle=True,
        kv_marker=True,
    )


def test_new_tenant_plans_every_resource_in_dependency_order() -> None:
    spec = _spec()
    plan = plan_tenant(
        spec, ObservedTenant(), allocations=_allocations(spec), policy_hcl=POLICY, applied=False
    )
    ops = [a.op for a in plan.actions]
    assert ops[0] == "ensure_domain"
    assert ops.count("ensure_project") == len(spec.environments) == 2
    assert ops.count("ensure_group") == 3 and ops.count("assign_role") == 6
    for op in (
        "ensure_network",
        "ensure_subnet",
        "ensure_router",
        "ensure_router_interface",
        "ensure_security_group",
        "set_compute_quotas",
        "set_network_quotas",
        "set_volume_quotas",
    ):
        assert ops.count(op) == 2, op
    assert ops[-4:] == ["ensure_signing_key", "ensure_policy", "ensure_approle", "ensure_kv_path"]
    # each environment's subnet comes from the address plan
    cidrs = [a.param("cidr") for a in plan.actions if a.op == "ensure_subnet"]
    assert cidrs == sorted(_allocations(spec).values())
    assert ops.index("ensure_project") < ops.index("ensure_network") < ops.index("ensure_subnet")
    assert not plan.drift and not plan.refusals


def test_converged_tenant_plans_nothing() -> None:
    spec = _spec()
    plan = plan_tenant(
        spec, _converged(spec), allocations=_allocations(spec), policy_hcl=POLICY, applied=True
    )
    assert plan.empty, [a.describe() for a in plan.actions]


def test_changed_quota_is_drift_and_is_reset() -> None:
    spec = _spec()
    seen = _converged(spec)
    prod = seen.environments["prod"]
    assert prod.compute is not None
    changed = replace(prod, compute=replace(prod.compute, cores=_q(999)))
    seen = replace(seen, environments={**seen.environments, "prod": changed})
    plan = plan_tenant(spec, seen, allocations=_allocations(spec), policy_hcl=POLICY, applied=True)
    assert [a.op for a in plan.actions] == ["set_compute_quotas"]
    action = plan.actions[0]
    assert action.drift and dict(action.param("limits")) == {
        "cores": spec.environment("prod").quotas.compute.cores
    }
    assert "cores 999 -> 32" in action.describe()


def test_added_ingress_rule_and_deleted_network_are_drift() -> None:
    spec = _spec()
    seen = _converged(spec)
    prod = seen.environments["prod"]
    assert prod.baseline_sg is not None
    rule = SecurityGroupRule(
        "rule-1",
        prod.baseline_sg.id,
        SecurityGroupRuleSpec(
            "ingress", protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0"
        ),
    )
    broken = replace(
        prod,
        baseline_sg=replace(prod.baseline_sg, rules=(rule,)),
        network=None,
        subnet=None,
        router_subnet_ids=frozenset(),
    )
    seen = replace(seen, environments={**seen.environments, "prod": broken})
    plan = plan_tenant(spec, seen, allocations=_allocations(spec), policy_hcl=POLICY, applied=True)
    ops = {a.op for a in plan.drift}
    assert ops == {"ensure_network", "ensure_subnet", "ensure_router_interface", "delete_security_group_rule"}
    assert all(a.drift for a in plan.actions)


def test_quota_below_usage_is_refused_with_the_usage() -> None:
    spec = _spec()
    seen = _converged(spec)
    prod = seen.environments["prod"]
    assert prod.compute is not None
    busy = replace(prod, compute=replace(prod.compute, cores=_q(64, used=40)))
    seen = replace(seen, environments={**seen.environments, "prod": busy})
    plan = plan_tenant(spec, seen, allocations=_allocations(spec), policy_hcl=POLICY, applied=False)
    assert len(plan.refusals) == 1
    assert "compute quota cores 32 is below current usage 40" in plan.refusals[0]


def test_unmanaged_domain_is_refused_unless_imported() -> None:
    spec = _spec()
    foreign = Domain("d9", spec.slug, "someone else's", True, ())
    seen = ObservedTenant(domain=foreign)
    plan = plan_tenant(spec, seen, allocations=_allocations(spec), policy_hcl=POLICY, applied=False)
    assert plan.refusals and "not managed by the control plane" in plan.refusals[0]
    adopted = plan_tenant(
        spec, seen, allocations=_allocations(spec), policy_hcl=POLICY, applied=False, imported=True
    )
    assert not adopted.refusals
    update = next(a for a in adopted.actions if a.op == "update_domain")
    assert MANAGED_TAG in update.param("tags")


def test_changed_policy_text_is_rewritten() -> None:
    spec = _spec()
    seen = replace(_converged(spec), policy_hcl='path "transit/sign/*" { capabilities = ["update"] }')
    plan = plan_tenant(spec, seen, allocations=_allocations(spec), policy_hcl=POLICY, applied=True)
    assert [(a.op, a.verb) for a in plan.actions] == [("ensure_policy", "update")]
