"""A ministry detects what the platform signed unseen (issue 12, A): a document written into the
registry by direct SQL, signed with the ministry's real key but never through the log, is reported by
`documents monitor` (in-process and as the CLI over HTTP); a tampered log row or log event no longer
proves; a signature kept out of the log too long is reported. Real OpenBao, sequencer and audit key."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text, update
from werkzeug.serving import make_server

from controlplane.audit.checkpoints import read_pinned_keys
from controlplane.audit.models import AuditEvent
from controlplane.audit.sequencer import run_sequencer
from controlplane.backends import Backends
from controlplane.backends.keys import KeyBackend, signing_key_name
from controlplane.documents.claims import Claims
from controlplane.documents.cose import encode_sign1, protected_header, sig_structure
from controlplane.documents.models import DocumentSignature
from controlplane.documents.monitor import MonitorReport, check_page
from controlplane.documents.signer import OrgSigner
from controlplane.documents.tokens import encode_token
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.documents import org_admin_token, signing_caller
from tests.integration.api_actors import bearer
from tests.integration.audit_helpers import (
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    pinned,
)

pytestmark = [pytest.mark.integration]


def issue_two(client: FlaskClient, token: str) -> list[str]:
    body = {"documents": [{"doc_type": "permit", "title": f"Permit {n}", "recipient": "Dilan Omer",
                           "sha256": f"{n + 99:064x}"} for n in range(2)]}
    response = client.post("/api/v1/documents", json=body, headers=bearer(token))
    assert response.status_code == 201, response.get_data(as_text=True)
    return [d["serial"] for d in response.get_json()["documents"]]


def monitor_in_process(client: FlaskClient, token: str, settings: Settings, *,
                       now: datetime | None = None) -> MonitorReport:
    response = client.get("/api/v1/documents/issued", headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    report = MonitorReport()
    pin = pinned(settings)  # written by the first checkpoint
    keys = read_pinned_keys(pin) if pin.is_file() else []
    check_page(response.get_json(), keys, report, now=now or utcnow(),
               max_pending=timedelta(minutes=10))
    return report


def forge_into_registry(database: Database, signer: OrgSigner, org: str) -> str:
    """What a platform insider with Vault and database access could do: sign with the ministry's
    real key through its identity, skip the log, write the registry row by SQL. Returns the serial."""
    serial = os.urandom(16)
    # The insider holds a credential of the ministry for a moment (its token passing through), takes
    # the identity, and signs with it directly instead of through issuance.
    identity = signer.identity(signing_caller(database, org))
    key = signer.public_keys(signing_caller(database, org))
    protected = protected_header(key.name, key.latest_version)
    payload = Claims(issuer=org, doc_type="permit", serial=serial, sha256=os.urandom(32),
                     issued_at=int(time.time())).to_cbor()
    [signature] = identity.sign(signing_key_name(org), [sig_structure(protected, payload)])
    token = encode_token(encode_sign1(protected, payload, signature.signature))
    with database.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO documents (serial, org, doc_type, title, recipient, sha256, issued_at, key_name, "
            "key_version, token, status, status_reason) VALUES (:serial, :org, 'permit', 'Forged permit', "
            "'Someone', :sha, :at, :key, :version, :token, 'valid', '')"),
            {"serial": serial.hex(), "org": org, "sha": "00" * 32, "at": datetime.now(UTC),
             "key": key.name, "version": key.latest_version, "token": token})
    return serial.hex()


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app on a real HTTP port, for the monitor CLI (a separate process, as a ministry runs it)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def test_a_document_written_into_the_registry_unseen_is_reported_by_the_monitor(
    client: FlaskClient, backends: Backends, database: Database, settings: Settings, signer: OrgSigner,
    document_org: str, audit_keys: KeyBackend, served: str, tmp_path: Path,
) -> None:
    token = org_admin_token(database, document_org, ["documents:issue", "documents:read"]).secret
    issue_two(client, token)
    run_sequencer(database, audit_keys, pin_path=pinned(settings))
    token_file = tmp_path / "ministry-token"
    token_file.write_text(token + "\n", encoding="utf-8")
    args = ("documents", "monitor", "--org", document_org, "--token-file", str(token_file), "--url", served,
            "--audit-key", str(pinned(settings)))
    env = settings_env(settings, vault_token="")
    clean = run_controlplane(*args, env=env, timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert "2 document(s) checked" in clean.stdout and "2 in the log" in clean.stdout

    forged = forge_into_registry(database, signer, document_org)
    report = monitor_in_process(client, token, settings)
    assert report.unlogged == [forged] and report.included == 2 and not report.ok
    caught = run_controlplane(*args, env=env, timeout=120)
    assert caught.returncode == 1, caught.stdout
    assert f"UNLOGGED {forged}" in caught.stderr


def test_a_tampered_log_row_or_event_no_longer_proves_and_a_late_one_is_reported(
    client: FlaskClient, backends: Backends, database: Database, settings: Settings, document_org: str,
    audit_keys: KeyBackend,
) -> None:
    token = org_admin_token(database, document_org, ["documents:issue"]).secret
    first, second = issue_two(client, token)
    # Pending: fine now, reported once it has waited longer than the allowed delay.
    assert monitor_in_process(client, token, settings).pending == 2
    late = monitor_in_process(client, token, settings, now=utcnow() + timedelta(hours=1))
    assert len(late.faults) == 2 and all("still not in the log" in f for f in late.faults)

    run_sequencer(database, audit_keys, pin_path=pinned(settings))
    assert monitor_in_process(client, token, settings).ok
    with database.transaction() as s:  # the index row now names someone else
        s.execute(update(DocumentSignature).where(DocumentSignature.serial == first)
                  .values(signed_by="token:deadbeef"))
    report = monitor_in_process(client, token, settings)
    assert [f.split(":")[0] for f in report.faults] == [first], report.faults

    with database.transaction() as s:  # the logged event itself rewritten: its leaf no longer proves
        row = s.get(DocumentSignature, second)
        assert row is not None
        event = s.get(AuditEvent, row.event_id)
        assert event is not None
        detail: dict[str, Any] = dict(event.detail)
        detail["person"] = "user:somebody-else"
        event.detail = detail
    report = monitor_in_process(client, token, settings)
    assert any(f.startswith(second) and "inclusion proof does not verify" in f for f in report.faults), \
        report.faults
