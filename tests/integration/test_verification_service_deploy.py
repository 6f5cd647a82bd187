"""playbooks/shared-verification.yml for real: ansible-runner deploys the verification service onto
127.0.0.1 (virtualenv, settings, gunicorn daemon), reruns without restarting it, restarts it when
a setting changes, and removes it; the deployed service verifies a document issued through Vault."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from controlplane.accounts.admin import close_organisation
from controlplane.app import create_app
from controlplane.backends import Backends
from controlplane.backends.ansible import AnsibleAutomation
from controlplane.backends.automation import RunResult
from controlplane.backends.keys import KeyBackend, signing_key_name, tenant_policy_hcl, tenant_policy_name
from controlplane.documents.issuance import NewDocument, issue_documents
from controlplane.documents.publication import publish_trust_list
from controlplane.documents.signer import OrgSigner
from controlplane.errors import ControlPlaneError, InvalidSettings
from controlplane.settings import REPO_ROOT, Settings, load_settings
from controlplane.storage import Database
from controlplane.tenancy.decommission import advance
from controlplane.tenancy.models import PlaybookRun
from controlplane.tenancy.phases import Phase
from controlplane.tenancy.reconciler import reconcile_tenant
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.services import (
    VERIFICATION_PLAYBOOK,
    VERIFICATION_SERVICE,
    release_digest,
    remove_services,
    service_dir,
    verification_extravars,
)
from controlplane.tenancy.spec import parse_spec
from controlplane.tenancy.verifier_db import drop_verifier, grant_verifier, verifier_database
from controlplane.web.services import services_of
from tests.fixtures.ansible import process_alive
from tests.fixtures.documents import signing_caller
from tests.fixtures.tenancy import spec_text
from tests.fixtures.vault import DevVault, closed_port

pytestmark = pytest.mark.integration

START_TASK = "Start the verification service"


@pytest.fixture
def service_settings(settings: Settings, vault_server: DevVault, controlplane_token: str) -> Settings:
    # no rate limit: the test asks several times from one address
    # verification_os_user "": this interpreter lives under /root, out of reach of another user
    return settings.replace(
        vault_addr=vault_server.addr, vault_token=controlplane_token, verify_rate_per_minute=0,
        verification_os_user="",
    )


@pytest.fixture
def service_automation(tmp_path: Path) -> AnsibleAutomation:
    return AnsibleAutomation(
        playbooks_dir=REPO_ROOT / "playbooks", runs_dir=tmp_path / "ansible-runs", keep_artifacts=3,
        timeout=300,
    )


@pytest.fixture
def org(vault_keys: KeyBackend) -> Iterator[str]:
    """An organisation with its signing key, policy and AppRole in Vault, as tenancy apply makes them."""
    slug = f"t-{secrets.token_hex(4)}"
    name = tenant_policy_name(slug)
    vault_keys.ensure_signing_key(signing_key_name(slug))
    vault_keys.ensure_policy(name, tenant_policy_hcl(slug, transit_mount="transit", kv_mount="kv"))
    vault_keys.ensure_approle(name, [name], token_ttl=600, secret_id_ttl=600, secret_id_num_uses=0)
    yield slug
    for remove in (lambda: vault_keys.delete_approle(name), lambda: vault_keys.delete_policy(name)):
        with contextlib.suppress(ControlPlaneError):
            remove()


def _pid(service_dir: Path) -> int:
    return int((service_dir / "run" / "gunicorn.pid").read_text().strip())


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _event_status(result: RunResult, task: str) -> list[str]:
    return [
        e.event for e in result.events
        if e.task == task and e.event.startswith("runner_on") and e.event != "runner_on_start"
    ]


class Deployment:
    """Runs the playbook for one service dir and port; `remove()` always runs at teardown."""

    def __init__(self, automation: AnsibleAutomation, settings: Settings, directory: Path, port: int,
                 database: Database) -> None:
        self.automation, self.settings, self.directory, self.port = automation, settings, directory, port
        self.database = database
        # once: other work on the tree must not look like a new release between two runs
        self.release = release_digest()

    def run(self, state: str = "present", settings: Settings | None = None) -> RunResult:
        if state == "present":  # what the worker does before each deploy (PlaybookJob.prepare)
            grant_verifier(self.database, self.settings)
        extravars = verification_extravars(
            settings or self.settings, directory=self.directory, port=self.port, state=state,
            release=self.release, workers=1, threads=4,
        )
        return self.automation.run(VERIFICATION_PLAYBOOK, extravars=extravars, timeout=240)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def remove(self) -> None:
        try:
            self.run("absent")
        finally:  # the playbook failed to stop it: stop it by its pid, never by name
            pid_file = self.directory / "run" / "gunicorn.pid"
            if pid_file.exists():
                with contextlib.suppress(ValueError, OSError):
                    os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


@pytest.fixture
def deployment(
    service_automation: AnsibleAutomation, service_settings: Settings, database: Database, tmp_path: Path
) -> Iterator[Deployment]:
    deployed = Deployment(service_automation, service_settings, tmp_path / "svc", closed_port(), database)
    try:
        yield deployed
    finally:
        deployed.remove()
        drop_verifier(database, service_settings)


def test_deploy_verify_rerun_restart_remove(
    deployment: Deployment, database: Database, vault_keys: KeyBackend, org: str
) -> None:
    document = NewDocument(
        doc_type="birth-certificate", title="Birth certificate", recipient="Ahmed Karim Salih",
        sha256=hashlib.sha256(b"the scanned certificate").hexdigest(),
    )
    [issued] = issue_documents(
        database, OrgSigner(vault_keys, database), signing_caller(database, org), [document],
        base_url="https://verify.example",
    )

    first = deployment.run()
    assert first.ok, first.summary
    assert _event_status(first, START_TASK) == ["runner_on_ok"]
    config = deployment.directory / "verification.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600, "the settings hold the database URL"
    assert 'role = "verification"' in config.read_text()
    pid = _pid(deployment.directory)
    assert process_alive(pid)

    assert requests.get(deployment.url("/healthz"), timeout=5).json() == {"status": "ok"}
    ready = requests.get(deployment.url("/readyz"), timeout=10)
    checked = {c["name"].split(":")[0] for c in ready.json()["checks"]}
    assert ready.status_code == 200 and checked == {"database"}, ready.json()  # no OpenStack, Ansible, Vault
    verdict = requests.get(deployment.url(f"/api/v1/verify/{issued.token}"), timeout=5)
    assert verdict.status_code == 200
    assert verdict.json()["verdict"] == "valid"
    assert verdict.json()["issuer"] == org
    assert "Ahmed" not in verdict.text
    malformed = requests.get(deployment.url("/api/v1/verify/NOT-A-TOKEN-1"), timeout=5)
    assert malformed.status_code < 500
    assert malformed.json()["verdict"] == "malformed"
    # the service has no Vault: it serves what the control plane published, byte for byte
    published = publish_trust_list(database, vault_keys, initiator="test", force=True)
    assert published is not None
    served = requests.get(deployment.url("/trust-list.json"), timeout=5)
    assert served.status_code == 200 and served.content == published.body
    trust_list = served.json()
    assert org in trust_list["payload"]["issuers"]
    # the verification role serves no console and no operator or issuance API
    assert requests.get(deployment.url("/"), timeout=5, allow_redirects=False).status_code == 404
    assert requests.get(deployment.url("/api/v1/tenants"), timeout=5).status_code == 404
    issue = requests.post(deployment.url("/api/v1/documents"), json={}, timeout=5)
    assert issue.status_code in (404, 405)

    again = deployment.run()
    assert again.ok, again.summary
    assert again.stats["localhost"].changed == 0, [e.task for e in again.events if e.changed]
    assert _event_status(again, START_TASK) == ["runner_on_skipped"]
    assert _pid(deployment.directory) == pid, "an unchanged deploy does not restart the service"

    changed = deployment.run(settings=deployment.settings.replace(verify_rate_burst=7))
    assert changed.ok, changed.summary
    restarted = _pid(deployment.directory)
    assert restarted != pid and process_alive(restarted) and not process_alive(pid)
    assert "verify_rate_burst = 7" in config.read_text()
    after = requests.get(deployment.url(f"/api/v1/verify/{issued.token}"), timeout=5)
    assert after.json()["verdict"] == "valid"

    removed = deployment.run("absent")
    assert removed.ok, removed.summary
    assert not _port_open(deployment.port)
    assert not process_alive(restarted)
    assert not deployment.directory.exists()


def test_secrets_stay_out_of_the_kept_run(deployment: Deployment) -> None:
    result = deployment.run()
    assert result.ok, result.summary
    token, database_url = deployment.settings.vault_token, deployment.settings.effective_database_url
    own_url = verifier_database(deployment.settings, deployment.directory).url
    kept = Path(result.artifacts_dir)
    texts = [p.read_text(errors="replace") for p in kept.rglob("*") if p.is_file()]
    assert texts, "the run's artifacts are kept for the console"
    assert not any(own_url in text for text in texts), "the database URL is scrubbed from the kept run"
    config = (deployment.directory / "verification.toml").read_text()
    # its own credential (read-only but for the counts), never the control plane's read-write one
    assert own_url in config and database_url not in config
    assert not deployment.directory.is_relative_to(Path(deployment.settings.instance_path).resolve())
    # the service holds no Vault credential at all: it serves the trust list the control plane published
    assert token not in config and "vault_token" not in config
    events = json.dumps([e.message for e in result.events])
    assert token not in events and database_url not in events


def test_reconciler_deploys_the_services_a_spec_lists(
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    controlplane_token: str,
    tenant_slug: str,
    purge: Callable[[str], None],
) -> None:
    purge(tenant_slug)
    settings = tenancy_settings.replace(
        vault_token=controlplane_token, verification_port=closed_port(), verify_rate_per_minute=0,
        verification_os_user="",
    )
    text = spec_text(tenant_slug, staging=False).replace(
        "services: [document-signing, official-mail]", f"services: [{VERIFICATION_SERVICE}]"
    )
    spec = parse_spec(text, source="<test>")
    assert spec.services == (VERIFICATION_SERVICE,)
    register_specs(database, [spec], initiator="test")
    directory = service_dir(settings, tenant_slug, VERIFICATION_SERVICE)
    try:
        outcome = reconcile_tenant(
            tenant_slug, db=database, backends=backends, settings=settings, owner="test:1"
        )
        assert outcome.status == "changed", outcome.error
        with database.transaction() as s:
            runs = {r.playbook: r.status for r in s.scalars(
                select(PlaybookRun).where(PlaybookRun.tenant_slug == tenant_slug))}
        assert runs == {"tenant-baseline.yml": "successful", VERIFICATION_PLAYBOOK: "successful"}
        url = f"http://127.0.0.1:{settings.verification_port}"
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{url}/api/v1/verify/AAAA", timeout=5).json()["verdict"] == "malformed"
        pid = _pid(directory)

        # nothing changed: neither playbook runs again and the service keeps its process
        again = reconcile_tenant(
            tenant_slug, db=database, backends=backends, settings=settings, owner="test:1"
        )
        assert again.status == "converged", again.error
        with database.transaction() as s:
            runs_after = s.scalars(select(PlaybookRun).where(PlaybookRun.tenant_slug == tenant_slug))
            assert len(list(runs_after)) == 2
        assert _pid(directory) == pid

        # decommission's first stage takes the service down before the tenant's identity goes
        assert advance(database, backends, tenant_slug, initiator="test", retention_days=0,
                       settings=settings, close_access=close_organisation) is Phase.DISABLED
        assert not _port_open(settings.verification_port)
        assert not directory.exists()
        assert remove_services(spec, db=database, backends=backends, settings=settings, run_id="test") == 1
    finally:
        Deployment(backends.automation, settings, directory, settings.verification_port,  # type: ignore[arg-type]
                   database).remove()
        drop_verifier(database, settings)


def test_verification_role_serves_only_the_public_routes(settings: Settings, database: Database) -> None:
    app = create_app(settings.replace(role="verification"))
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert rules == {
        "/static/<path:filename>", "/healthz", "/readyz", "/metrics",
        "/v/<token>", "/V/<token>", "/api/v1/verify/<token>", "/trust-list.json",
    }
    response = app.test_client().get("/")
    assert response.status_code == 404 and response.is_json, "no console page to render errors into"
    services_of(app).database.dispose()
    with pytest.raises(InvalidSettings, match="role: 'admin' is not one of full, console, worker"):
        load_settings({"instance_path": settings.instance_path, "role": "admin"}, environ={})
