"""Bad input applies nothing: invalid specs, quotas below usage, names owned by someone else."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from controlplane.backends import Backends
from controlplane.backends.cloud import UserCredentials
from controlplane.errors import InvalidInput
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.reconciler import reconcile_tenant
from controlplane.tenancy.service import mark_imported, reconcile_many, register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.tenancy import Provisioned, spec_text

pytestmark = pytest.mark.integration


def _cli(settings: Settings, *args: str, vault_token: str) -> subprocess.CompletedProcess[str]:
    return run_controlplane(*args, env=settings_env(settings, vault_token=vault_token))


def test_invalid_spec_applies_nothing_and_names_file_line_field(
    database: Database,
    tenancy_settings: Settings,
    controlplane_token: str,
    specs_dir: Path,
    tenant_slug: str,
    backends: Backends,
) -> None:
    good = specs_dir / f"{tenant_slug}.yaml"
    good.write_text(spec_text(tenant_slug), encoding="utf-8")
    bad_slug = f"{tenant_slug}x"
    bad = specs_dir / f"{bad_slug}.yaml"
    bad.write_text(spec_text(bad_slug).replace("instances: 16}", "instances: many}"), encoding="utf-8")
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "instances: many" in text)
    result = _cli(tenancy_settings, "tenants", "apply", str(specs_dir), vault_token=controlplane_token)
    assert result.returncode == 1
    assert (
        f"{bad}:{line}: environments.prod.quotas.compute.instances: 'many' is not of type 'integer'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == 0
    assert backends.cloud.find_domain(tenant_slug) is None, "the valid spec next to it was not applied either"


def test_quota_below_usage_is_refused_with_the_usage_shown(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
    provision: Callable[..., Provisioned],
) -> None:
    cloud = backends.cloud
    made = provision(tenant_slug, staging=False)
    domain, project = made.domain, made.project
    user = cloud.ensure_user("mallory", domain_id=domain.id, password="pw-for-a-test-user-1")
    cloud.assign_role(project.id, "member", user_id=user.id)
    as_user = cloud.as_user(UserCredentials(user.id, "pw-for-a-test-user-1", project.id))
    as_user.create_server("busy", flavor_name="cp.tiny", image_name="cp-fake-image")  # 1 core in use

    shrunk = write_spec(tenant_slug, staging=False, cores=0)
    register_specs(database, [shrunk], initiator="test")
    with pytest.raises(InvalidInput, match="compute quota cores 0 is below current usage 1"):
        reconcile_tenant(
            tenant_slug,
            db=database,
            backends=backends,
            settings=tenancy_settings,
            owner="test:1",
            run_baseline_playbook=False,
        )
    assert cloud.get_compute_quotas(project.id).cores.limit == 32, "nothing was applied"
    with database.transaction() as s:
        tenant = s.get(Tenant, tenant_slug)
        assert tenant is not None and "below current usage 1" in tenant.last_error


def test_name_of_an_unmanaged_domain_is_refused_unless_imported(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
    purge: Callable[[str], None],
) -> None:
    purge(tenant_slug)
    cloud = backends.cloud
    existing = cloud.ensure_domain(tenant_slug, description="made by hand before the control plane")
    spec = write_spec(tenant_slug, staging=False)
    register_specs(database, [spec], initiator="test")
    with pytest.raises(InvalidInput, match="not managed by the control plane"):
        reconcile_tenant(
            tenant_slug,
            db=database,
            backends=backends,
            settings=tenancy_settings,
            owner="test:1",
            run_baseline_playbook=False,
        )
    assert cloud.find_project(f"{tenant_slug}-prod", domain_id=existing.id) is None

    mark_imported(database, backends, spec, initiator="test")
    outcome = reconcile_tenant(
        tenant_slug,
        db=database,
        backends=backends,
        settings=tenancy_settings,
        owner="test:1",
        run_baseline_playbook=False,
    )
    assert outcome.status == "changed", outcome.error
    adopted = cloud.find_domain(tenant_slug)
    assert adopted is not None and adopted.id == existing.id and "cp-managed" in adopted.tags


def test_one_tenants_failure_never_stops_the_others(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
    purge: Callable[[str], None],
) -> None:
    blocked = f"{tenant_slug}-x"
    purge(tenant_slug)
    purge(blocked)
    backends.cloud.ensure_domain(blocked, description="someone else's")
    register_specs(
        database,
        [write_spec(blocked, staging=False), write_spec(tenant_slug, staging=False)],
        initiator="test",
    )
    outcomes = {
        o.slug: o
        for o in reconcile_many(
            [blocked, tenant_slug],
            db=database,
            backends=backends,
            settings=tenancy_settings,
            concurrency=2,
            run_baseline_playbook=False,
        )
    }
    assert outcomes[blocked].status == "refused" and "not managed" in outcomes[blocked].error
    assert outcomes[tenant_slug].status == "changed", outcomes[tenant_slug].error
    assert backends.cloud.find_domain(tenant_slug) is not None
