"""Rotating an organisation's document-signing key (real OpenBao): through the API, the console and
the CLI's use-case; old and new documents both verify, online and offline; refusals rotate nothing;
the rotation is audited and shown on the auditor console's key history."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from controlplane.accounts.models import Role
from controlplane.accounts.tokens import OPERATOR_SCOPES
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.backends.keys import KeyBackend, signing_key_name
from controlplane.documents.trustlist import ROOT_KEY_NAME, build_trust_list, ensure_root_key, load_trust_list
from controlplane.documents.verification import Verdict, verify_offline
from controlplane.errors import Conflict, InvalidInput, NotFound
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.keys import rotate_signing_key
from controlplane.tenancy.models import SigningPublicKey
from controlplane.tenancy.phases import Phase
from tests.fixtures.app import csrf_token_from, run_controlplane, settings_env
from tests.fixtures.vault import VaultJanitor
from tests.integration.api_actors import bearer, make_user, operator_token, sign_in_client

pytestmark = pytest.mark.integration

REASON = {"reason": "yearly rotation, ticket DC-1207"}


def set_phase(database: Database, slug: str, phase: Phase) -> None:
    """As if the tenant had been applied (or taken into decommission) by the reconciler."""
    with database.transaction() as s:
        registry.get_tenant(s, slug).phase = phase.value


@pytest.fixture
def ready_org(database: Database, document_org: str) -> str:
    set_phase(database, document_org, Phase.READY)
    return document_org


@pytest.fixture
def operator_headers(database: Database) -> dict[str, str]:
    operator = make_user(database, "key-operator", Role.OPERATOR, with_mfa=True)
    return bearer(operator_token(database, operator, OPERATOR_SCOPES))


def issue(client: FlaskClient, token: str, n: int) -> Any:
    body = {"doc_type": "degree", "title": f"Degree {n}", "recipient": "Salih Ahmed",
            "sha256": hashlib.sha256(f"file {n}".encode()).hexdigest()}
    response = client.post("/api/v1/documents", json=body, headers=bearer(token))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def rotations(database: Database, org: str) -> list[dict[str, Any]]:
    with database.transaction() as s:
        return [e.detail for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "key:rotate", AuditEvent.org == org).order_by(AuditEvent.id))]


def test_documents_before_and_after_a_rotation_both_verify_online_and_offline(
    client: FlaskClient, backends: Backends, database: Database, vault_keys: KeyBackend, ready_org: str,
    api_token_for: Callable[..., str], operator_headers: dict[str, str],
    make_vault_janitor: Callable[[KeyBackend], VaultJanitor],
) -> None:
    make_vault_janitor(vault_keys).key(ROOT_KEY_NAME)
    token = api_token_for(ready_org)
    name = signing_key_name(ready_org)
    before = issue(client, token, 1)
    assert before["key_id"] == f"{name}#1"

    response = client.post(f"/api/v1/tenants/{ready_org}/keys/rotate", json=REASON, headers=operator_headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"slug": ready_org, "key": name, "version": 2}
    after = issue(client, token, 2)  # at once: the app's signer forgot its cached key
    assert after["key_id"] == f"{name}#2"

    for doc in (before, after):
        assert client.get(f"/api/v1/verify/{doc['token']}").get_json()["verdict"] == "valid"
    root = ensure_root_key(vault_keys)
    trust = load_trust_list(build_trust_list(database, vault_keys), root_public_key=root)
    assert {kid for kid in trust.keys if kid[0] == name} == {(name, 1), (name, 2)}
    assert [verify_offline(d["token"], trust).verdict for d in (before, after)] == [Verdict.VALID] * 2

    [detail] = rotations(database, ready_org)
    assert detail == {"key": name, "from_version": 1, "to_version": 2, "reason": REASON["reason"]}
    with database.transaction() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "key:rotate"))
        assert event is not None and event.initiator == "user:key-operator" and event.target == f"key:{name}"
        assert any("rotated to version 2" in e.message for e in registry.recent_events(s, ready_org))


def test_the_auditor_key_history_shows_the_rotation(
    app: Flask, backends: Backends, database: Database, vault_keys: KeyBackend, ready_org: str,
) -> None:
    rotate_signing_key(database, vault_keys, ready_org, initiator="user:op-key", reason="compromise drill")
    auditor = sign_in_client(app.test_client(), database,
                             make_user(database, "key-auditor", Role.AUDITOR, with_mfa=True))
    page = auditor.get("/audit/keys")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "key:rotate" in html and f"key:{signing_key_name(ready_org)}" in html and "user:op-key" in html


def _vault_version(vault_keys: KeyBackend, org: str) -> int:
    return vault_keys.get_signing_key(signing_key_name(org)).latest_version


@pytest.mark.parametrize("body", [None, {}, {"reason": "no"}, {"reason": "   "}, {"reason": 42},
                                  {"reason": "x" * 501}, {"reason": "fine", "extra": 1}])
def test_bad_reason_is_a_400_and_rotates_nothing(
    client: FlaskClient, backends: Backends, database: Database, vault_keys: KeyBackend, ready_org: str,
    operator_headers: dict[str, str], body: Any,
) -> None:
    response = client.post(f"/api/v1/tenants/{ready_org}/keys/rotate", json=body, headers=operator_headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "reason" in response.get_json()["message"] or body is None or "extra" in body
    assert _vault_version(vault_keys, ready_org) == 1 and rotations(database, ready_org) == []


def test_only_an_operator_token_with_the_scope_may_rotate(
    client: FlaskClient, backends: Backends, database: Database, vault_keys: KeyBackend, ready_org: str,
    api_token_for: Callable[..., str],
) -> None:
    operator = make_user(database, "narrow-operator", Role.OPERATOR, with_mfa=True)
    narrow = operator_token(database, operator, [s for s in OPERATOR_SCOPES if s != "keys:rotate"])
    org_admin = api_token_for(ready_org, scopes=["tenants:read", "tokens:manage", "documents:issue"])
    for token in (narrow, org_admin):
        response = client.post(f"/api/v1/tenants/{ready_org}/keys/rotate", json=REASON, headers=bearer(token))
        assert response.status_code == 403, response.get_data(as_text=True)
    assert _vault_version(vault_keys, ready_org) == 1 and rotations(database, ready_org) == []


@pytest.mark.parametrize("phase", [Phase.DISABLED, Phase.ARCHIVED, Phase.PENDING])
def test_a_tenant_that_is_not_ready_is_refused_with_nothing_changed(
    client: FlaskClient, backends: Backends, database: Database, vault_keys: KeyBackend, document_org: str,
    operator_headers: dict[str, str], phase: Phase,
) -> None:
    set_phase(database, document_org, phase)
    response = client.post(f"/api/v1/tenants/{document_org}/keys/rotate", json=REASON,
                           headers=operator_headers)
    assert response.status_code == 409, response.get_data(as_text=True)
    message = response.get_json()["message"]
    assert phase.value in message and "nothing was changed" in message
    assert ("decommissioned" in message) == (phase is not Phase.PENDING)
    assert _vault_version(vault_keys, document_org) == 1 and rotations(database, document_org) == []
    with database.transaction() as s:
        assert registry.get_tenant(s, document_org).phase == phase.value


def test_the_use_case_refuses_an_unknown_tenant_and_a_missing_reason(
    database: Database, vault_keys: KeyBackend, ready_org: str,
) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        rotate_signing_key(database, vault_keys, ready_org, initiator="cli:test", reason="")
    with pytest.raises(NotFound, match="no tenant 'nowhere-9'"):
        rotate_signing_key(database, vault_keys, "nowhere-9", initiator="cli:test", reason="because")
    assert _vault_version(vault_keys, ready_org) == 1


def test_the_console_form_rotates_with_csrf_and_a_reason(
    app: Flask, backends: Backends, database: Database, vault_keys: KeyBackend, ready_org: str,
) -> None:
    operator = sign_in_client(app.test_client(), database,
                              make_user(database, "console-operator", Role.OPERATOR, with_mfa=True))
    page = operator.get(f"/tenants/{ready_org}").get_data(as_text=True)
    assert "Rotate signing key" in page
    url = f"/tenants/{ready_org}/keys/rotate"
    assert operator.post(url, data={"reason": "console drill"}).status_code == 400  # no CSRF token
    csrf = csrf_token_from(page)
    refused = operator.post(url, data={"csrf_token": csrf, "reason": ""})
    assert refused.status_code == 400 and _vault_version(vault_keys, ready_org) == 1

    auditor = sign_in_client(app.test_client(), database,
                             make_user(database, "console-auditor", Role.AUDITOR, with_mfa=True))
    auditor_page = auditor.get(f"/tenants/{ready_org}").get_data(as_text=True)
    assert "Rotate signing key" not in auditor_page
    denied = auditor.post(url, data={"csrf_token": csrf_token_from(auditor_page), "reason": "not mine"})
    assert denied.status_code == 403 and _vault_version(vault_keys, ready_org) == 1

    done = operator.post(url, data={"csrf_token": csrf, "reason": "console drill"}, follow_redirects=True)
    assert done.status_code == 200 and "rotated from version 1 to 2" in done.get_data(as_text=True)
    assert _vault_version(vault_keys, ready_org) == 2
    assert [d["reason"] for d in rotations(database, ready_org)] == ["console drill"]
    with database.transaction() as s:
        archived = s.scalars(select(SigningPublicKey.version).where(
            SigningPublicKey.key_name == signing_key_name(ready_org))).all()
    assert sorted(archived) == [1, 2]  # every version Vault lists, the new one included


def test_rotating_a_decommissioning_tenant_raises_conflict(
    database: Database, vault_keys: KeyBackend, document_org: str,
) -> None:
    set_phase(database, document_org, Phase.RETAINED)
    with pytest.raises(Conflict, match="decommissioned"):
        rotate_signing_key(database, vault_keys, document_org, initiator="cli:test", reason="because")


def test_the_cli_rotates_and_says_which_versions(
    database: Database, tenancy_settings: Settings, controlplane_token: str, vault_keys: KeyBackend,
    ready_org: str,
) -> None:
    env = settings_env(tenancy_settings, vault_token=controlplane_token)
    refused = run_controlplane("tenants", "rotate-key", ready_org, "--reason", "no", env=env)
    assert refused.returncode != 0 and "reason" in refused.stderr
    done = run_controlplane("tenants", "rotate-key", ready_org, "--reason", "key custodian change", env=env)
    assert done.returncode == 0, done.stderr
    assert "rotated from version 1 to 2" in done.stdout and _vault_version(vault_keys, ready_org) == 2
    [detail] = rotations(database, ready_org)
    assert detail["reason"] == "key custodian change"
