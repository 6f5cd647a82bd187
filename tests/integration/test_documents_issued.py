"""GET /api/v1/documents/issued: everything an organisation's key signed, with the signature log's
proofs (real OpenBao signing, real database, the real sequencer and audit key): single and batch
issues are pending, then proved against a signed checkpoint; pages, filters and who may read it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from controlplane.accounts.models import Role
from controlplane.audit.checkpoints import read_pinned_keys
from controlplane.audit.sequencer import run_sequencer
from controlplane.backends import Backends
from controlplane.backends.keys import KeyBackend
from controlplane.documents.models import DocumentSignature
from controlplane.documents.monitor import MonitorReport, check_page
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from tests.fixtures.documents import org_admin_token
from tests.integration.api_actors import bearer, make_user, operator_token
from tests.integration.audit_helpers import (
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    pinned,
)

pytestmark = [pytest.mark.integration]


def new_doc(n: int) -> dict[str, str]:
    return {"doc_type": "degree", "title": f"Bachelor {n}", "recipient": "Rozh Kamal",
            "sha256": f"{n + 7:064x}"}


def issue_one_and_a_batch(client: FlaskClient, token: str, batch: int = 5) -> list[str]:
    one = client.post("/api/v1/documents", json=new_doc(0), headers=bearer(token))
    assert one.status_code == 201, one.get_data(as_text=True)
    many = client.post("/api/v1/documents", json={"documents": [new_doc(n) for n in range(1, batch + 1)]},
                       headers=bearer(token))
    assert many.status_code == 201, many.get_data(as_text=True)
    return [one.get_json()["serial"], *(d["serial"] for d in many.get_json()["documents"])]


def listing(client: FlaskClient, token: str, query: str = "") -> Any:
    response = client.get(f"/api/v1/documents/issued{query}", headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def monitor(page: Any, settings: Settings) -> MonitorReport:
    report = MonitorReport()
    check_page(page, read_pinned_keys(pinned(settings)), report, now=utcnow(),
               max_pending=timedelta(minutes=10))
    return report


def test_single_and_batch_are_pending_then_proved_against_the_signed_checkpoint(
    client: FlaskClient, backends: Backends, database: Database, settings: Settings, document_org: str,
    audit_keys: KeyBackend,
) -> None:
    token = org_admin_token(database, document_org).secret
    serials = issue_one_and_a_batch(client, token)
    prefix = token.split("_")[1]

    before = listing(client, token)
    assert before["org"] == document_org and before["checkpoint"] is None
    assert [d["serial"] for d in before["documents"]] == listed_order(before)
    assert {d["serial"] for d in before["documents"]} == set(serials)
    assert {d["log"] for d in before["documents"]} == {"pending"}
    assert len(before["events"]) == 2  # one event for the single document, one for the batch
    assert all("pending_since" in e for e in before["events"].values())

    run_sequencer(database, audit_keys, pin_path=pinned(settings))
    after = listing(client, token)
    assert after["checkpoint"]["tree_size"] >= 2
    assert {d["log"] for d in after["documents"]} == {"included"}
    by_serial = {d["serial"]: d for d in after["documents"]}
    single, first_of_batch = by_serial[serials[0]], by_serial[serials[1]]
    assert single["signature"]["batch_size"] == 1 and single["signature"]["batch_path"] == []
    batch_sig = first_of_batch["signature"]
    assert batch_sig["batch_size"] == 5 and len(batch_sig["batch_path"]) == 3  # ceil(log2(5))
    for doc in after["documents"]:
        sig = doc["signature"]
        assert sig["signed_by"] == f"token:{prefix}" and sig["person"] == f"user:{document_org}-admin"
        assert (sig["key_name"], sig["key_version"]) == (document_org, 1) and len(sig["signed_sha256"]) == 64
    event = after["events"][str(first_of_batch["signature"]["event_id"])]
    record = json.loads(base64.b64decode(event["leaf_input"]))
    assert record["name"] == "document:issue" and record["initiator"]["name"] == f"token:{prefix}"
    assert set(record["attachments"][0]["content"]["detail"]["serials"]) == set(serials[1:])

    report = monitor(after, settings)
    assert report.ok, (report.unlogged, report.faults)
    assert (report.checked, report.included, report.pending) == (6, 6, 0)
    assert report.signers == {f"token:{prefix} (user:{document_org}-admin)": 6}


def listed_order(page: Any) -> list[str]:
    """The serials in the order listed: (issued_at, serial)."""
    docs = page["documents"]
    return [d["serial"] for d in sorted(docs, key=lambda d: (d["issued_at"], d["serial"]))]


def test_pages_and_filters_cover_every_document_once(
    client: FlaskClient, backends: Backends, document_org: str, api_token_for: Callable[..., str],
) -> None:
    token = api_token_for(document_org, ["documents:read", "documents:issue"])
    serials = issue_one_and_a_batch(client, token, batch=6)
    seen: list[str] = []
    query = "?limit=3"
    for _ in range(10):
        page = listing(client, token, query)
        seen += [d["serial"] for d in page["documents"]]
        if page["next_cursor"] is None:
            break
        query = f"?limit=3&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(serials) and len(seen) == 7
    assert listing(client, token, "?since=9998-01-01")["documents"] == []
    assert listing(client, token, "?until=1971-01-01")["documents"] == []
    assert len(listing(client, token, "?since=2000-01-01&until=9000-01-01")["documents"]) == 7
    for bad in ("?limit=0", "?limit=1001", "?cursor=nonsense", "?since=yesterday", "?cursor="):
        response = client.get(f"/api/v1/documents/issued{bad}", headers=bearer(token))
        assert response.status_code == 400, (bad, response.get_data(as_text=True))


def test_only_the_organisations_own_tokens_list_what_its_key_signed(
    client: FlaskClient, backends: Backends, database: Database, document_org: str,
    make_document_org: Callable[[], str], api_token_for: Callable[..., str],
) -> None:
    other = make_document_org()
    issue_one_and_a_batch(client, api_token_for(document_org, ["documents:issue"]), batch=2)
    theirs = listing(client, api_token_for(other, ["documents:read"]))
    assert theirs["org"] == other and theirs["documents"] == [] and document_org not in json.dumps(theirs)
    mine = listing(client, api_token_for(document_org, ["documents:read"]))
    assert len(mine["documents"]) == 3
    no_scope = client.get("/api/v1/documents/issued", headers=bearer(api_token_for(document_org,
                                                                                   ["tenants:read"])))
    assert no_scope.status_code == 403
    operator = make_user(database, "op-issued", Role.OPERATOR, with_mfa=True)
    as_operator = client.get("/api/v1/documents/issued",
                             headers=bearer(operator_token(database, operator, ["tenants:read"])))
    assert as_operator.status_code == 403
    assert client.get("/api/v1/documents/issued").status_code == 401
    with database.transaction() as s:
        rows = s.scalars(select(DocumentSignature).where(DocumentSignature.org == document_org)).all()
    assert len(rows) == 3
