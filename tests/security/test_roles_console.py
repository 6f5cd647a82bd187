"""Issue 12 item 4 (the console holds no cloud-admin credential): the console role starts and serves
with no clouds.yaml at all and never constructs a cloud backend (openstacksdk is never imported); it
signs through one organisation's identity with its own Vault token; what needs the cloud or key
management is read from what the worker recorded, or queued for the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from controlplane.accounts.admin import close_organisation
from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.accounts.tokens import OPERATOR_SCOPES
from controlplane.app import close_app, create_app
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends, load_backends
from controlplane.backends.keys import (
    CONSOLE_POLICY,
    RETIRED_KEYS_POLICY,
    KeyBackend,
    console_policy_hcl,
    signing_key_name,
)
from controlplane.errors import PermanentError, TemporaryError
from controlplane.requests.service import environment_usage
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.handoff import run_tasks
from controlplane.tenancy.models import ProjectUsage, TenantResource, WorkerTask
from controlplane.tenancy.phases import Phase
from tests.fixtures.app import run_controlplane
from tests.fixtures.vault import DevServer, DevVault
from tests.integration.api_actors import bearer, make_user, operator_token

PROBE = r"""
import json, sys
from controlplane.app import close_app, create_app
from controlplane.web.services import services
app = create_app()
client = app.test_client()
out = {"healthz": client.get("/healthz").status_code, "readyz": client.get("/readyz").get_json(),
       "login": client.get("/login").status_code}
with app.app_context():
    backends = services().backends
    out["cloud"], out["holds_cloud"] = repr(backends.cloud), backends.holds_cloud
out["sdk_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("openstack", "keystoneauth1"))
close_app(app)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def console_token(vault_server: DevVault, vault_dev_server: DevServer) -> str:
    vault_dev_server.api("PUT", f"sys/policies/acl/{CONSOLE_POLICY}", policy=console_policy_hcl())
    created = vault_dev_server.api("POST", "auth/token/create",
                                   policies=[CONSOLE_POLICY, RETIRED_KEYS_POLICY], ttl="1h")
    return str(created["auth"]["client_token"])


@pytest.fixture
def console_settings(settings: Settings, vault_server: DevVault, console_token: str) -> Settings:
    return settings.replace(role="console", vault_addr=vault_server.addr, vault_token=console_token,
                            clouds_yaml="", os_cloud="")


def test_console_serves_without_clouds_yaml_and_never_loads_the_cloud_sdk(
    console_settings: Settings, database: Database, tmp_path: Path
) -> None:
    env = {
        "CONTROLPLANE_ROLE": "console",
        "CONTROLPLANE_INSTANCE_PATH": console_settings.instance_path,
        "CONTROLPLANE_DATABASE_URL": console_settings.effective_database_url,
        "CONTROLPLANE_VAULT_ADDR": console_settings.vault_addr,
        "CONTROLPLANE_VAULT_TOKEN": console_settings.vault_token,
        "HOME": str(tmp_path),  # no ~/.config/openstack/clouds.yaml either
    }
    assert not list(Path(console_settings.instance_path).glob("clouds.yaml"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLPLANE_", "VAULT_", "OS_"))}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["healthz"] == 200 and out["login"] == 200
    assert out["holds_cloud"] is False and out["cloud"].startswith("NotHeld(")
    assert out["sdk_loaded"] == [], "the console imported the cloud SDK"
    checks = {c["name"]: c["ok"] for c in out["readyz"]["checks"]}
    assert out["readyz"]["status"] == "ready", out["readyz"]
    assert checks["openstack"] and checks["ansible"]  # "not held by the console process"


def test_console_cannot_call_the_cloud_and_reads_usage_the_worker_recorded(
    console_settings: Settings, database: Database, document_org: str
) -> None:
    backends = load_backends(console_settings)
    with pytest.raises(PermanentError, match="holds no openstack credential"):
        backends.cloud.find_domain(document_org)
    admin = Actor(901, f"{document_org}-admin", Role.ORG_ADMIN, document_org)
    with database.transaction() as s:
        registry.get_tenant(s, document_org)
        s.add(TenantResource(tenant_slug=document_org, key="project:prod", external_id="p-1"))
    with pytest.raises(TemporaryError, match="no recent usage"):
        environment_usage(database, backends, admin, org=document_org, environment="prod")
    with database.transaction() as s:
        s.add(ProjectUsage(project_id="p-1", tenant_slug=document_org, environment="prod",
                           quotas={"compute.cores": [32, 7]}, observed_at=utcnow() - timedelta(seconds=40)))
    usage = {u.key: u.in_use for u in environment_usage(database, backends, admin, org=document_org,
                                                          environment="prod")}
    assert usage["compute.cores"] == 7


def test_console_queues_a_key_rotation_that_only_the_worker_makes(
    console_settings: Settings, database: Database, document_org: str, vault_keys: KeyBackend,
    api_token_for: Callable[..., str],
) -> None:
    with database.transaction() as s:
        registry.get_tenant(s, document_org).phase = Phase.READY.value
    operator = make_user(database, "roles-operator", Role.OPERATOR, with_mfa=True)
    app = create_app(console_settings)
    try:
        client = app.test_client()
        rotated = client.post(f"/api/v1/tenants/{document_org}/keys/rotate",
                              json={"reason": "yearly rotation, ticket DC-1"},
                              headers=bearer(operator_token(database, operator, OPERATOR_SCOPES)))
        assert rotated.status_code == 202, rotated.get_data(as_text=True)
        assert vault_keys.get_signing_key(signing_key_name(document_org)).latest_version == 1
        # what the console can do with keys: sign for one organisation, through that org's identity
        issued = client.post("/api/v1/documents", headers=bearer(api_token_for(document_org)), json={
            "doc_type": "degree", "title": "Degree", "recipient": "Salih Ahmed", "sha256": "ab" * 32})
        assert issued.status_code == 201, issued.get_data(as_text=True)
    finally:
        close_app(app)
    worker = Backends(cloud=load_backends(console_settings).cloud, keys=vault_keys,
                      automation=load_backends(console_settings).automation)
    assert run_tasks(database, worker, console_settings, close_access=close_organisation) == 1
    assert vault_keys.get_signing_key(signing_key_name(document_org)).latest_version == 2
    with database.transaction() as s:
        task = s.scalars(select(WorkerTask)).one()
        assert (task.outcome, task.requested_by) == ("done", "user:roles-operator")
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.org == document_org)
                                               .order_by(AuditEvent.id))]
    assert actions.index("key:rotate:request") < actions.index("key:rotate")


def test_cli_refuses_to_run_the_worker_in_the_console_role(console_settings: Settings) -> None:
    done = run_controlplane("worker", "--once", env={
        "CONTROLPLANE_ROLE": "console", "CONTROLPLANE_INSTANCE_PATH": console_settings.instance_path,
        "CONTROLPLANE_DATABASE_URL": console_settings.effective_database_url})
    assert done.returncode != 0


def test_console_settings_refuse_the_publisher_token(settings: Settings) -> None:
    from controlplane.errors import InvalidSettings
    from controlplane.settings import load_settings

    with pytest.raises(InvalidSettings, match="vault_publisher_token: the console role must not hold it"):
        load_settings({"instance_path": settings.instance_path, "role": "console",
                       "vault_publisher_token": "hvs.x"}, environ={})


def test_split_roles_refuse_an_approle_login_beside_the_tenants(settings: Settings) -> None:
    from controlplane.errors import InvalidSettings
    from controlplane.settings import load_settings

    for role in ("console", "worker"):
        with pytest.raises(InvalidSettings, match="never as an AppRole beside the tenants'"):
            load_settings({"instance_path": settings.instance_path, "role": role,
                           "vault_role_id": "r", "vault_secret_id": "s"}, environ={})
