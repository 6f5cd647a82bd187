"""Killing the worker at every step of provisioning, then re-running, converges with no duplicate
and no orphan. The kill is the fault-injection hook CONTROLPLANE_FAULT_KILL_AFTER_ACTION: the worker
process SIGKILLs itself right after an action's backend call returned, before recording it."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from controlplane.backends import Backends
from controlplane.backends.cloud import CloudBackend
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.models import Tenant, TenantResource
from controlplane.tenancy.reconciler import FAULT_KILL_ENV, plan_for
from controlplane.tenancy.spec import TenantSpec
from tests.fixtures.app import run_controlplane, settings_env

pytestmark = pytest.mark.integration


def _apply(
    settings: Settings, specs_dir: Path, slug: str, *, kill_after: int | None, vault_token: str
) -> subprocess.CompletedProcess[str]:
    env = settings_env(settings, vault_token=vault_token)
    if kill_after is not None:
        env[FAULT_KILL_ENV] = str(kill_after)
    return run_controlplane(
        "tenants", "apply", str(specs_dir), "--tenant", slug, "--skip-playbook", "--quiet", env=env
    )


def _names_in_project(cloud: CloudBackend, project_id: str) -> list[str]:
    found = cloud.list_project_resources(project_id)
    return sorted(
        [f"net:{n.name}" for n in found.networks]
        + [f"subnet:{s.name}" for s in found.subnets]
        + [f"router:{r.name}" for r in found.routers]
        + [f"sg:{g.name}" for g in found.security_groups]
    )


def test_kill_at_every_step_then_rerun_converges_without_duplicates(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    controlplane_token: str,
    specs_dir: Path,
    tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
    purge: Callable[[str], None],
) -> None:
    purge(tenant_slug)
    spec = write_spec(tenant_slug, staging=False)
    total = len(plan_for(spec, db=database, backends=backends, settings=tenancy_settings).actions)
    assert total >= 15
    # Each run dies right after the first action it performs, so run k dies after step k.
    kills = 0
    remaining = total
    while remaining:
        result = _apply(
            tenancy_settings, specs_dir, tenant_slug, kill_after=1, vault_token=controlplane_token
        )
        assert result.returncode == -signal.SIGKILL, (kills, result.stderr[-2000:])
        kills += 1
        left = plan_for(spec, db=database, backends=backends, settings=tenancy_settings).actions
        # progress every time (Neutron may add its default group's rules to the work once)
        assert len(left) < remaining or kills == 1 or any("default" in a.resource for a in left), (
            kills,
            [a.describe() for a in left],
        )
        assert kills <= total + 6
        remaining = len(left)
    assert kills >= total
    final = _apply(tenancy_settings, specs_dir, tenant_slug, kill_after=None, vault_token=controlplane_token)
    assert final.returncode == 0, final.stderr[-2000:]
    assert " converged " in final.stdout

    cloud = backends.cloud
    domains = [d for d in cloud.list_domains() if d.name == tenant_slug]
    assert len(domains) == 1
    projects = cloud.list_projects(domain_id=domains[0].id)
    assert [p.name for p in projects] == [f"{tenant_slug}-prod"]
    names = _names_in_project(cloud, projects[0].id)
    assert names == sorted(set(names)), f"duplicates: {names}"
    assert names == sorted(
        [
            f"net:{tenant_slug}-prod-net",
            f"subnet:{tenant_slug}-prod-subnet",
            f"router:{tenant_slug}-prod-router",
            "sg:baseline",
            "sg:default",
        ]
    )
    with database.transaction() as s:
        tenant = s.get(Tenant, tenant_slug)
        assert tenant is not None and tenant.phase == "ready"
        known = {
            r.key: r.external_id
            for r in s.scalars(select(TenantResource).where(TenantResource.tenant_slug == tenant_slug))
        }
    # nothing orphaned: every object in the cloud is one the control plane knows
    assert known["project:prod"] == projects[0].id
    assert known["domain:"] == domains[0].id
    network = cloud.find_network(f"{tenant_slug}-prod-net", project_id=projects[0].id)
    assert network is not None and known["network:prod"] == network.id
