"""Isolation with real tokens: a ministry's people and systems reach only their own tenant.
The refusals come from Keystone/Neutron/Nova policy and Vault ACLs, not from our code."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from controlplane.backends import Backends
from controlplane.backends.cloud import UserCredentials
from controlplane.backends.keys import signing_key_name, tenant_policy_name
from controlplane.errors import BackendNotFound, BackendPermissionDenied, PermanentError
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.reconciler import reconcile_tenant
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec

pytestmark = pytest.mark.integration


def test_tenant_a_cannot_touch_tenant_b(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    write_spec: Callable[..., TenantSpec],
    purge: Callable[[str], None],
) -> None:
    a_slug, b_slug = f"t-a{secrets.token_hex(3)}", f"t-b{secrets.token_hex(3)}"
    purge(a_slug)
    purge(b_slug)
    cloud, keys = backends.cloud, backends.keys
    specs = [write_spec(a_slug, staging=False), write_spec(b_slug, staging=False)]
    register_specs(database, specs, initiator="test")
    for slug in (a_slug, b_slug):
        outcome = reconcile_tenant(
            slug,
            db=database,
            backends=backends,
            settings=tenancy_settings,
            owner="test:1",
            run_baseline_playbook=False,
        )
        assert outcome.status == "changed", outcome.error

    # a ministry admin of A: a real Keystone user in A's admins group (role "manager" on A-prod)
    a_domain, b_domain = cloud.find_domain(a_slug), cloud.find_domain(b_slug)
    assert a_domain is not None and b_domain is not None
    a_project = cloud.find_project(f"{a_slug}-prod", domain_id=a_domain.id)
    b_project = cloud.find_project(f"{b_slug}-prod", domain_id=b_domain.id)
    assert a_project is not None and b_project is not None
    password = secrets.token_urlsafe(16)
    alice = cloud.ensure_user("alice", domain_id=a_domain.id, password=password)
    admins = cloud.find_group(f"{a_slug}-admins", domain_id=a_domain.id)
    assert admins is not None
    cloud.add_group_member(admins.id, alice.id)
    as_alice = cloud.as_user(UserCredentials(alice.id, password, a_project.id))

    # her own network is visible to her ...
    own = as_alice.find_network(f"{a_slug}-prod-net", project_id=a_project.id)
    assert own is not None
    # ... B's is not: listing finds nothing, reading and deleting are refused by Neutron
    b_network = cloud.find_network(f"{b_slug}-prod-net", project_id=b_project.id)
    assert b_network is not None
    assert as_alice.find_network(f"{b_slug}-prod-net", project_id=b_project.id) is None
    with pytest.raises(BackendNotFound):
        as_alice.get_network(b_network.id)
    with pytest.raises((BackendNotFound, BackendPermissionDenied)):
        as_alice.delete_network(b_network.id, missing_ok=False)
    assert cloud.get_network(b_network.id).id == b_network.id, "B's network survived"

    # she cannot raise her own quota in any service
    with pytest.raises(BackendPermissionDenied):
        as_alice.set_compute_quotas(a_project.id, cores=10_000)
    with pytest.raises(BackendPermissionDenied):
        as_alice.set_network_quotas(a_project.id, networks=10_000)
    with pytest.raises(BackendPermissionDenied):
        as_alice.set_volume_quotas(a_project.id, gigabytes=100_000)
    assert cloud.get_compute_quotas(a_project.id).cores.limit == 32

    # A's systems sign with A's key through A's AppRole; Vault itself refuses B's key (403)
    role_id = keys.read_role_id(tenant_policy_name(a_slug))
    secret_id = keys.issue_secret_id(tenant_policy_name(a_slug))
    as_a_system = keys.login_approle(role_id, secret_id.value)
    signed = as_a_system.sign(signing_key_name(a_slug), [b"official letter 1"])
    assert len(signed) == 1 and len(signed[0].signature) == 64
    with pytest.raises(BackendPermissionDenied):
        as_a_system.sign(signing_key_name(b_slug), [b"forged letter"])
    with pytest.raises(BackendPermissionDenied):
        as_a_system.rotate_signing_key(signing_key_name(a_slug))
    with pytest.raises((BackendPermissionDenied, PermanentError)):
        as_a_system.get_secret(f"tenants/{b_slug}/_meta")
