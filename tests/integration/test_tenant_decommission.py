"""Staged decommission: disable -> archive -> retention hold -> delete, against the real services."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from controlplane.accounts.admin import close_organisation
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.backends.cloud import UserCredentials
from controlplane.backends.keys import signing_key_name, tenant_policy_name
from controlplane.errors import BackendPermissionDenied, Conflict, ControlPlaneError
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy import decommission as dec
from controlplane.tenancy.models import SubnetAllocation, Tenant
from controlplane.tenancy.reconciler import reconcile_tenant
from controlplane.tenancy.registry import archived_public_keys, get_tenant
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.tenancy import Provisioned

pytestmark = pytest.mark.integration


def test_staged_decommission_leaves_nothing_but_the_public_key(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    tenant_slug: str,
    provision: Callable[..., Provisioned],
) -> None:
    cloud, keys = backends.cloud, backends.keys
    made = provision(tenant_slug, staging=False)
    domain, project = made.domain, made.project
    password = secrets.token_urlsafe(16)
    bob = cloud.ensure_user("bob", domain_id=domain.id, password=password)
    cloud.assign_role(project.id, "member", user_id=bob.id)
    as_bob = cloud.as_user(UserCredentials(bob.id, password, project.id))
    assert as_bob.find_network(f"{tenant_slug}-prod-net", project_id=project.id) is not None
    # a document signed before decommission
    letter = b"decision 2026/117 of the test ministry"
    signature = keys.sign(signing_key_name(tenant_slug), [letter])[0]

    # 1. disable: no new tokens, no new signatures; the reconciler leaves the tenant alone
    dec.disable(database, backends, tenant_slug, initiator="test", close_access=close_organisation)
    with pytest.raises(ControlPlaneError):
        cloud.as_user(UserCredentials(bob.id, password, project.id)).find_network(
            f"{tenant_slug}-prod-net", project_id=project.id
        )
    with pytest.raises(BackendPermissionDenied):
        keys.sign(signing_key_name(tenant_slug), [b"signed after disable"])
    skipped = reconcile_tenant(
        tenant_slug,
        db=database,
        backends=backends,
        settings=tenancy_settings,
        owner="test:1",
        run_baseline_playbook=False,
    )
    assert skipped.status == "skipped"

    # 2. archive; 3. hold: delete is refused while the hold lasts
    dec.archive(database, backends, tenant_slug, initiator="test")
    dec.hold(database, tenant_slug, days=30, initiator="test")
    with pytest.raises(Conflict, match="retention hold"):
        dec.delete(database, backends, tenant_slug, initiator="test")
    with database.transaction() as s:
        t = s.get(Tenant, tenant_slug)
        assert t is not None and t.phase == "retained"
        t.retention_until = t.created_at  # the hold has passed

    # 4. delete: nothing left in OpenStack under the project's id
    detail = dec.delete(database, backends, tenant_slug, initiator="test")
    assert detail["projects_deleted"] == [project.id]
    left = cloud.list_project_resources(project.id)
    assert left.is_empty, left.summary()
    assert cloud.find_domain(tenant_slug) is None
    with pytest.raises(ControlPlaneError):
        cloud.as_user(UserCredentials(bob.id, password, project.id)).find_network("x", project_id=project.id)
    with pytest.raises(ControlPlaneError):
        keys.read_policy(tenant_policy_name(tenant_slug))

    # the public key stays: in our archive and in Vault, and the old signature still verifies
    with database.transaction() as s:
        archived = archived_public_keys(s, tenant_slug)
        assert s.scalar(select(SubnetAllocation).where(SubnetAllocation.tenant_slug == tenant_slug)) is None
        actions = [
            e.action
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.org == tenant_slug).order_by(AuditEvent.id)
            )
        ]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(archived[signature.key_version])).verify(
        signature.signature, letter
    )
    assert keys.get_signing_key(signing_key_name(tenant_slug)).public_keys[1] == base64.b64decode(archived[1])
    for step in ("disabled", "archived", "retained", "deleting", "deleted"):
        assert f"tenant:decommission:{step}" in actions
    with database.transaction() as s:
        t = s.get(Tenant, tenant_slug)
        assert t is not None and t.phase == "deleted"


def test_cli_decommission_walks_the_stages_it_is_asked_for(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    controlplane_token: str,
    tenant_slug: str,
    provision: Callable[..., Provisioned],
) -> None:
    made = provision(tenant_slug, staging=False)
    env = settings_env(tenancy_settings, vault_token=controlplane_token)
    refused = run_controlplane("tenants", "decommission", tenant_slug, "--confirm", "wrong", env=env)
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr
    with database.transaction() as s:
        assert get_tenant(s, tenant_slug).phase == "ready"

    archived = run_controlplane(
        "tenants", "decommission", tenant_slug, "--to", "archived", "--confirm", tenant_slug, env=env
    )
    assert archived.returncode == 0, archived.stderr
    assert "ready -> disabled" in archived.stderr and "disabled -> archived" in archived.stderr
    with database.transaction() as s:
        assert get_tenant(s, tenant_slug).phase == "archived"

    deleted = run_controlplane(
        "tenants",
        "decommission",
        tenant_slug,
        "--to",
        "deleted",
        "--retention-days",
        "0",
        "--confirm",
        tenant_slug,
        env=env,
    )
    assert deleted.returncode == 0, deleted.stderr
    with database.transaction() as s:
        assert get_tenant(s, tenant_slug).phase == "deleted"
    assert backends.cloud.list_project_resources(made.project.id).is_empty
