"""Applying tenant specs against the real devcloud, OpenBao and ansible-runner."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.backends.cloud import SecurityGroupRuleSpec
from controlplane.backends.keys import signing_key_name, tenant_policy_name
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.models import PlaybookEvent, PlaybookRun, SigningPublicKey, Tenant, TenantEvent
from controlplane.tenancy.observed import BASELINE_SG
from controlplane.tenancy.reconciler import plan_for, reconcile_tenant
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.tenancy.worker import run_pass

pytestmark = pytest.mark.integration


def _register_and_apply(
    db: Database, backends: Backends, settings: Settings, spec: TenantSpec, *, playbook: bool = False
) -> object:
    register_specs(db, [spec], initiator="test")
    return reconcile_tenant(
        spec.slug, db=db, backends=backends, settings=settings, owner="test:1", run_baseline_playbook=playbook
    )


def test_apply_creates_every_resource_then_changes_nothing(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
    purge: Callable[[str], None],
) -> None:
    purge(tenant_slug)
    spec = write_spec(tenant_slug)
    outcome = _register_and_apply(database, backends, tenancy_settings, spec, playbook=True)
    assert outcome.status == "changed", outcome.error  # type: ignore[attr-defined]
    cloud, keys = backends.cloud, backends.keys

    domain = cloud.find_domain(tenant_slug)
    assert domain is not None and "cp-managed" in domain.tags
    groups = {
        g: cloud.find_group(f"{tenant_slug}-{g}", domain_id=domain.id)
        for g in ("admins", "members", "readers")
    }
    assert all(groups.values())
    cidrs = set()
    for env in ("prod", "staging"):
        project = cloud.find_project(f"{tenant_slug}-{env}", domain_id=domain.id)
        assert project is not None and project.enabled
        roles = {(a.group_id, a.role_name) for a in cloud.list_role_assignments(project.id)}
        assert roles >= {
            (groups["admins"].id, "manager"),
            (groups["members"].id, "member"),  # type: ignore[union-attr]
            (groups["readers"].id, "reader"),
        }  # type: ignore[union-attr]
        network = cloud.find_network(f"{tenant_slug}-{env}-net", project_id=project.id)
        assert network is not None
        subnet = cloud.find_subnet(f"{tenant_slug}-{env}-subnet", network_id=network.id)
        assert subnet is not None
        cidrs.add(subnet.cidr)
        router = cloud.find_router(f"{tenant_slug}-{env}-router", project_id=project.id)
        assert router is not None and router.external_network_id
        assert subnet.id in {i.subnet_id for i in cloud.list_router_interfaces(router.id)}
        baseline = cloud.find_security_group(BASELINE_SG, project_id=project.id)
        assert baseline is not None and not baseline.ingress_rules
        default = cloud.find_security_group("default", project_id=project.id)
        assert default is None or not default.ingress_rules
        quotas = spec.environment(env).quotas
        assert cloud.get_compute_quotas(project.id).cores.limit == quotas.compute.cores
        assert cloud.get_network_quotas(project.id).routers.limit == quotas.network.routers
        assert cloud.get_volume_quotas(project.id).gigabytes.limit == quotas.volume.gigabytes
        # the baseline playbook (openstack.cloud modules) added the bastion-only group
        bastion = cloud.find_security_group("ops-bastion", project_id=project.id)
        assert bastion is not None
        assert [(r.spec.port_range_min, r.spec.remote_ip_prefix) for r in bastion.ingress_rules] == [
            (22, "192.0.2.0/28")
        ]
    assert len(cidrs) == 2, "each environment has its own subnet"
    key = keys.get_signing_key(signing_key_name(tenant_slug))
    assert key.key_type == "ed25519" and 1 in key.public_keys
    assert f'transit/sign/{tenant_slug}"' in keys.read_policy(tenant_policy_name(tenant_slug))
    assert keys.read_role_id(tenant_policy_name(tenant_slug))

    with database.transaction() as s:
        tenant = s.get(Tenant, tenant_slug)
        assert tenant is not None and tenant.phase == "ready" and tenant.applied_generation == 1
        run = s.scalar(select(PlaybookRun).where(PlaybookRun.tenant_slug == tenant_slug))
        assert run is not None and run.status == "successful"
        tasks = [
            e.task
            for e in s.scalars(
                select(PlaybookEvent)
                .where(PlaybookEvent.run_id == run.id, PlaybookEvent.event == "playbook_on_task_start")
                .order_by(PlaybookEvent.counter)
            )
        ]
        assert tasks[0] == "Check that every project of the tenant exists and is enabled"
        assert len(tasks) == 4
        key_event = s.scalar(
            select(AuditEvent).where(AuditEvent.action == "key:create", AuditEvent.org == tenant_slug)
        )
        assert key_event is not None and key_event.target == f"key:{signing_key_name(tenant_slug)}"
        assert (
            s.scalar(
                select(func.count())
                .select_from(SigningPublicKey)
                .where(SigningPublicKey.tenant_slug == tenant_slug)
            )
            == 1
        )

    again = _register_and_apply(database, backends, tenancy_settings, spec, playbook=True)
    assert again.status == "converged" and again.actions == 0  # type: ignore[attr-defined]
    with database.transaction() as s:
        runs = s.scalar(
            select(func.count()).select_from(PlaybookRun).where(PlaybookRun.tenant_slug == tenant_slug)
        )
        assert runs == 1, "an unchanged spec does not rerun the baseline"


def test_drift_is_detected_reported_and_repaired(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
    purge: Callable[[str], None],
) -> None:
    purge(tenant_slug)
    spec = write_spec(tenant_slug, staging=False)
    assert _register_and_apply(database, backends, tenancy_settings, spec).status == "changed"  # type: ignore[attr-defined]
    cloud = backends.cloud
    domain = cloud.find_domain(tenant_slug)
    assert domain is not None
    project = cloud.find_project(f"{tenant_slug}-prod", domain_id=domain.id)
    assert project is not None
    # three kinds of drift, made behind the control plane's back
    cloud.set_compute_quotas(project.id, cores=999)
    baseline = cloud.find_security_group(BASELINE_SG, project_id=project.id)
    assert baseline is not None
    cloud.add_security_group_rule(
        baseline.id,
        SecurityGroupRuleSpec(
            "ingress", protocol="tcp", port_range_min=3389, port_range_max=3389, remote_ip_prefix="0.0.0.0/0"
        ),
    )
    network = cloud.find_network(f"{tenant_slug}-prod-net", project_id=project.id)
    router = cloud.find_router(f"{tenant_slug}-prod-router", project_id=project.id)
    assert network is not None and router is not None
    for interface in cloud.list_router_interfaces(router.id):
        cloud.remove_router_interface(router.id, subnet_id=interface.subnet_id)
    for subnet_id in network.subnet_ids:
        cloud.delete_subnet(subnet_id)
    cloud.delete_network(network.id)

    plan = plan_for(spec, db=database, backends=backends, settings=tenancy_settings)
    drifted = {a.op for a in plan.drift}
    assert drifted == {
        "set_compute_quotas",
        "delete_security_group_rule",
        "ensure_network",
        "ensure_subnet",
        "ensure_router_interface",
    }, [a.describe() for a in plan.actions]

    # the worker's pass finds the tenant due and repairs it (running the baseline playbook too)
    [outcome] = run_pass(db=database, backends=backends, settings=tenancy_settings, concurrency=2)
    assert outcome.status == "changed" and outcome.drift == 5, outcome.error
    assert cloud.get_compute_quotas(project.id).cores.limit == 32
    repaired = cloud.find_security_group(BASELINE_SG, project_id=project.id)
    assert repaired is not None and not repaired.ingress_rules
    new_network = cloud.find_network(f"{tenant_slug}-prod-net", project_id=project.id)
    assert new_network is not None and new_network.id != network.id
    with database.transaction() as s:
        reported = s.scalar(
            select(TenantEvent).where(TenantEvent.tenant_slug == tenant_slug, TenantEvent.kind == "drift")
        )
        assert reported is not None and "5 difference(s)" in reported.message
    assert plan_for(spec, db=database, backends=backends, settings=tenancy_settings).empty
