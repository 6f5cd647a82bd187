"""Trust-list publication: signed once by the control plane, stored, served to verifiers without Vault."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from controlplane.audit.models import AuditEvent
from controlplane.backends.keys import KeyBackend, Signature
from controlplane.documents.issuance import NewDocument, issue_documents
from controlplane.documents.models import PublishedTrustList
from controlplane.documents.publication import (
    REFRESH_AFTER,
    latest_trust_list,
    publish_trust_list,
    publish_when_due,
)
from controlplane.documents.revocation import revoke_document
from controlplane.documents.signer import OrgSigner
from controlplane.documents.trustlist import ROOT_KEY_NAME, load_trust_list
from controlplane.errors import TemporaryError
from controlplane.storage import Database, utcnow
from tests.fixtures.documents import signing_caller

pytestmark = pytest.mark.integration


class FailingRootSignKeys:
    """Fault injection: Vault unreachable when the root key signs; everything else is the real backend."""

    def __init__(self, inner: KeyBackend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def sign(
        self, name: str, messages: Sequence[bytes], *, key_version: int | None = None
    ) -> list[Signature]:
        raise TemporaryError("vault unreachable (injected)", backend="vault")


def _count(database: Database, model: Any, *where: Any) -> int:
    with database.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_publish_store_serve_and_republish_only_when_something_changed(
    database: Database, vault_keys: KeyBackend, signer: OrgSigner, document_org: str
) -> None:
    assert latest_trust_list(database) is None
    [doc] = issue_documents(
        database, signer, signing_caller(database, document_org),
        [NewDocument.parse({"doc_type": "letter", "title": "T", "recipient": "Sara Omar",
                            "sha256": "ab" * 32})],
        base_url="https://verify.example.gov",
    )

    first = publish_trust_list(database, vault_keys, initiator="system:test")
    assert first is not None
    latest = latest_trust_list(database)
    assert latest is not None and latest.id == first.id and latest.body == first.body
    # what verifiers download is what the root key signed, and it names the issuer's key
    loaded = load_trust_list(latest.body, root_public_key=latest.root_public_key)
    assert any(org == document_org for org, _key in loaded.keys.values())
    assert latest.root_public_key == vault_keys.get_signing_key(ROOT_KEY_NAME).public_keys[1]
    assert _count(database, AuditEvent, AuditEvent.action == "trust_list:publish") == 1

    # nothing changed: no new list, no new event
    assert publish_trust_list(database, vault_keys, initiator="system:test") is None
    assert _count(database, PublishedTrustList) == 1

    # a revocation is published at once, and the new list carries it
    revoke_document(database, document_org, doc.serial, reason="issued in error", initiator="user:test")
    second = publish_trust_list(database, vault_keys, initiator="system:test")
    assert second is not None and second.id > first.id
    assert doc.serial in load_trust_list(second.body, root_public_key=second.root_public_key).revoked

    # an unchanged list is republished once half its validity has gone
    later = utcnow() + REFRESH_AFTER + timedelta(minutes=1)
    third = publish_trust_list(database, vault_keys, initiator="system:test", now=later)
    assert third is not None and third.next_update > second.next_update
    assert _count(database, AuditEvent, AuditEvent.action == "trust_list:publish") == 3


def test_vault_down_publishes_nothing_and_keeps_serving_the_last_list(
    database: Database, vault_keys: KeyBackend, document_org: str
) -> None:
    first = publish_trust_list(database, vault_keys, initiator="system:test", force=True)
    assert first is not None
    publish_when_due(database, FailingRootSignKeys(vault_keys), initiator="system:test")
    assert _count(database, PublishedTrustList) == 1
    latest = latest_trust_list(database)
    assert latest is not None and latest.id == first.id
    with pytest.raises(TemporaryError):
        publish_trust_list(database, FailingRootSignKeys(vault_keys), initiator="system:test",
                           force=True)
    assert _count(database, AuditEvent, AuditEvent.action == "trust_list:publish") == 1
