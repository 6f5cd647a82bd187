"""Ministry requests end to end on the real devcloud and OpenBao: request, approve, reconcile, read back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from controlplane.requests.desired import sync_outcomes
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.requests.service import (
    approve_request,
    create_request,
    environment_usage,
    get_request,
    list_requests,
    reject_request,
    submit_request,
    withdraw_request,
)
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.reconciler import reconcile_tenant
from controlplane.tenancy.registry import get_tenant, tenant_spec
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.tenancy.worker import run_pass
from tests.fixtures.tenancy import Provisioned

pytestmark = pytest.mark.integration

OP1 = Actor(201, "op-one", Role.OPERATOR, "")
OP2 = Actor(202, "op-two", Role.OPERATOR, "")
AUDITOR = Actor(301, "auditor", Role.AUDITOR, "")


def admin_of(slug: str) -> Actor:
    return Actor(101, f"{slug}-admin", Role.ORG_ADMIN, slug)


def reconcile(db: Database, backends: Backends, settings: Settings, slug: str):  # type: ignore[no-untyped-def]
    return reconcile_tenant(
        slug, db=db, backends=backends, settings=settings, owner="test:1", run_baseline_playbook=False
    )


def _counts(db: Database) -> tuple[int, int, int, int]:
    with db.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(ResourceRequest)) or 0,
            s.scalar(select(func.count()).select_from(RequestStep)) or 0,
            s.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            sum(t.generation for t in s.scalars(select(Tenant))),
        )


def test_quota_increase_is_requested_approved_applied_and_read_back(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    provision: Callable[..., Provisioned],
) -> None:
    prod = provision(tenant_slug, staging=False).project.id
    admin, stranger = admin_of(tenant_slug), admin_of("t-other")
    member = Actor(102, "member", Role.ORG_MEMBER, tenant_slug)
    ask = {"compute": {"cores": 48}}

    before = _counts(database)
    for who in (stranger, member, OP1):
        with pytest.raises(PermissionDenied):
            create_request(
                database,
                backends,
                who,
                org=tenant_slug,
                kind="quota_change",
                environment="prod",
                quotas=ask,
                submit=True,
            )
    assert _counts(database) == before

    shown = environment_usage(database, backends, admin, org=tenant_slug, environment="prod")
    usage = {u.key: u for u in shown}
    assert usage["compute.cores"].limit == 32 and usage["network.networks"].in_use == 1
    req = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="quota_change",
        environment="prod",
        quotas=ask,
        comment="new patient records service",
        submit=True,
    )
    assert (req.state, req.required_approvals) == ("submitted", 1)

    # another organisation's admin cannot see it, nor act on it: it does not exist for them
    with pytest.raises(NotFound):
        get_request(database, stranger, req.id)
    with pytest.raises(NotFound):
        withdraw_request(database, stranger, req.id)
    assert list_requests(database, stranger) == []
    assert [r.id for r in list_requests(database, AUDITOR)] == [req.id]
    # separation of duties: the requester, now an operator, still may not approve it
    with pytest.raises(PermissionDenied, match="separation of duties"):
        approve_request(database, backends, Actor(101, admin.username, Role.OPERATOR, ""), req.id)
    with pytest.raises(PermissionDenied, match="only a data-center operator"):
        approve_request(database, backends, admin, req.id)

    approved = approve_request(database, backends, OP1, req.id, comment="capacity is there")
    assert approved.state == "approved" and approved.applied_generation == 2
    with database.transaction() as s:
        tenant = get_tenant(s, tenant_slug)
        assert tenant.generation == 2 and tenant.applied_generation == 1
        assert tenant_spec(tenant).environment("prod").quotas.compute.cores == 48
    assert sync_outcomes(database) == {}, "not applied until the reconciler converged"

    [outcome] = run_pass(
        db=database, backends=backends, settings=tenancy_settings, concurrency=1, after_pass=sync_outcomes
    )
    assert outcome.status == "changed", outcome.error
    done = get_request(database, admin, req.id)
    assert done.state == "applied", done.outcome
    assert [s.step for s in done.steps] == ["created", "submitted", "approved", "applied"]
    assert [s.actor for s in done.steps] == [
        admin.audit_name,
        admin.audit_name,
        OP1.audit_name,
        "system:reconciler",
    ]
    assert backends.cloud.get_compute_quotas(prod).cores.limit == 48
    with database.transaction() as s:
        actions = list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target == f"request:{req.id}")
                .order_by(AuditEvent.id)
            )
        )
    assert actions == ["request:create", "request:submit", "request:approve", "request:apply"]
    with pytest.raises(Conflict, match="cannot become"):
        reject_request(database, OP2, req.id, comment="too late")


def test_a_large_change_or_a_new_environment_needs_two_distinct_operators(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
    purge: Callable[[str], None],
) -> None:
    purge(tenant_slug)
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")  # not applied
    admin = admin_of(tenant_slug)
    big = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="quota_change",
        environment="prod",
        quotas={"volume": {"gigabytes": 1500}},
        submit=True,
    )
    assert big.required_approvals == 2
    first = approve_request(database, backends, OP1, big.id)
    assert first.state == "submitted" and first.approvals == (OP1.audit_name,)
    with pytest.raises(PermissionDenied, match="another operator"):
        approve_request(database, backends, OP1, big.id)
    second = approve_request(database, backends, OP2, big.id)
    assert second.state == "approved" and second.approvals == (OP1.audit_name, OP2.audit_name)

    quotas = {
        "compute": {"cores": 4, "ram_mb": 8192, "instances": 2},
        "network": {
            "networks": 1,
            "subnets": 1,
            "ports": 16,
            "routers": 1,
            "floating_ips": 0,
            "security_groups": 5,
            "security_group_rules": 50,
        },
        "volume": {"gigabytes": 50, "volumes": 5, "snapshots": 5},
    }
    draft = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="new_environment",
        environment="dev",
        quotas=quotas,
        description="developers' sandbox",
    )
    assert draft.state == "draft"
    new_env = submit_request(database, backends, admin, draft.id)
    assert new_env.required_approvals == 2
    approve_request(database, backends, OP2, new_env.id)
    done = approve_request(database, backends, OP1, new_env.id, comment="second pair of eyes")
    assert done.state == "approved" and done.applied_generation == 3
    with database.transaction() as s:
        spec = tenant_spec(get_tenant(s, tenant_slug))
    assert [e.name for e in spec.environments] == ["dev", "prod"]
    assert spec.environment("dev").quotas.compute.cores == 4
    assert spec.environment("dev").description == "developers' sandbox"
    assert spec.environment("prod").quotas.volume.gigabytes == 1500

    rejected = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="quota_change",
        environment="prod",
        quotas={"compute": {"cores": 64}},
        submit=True,
    )
    with pytest.raises(InvalidInput, match="say why"):
        reject_request(database, OP1, rejected.id, comment=" ")
    assert reject_request(database, OP1, rejected.id, comment="no capacity").state == "rejected"
    gone = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="quota_change",
        environment="prod",
        quotas={"compute": {"cores": 40}},
    )
    assert withdraw_request(database, admin, gone.id, comment="asked too early").state == "withdrawn"
    with pytest.raises(Conflict, match="withdrawn cannot become submitted"):
        submit_request(database, backends, admin, gone.id)
    with pytest.raises(InvalidInput, match="already exists"):
        create_request(
            database,
            backends,
            admin,
            org=tenant_slug,
            kind="new_environment",
            environment="dev",
            quotas=quotas,
        )


def test_decreases_and_one_step_up_at_high_usage_are_auto_approved_bad_input_writes_nothing(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    provision: Callable[..., Provisioned],
) -> None:
    prod = provision(tenant_slug, staging=False).project.id
    admin = admin_of(tenant_slug)

    down = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="quota_change",
        environment="prod",
        quotas={"network": {"networks": 1}},
        submit=True,
    )
    assert down.state == "approved", "a decrease needs no operator"
    assert down.steps[-1].step == "auto-approved" and down.steps[-1].comment == "auto-approved: decrease"
    assert reconcile(database, backends, tenancy_settings, tenant_slug).status == "changed"
    assert sync_outcomes(database) == {down.id: "applied"}
    assert backends.cloud.get_network_quotas(prod).networks.limit == 1

    # 1 of 1 networks in use (100 % > 80 %): one step up (+1) is approved at once too
    up = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="quota_change",
        environment="prod",
        quotas={"network": {"networks": 2}},
        submit=True,
    )
    assert up.state == "approved" and up.steps[-1].comment == "auto-approved: one step up at high usage"
    assert reconcile(database, backends, tenancy_settings, tenant_slug).status == "changed"
    assert sync_outcomes(database) == {up.id: "applied"}
    assert backends.cloud.get_network_quotas(prod).networks.limit == 2
    # two steps up is an operator's decision
    assert (
        create_request(
            database,
            backends,
            admin,
            org=tenant_slug,
            kind="quota_change",
            environment="prod",
            quotas={"network": {"networks": 4}},
            submit=True,
        ).state
        == "submitted"
    )

    before = _counts(database)
    bad: list[tuple[dict[str, object], str, str]] = [
        ({"network": {"networks": 0}}, "prod", "network.networks: 0 is below current usage of 1"),
        ({"compute": {"cores": -4}}, "prod", "quotas.compute.cores: -4 is negative"),
        ({"compute": {"cores": 999999}}, "prod", "above the ceiling"),
        ({"compute": {"cores": 32}}, "prod", "changes nothing"),
        ({"compute": {"cores": 40}}, "qa", f"{tenant_slug} has no environment 'qa' (it has: prod)"),
    ]
    for quotas, env, message in bad:
        with pytest.raises(InvalidInput) as info:
            create_request(
                database,
                backends,
                admin,
                org=tenant_slug,
                kind="quota_change",
                environment=env,
                quotas=quotas,
                submit=True,
            )
        assert message in info.value.message
    assert _counts(database) == before, "refused requests write nothing"


def test_a_change_the_reconciler_refuses_marks_the_request_failed(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    provision: Callable[..., Provisioned],
) -> None:
    prod = provision(tenant_slug, staging=False).project.id
    admin = admin_of(tenant_slug)
    req = create_request(
        database,
        backends,
        admin,
        org=tenant_slug,
        kind="quota_change",
        environment="prod",
        quotas={"network": {"networks": 1}},
        submit=True,
    )
    assert req.state == "approved"
    # usage grows after the approval, before the reconciler gets to it
    backends.cloud.ensure_network(f"{tenant_slug}-extra", project_id=prod)
    with pytest.raises(InvalidInput, match="below current usage 2"):
        reconcile(database, backends, tenancy_settings, tenant_slug)
    assert sync_outcomes(database) == {req.id: "failed"}
    failed = get_request(database, admin, req.id)
    assert "networks 1 is below current usage 2" in failed.outcome
    assert failed.steps[-1].step == "failed"
    assert backends.cloud.get_network_quotas(prod).networks.limit == 4, "nothing was applied"
