"""One archive of signing public keys for tenancy and documents: tenancy's apply, decommission and
document signing all write `signing_public_keys` through one insert-if-absent function, concurrently."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, event, func, insert, select

from controlplane.backends.keys import KeyBackend, signing_key_name
from controlplane.documents.issuance import IssuedDocument, NewDocument, issue_documents
from controlplane.documents.signer import OrgSigner
from controlplane.documents.trustlist import ROOT_KEY_NAME, build_trust_list, ensure_root_key, load_trust_list
from controlplane.documents.verification import PublicKeyCache, Verdict, verify_token
from controlplane.errors import Conflict
from controlplane.storage import Database, utcnow
from controlplane.tenancy.models import SigningPublicKey
from controlplane.tenancy.registry import archive_public_keys
from tests.fixtures.documents import signing_caller
from tests.fixtures.vault import VaultJanitor

pytestmark = pytest.mark.integration


@pytest.fixture
def janitor_root(vault_keys: KeyBackend, make_vault_janitor: Callable[[KeyBackend], VaultJanitor]) -> None:
    make_vault_janitor(vault_keys).key(ROOT_KEY_NAME)  # the trust-list test creates it; removed after


def issue_one(database: Database, signer: OrgSigner, org: str) -> IssuedDocument:
    [doc] = issue_documents(
        database, signer, signing_caller(database, org),
        [NewDocument(doc_type="degree", title="Bachelor of Science", recipient="Salih Ahmed",
                     sha256=hashlib.sha256(org.encode()).hexdigest())],
        base_url="https://verify.example.gov",
    )
    return doc


def archived_rows(database: Database, key_name: str) -> list[tuple[int, str, str]]:
    with database.transaction() as s:
        rows = s.scalars(select(SigningPublicKey).where(SigningPublicKey.key_name == key_name)
                         .order_by(SigningPublicKey.version))
        return [(r.version, r.tenant_slug, r.public_key) for r in rows]


def test_tenancy_and_documents_archive_into_one_table_once(
    database: Database, signer: OrgSigner, vault_keys: KeyBackend, document_org: str,
    janitor_root: None,
) -> None:
    name = signing_key_name(document_org)
    with database.transaction() as s:  # what the tenant apply does after ensuring the key
        first = archive_public_keys(s, document_org, vault_keys.get_signing_key(name))
    assert (first.added, first.differing) == ((1,), ())

    doc = issue_one(database, signer, document_org)  # signing archives again: no duplicate, no error
    vault_keys.rotate_signing_key(name)
    signer.forget(document_org)
    rotated = issue_one(database, signer, document_org)
    with database.transaction() as s:  # the decommission archive stage, after signing archived v2
        again = archive_public_keys(s, document_org, vault_keys.get_signing_key(name))
    assert (again.added, again.differing) == ((), ())

    key = vault_keys.get_signing_key(name)
    assert archived_rows(database, name) == [
        (v, document_org, base64.b64encode(key.public_key(v)).decode()) for v in (1, 2)]
    cache = PublicKeyCache(database)
    assert [verify_token(database, cache, d.token).verdict for d in (doc, rotated)] == [Verdict.VALID] * 2
    root = ensure_root_key(vault_keys)
    trust = load_trust_list(build_trust_list(database, vault_keys), root_public_key=root)
    assert {kid: org for kid, (org, _) in trust.keys.items()} == {
        (name, 1): document_org, (name, 2): document_org}


def test_a_version_archived_by_another_process_meanwhile_is_no_error(
    database: Database, signer: OrgSigner, vault_keys: KeyBackend, document_org: str,
) -> None:
    name = signing_key_name(document_org)
    key = vault_keys.get_signing_key(name)
    raced: list[str] = []

    def archive_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Between this process's read of the archive and its insert, another one inserts the row.
        if statement.lstrip().upper().startswith("INSERT INTO SIGNING_PUBLIC_KEYS") and not raced:
            raced.append(statement)
            with database.engine.begin() as other:
                other.execute(insert(SigningPublicKey).values(
                    tenant_slug=document_org, key_name=name, version=1, algorithm="ed25519",
                    public_key=base64.b64encode(key.public_key(1)).decode(), archived_at=utcnow()))

    event.listen(database.engine, "before_cursor_execute", archive_first)
    try:
        doc = issue_one(database, signer, document_org)
    finally:
        event.remove(database.engine, "before_cursor_execute", archive_first)
    assert raced, "the insert was never reached"
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(SigningPublicKey)) == 1
    assert verify_token(database, PublicKeyCache(database), doc.token).verdict is Verdict.VALID

    raced.clear()
    with database.transaction() as s:
        s.execute(delete(SigningPublicKey))
    event.listen(database.engine, "before_cursor_execute", archive_first)
    try:
        with database.transaction() as s:  # the function itself: nothing added, nothing differing
            outcome = archive_public_keys(s, document_org, key)
    finally:
        event.remove(database.engine, "before_cursor_execute", archive_first)
    assert raced and (outcome.added, outcome.differing) == ((), ())
    assert len(archived_rows(database, name)) == 1


def test_a_recreated_key_keeps_the_archived_bytes_and_documents_refuse_to_sign(
    database: Database, signer: OrgSigner, vault_keys: KeyBackend, document_org: str,
) -> None:
    name = signing_key_name(document_org)
    old = issue_one(database, signer, document_org)
    before = archived_rows(database, name)
    vault_keys.delete_signing_key(name, force=True)
    vault_keys.ensure_signing_key(name)  # version 1 again, another key pair
    signer.forget(document_org)

    with database.transaction() as s:  # tenancy: reported, not raised, nothing overwritten
        outcome = archive_public_keys(s, document_org, vault_keys.get_signing_key(name))
    assert (outcome.added, outcome.differing) == ((), (1,))
    with pytest.raises(Conflict, match="recreated"):
        issue_one(database, signer, document_org)
    assert archived_rows(database, name) == before
    assert verify_token(database, PublicKeyCache(database), old.token).verdict is Verdict.VALID
