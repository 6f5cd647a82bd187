"""Documents on a real OpenBao and a real database: issue, verify online and offline, revoke,
supersede, expire, rotate; Vault's own policy keeps an org to its key; failures write nothing."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from controlplane.audit.models import AuditEvent
from controlplane.backends.keys import KeyBackend, Signature, signing_key_name
from controlplane.documents.claims import Claims
from controlplane.documents.cose import encode_sign1, protected_header, sig_structure
from controlplane.documents.issuance import IssuedDocument, NewDocument, issue_documents
from controlplane.documents.models import Document
from controlplane.documents.revocation import revoke_document, supersede_document
from controlplane.documents.signer import OrgSigner
from controlplane.documents.tokens import encode_token
from controlplane.documents.trustlist import (
    ROOT_KEY_NAME,
    TrustListInvalid,
    build_trust_list,
    ensure_root_key,
    load_trust_list,
)
from controlplane.documents.verification import PublicKeyCache, Verdict, verify_offline, verify_token
from controlplane.errors import Conflict, InvalidInput, NotFound, TemporaryError
from controlplane.storage import Database, utcnow
from controlplane.tenancy.models import SigningPublicKey, Tenant
from tests.fixtures.documents import prepare_signing_org, signing_caller
from tests.fixtures.vault import VaultJanitor

pytestmark = pytest.mark.integration

BASE_URL = "https://verify.example.gov"


def new_documents(n: int, **changes: Any) -> list[NewDocument]:
    return [
        NewDocument(doc_type="birth-certificate", title=f"Birth certificate {i}",
                    recipient="Ahmed Karim Salih", sha256=hashlib.sha256(b"file %d" % i).hexdigest(),
                    **changes)
        for i in range(n)
    ]


class FailingSignKeys:
    """Fault injection: the control plane's KeyBackend, except that org identities cannot sign."""

    def __init__(self, inner: KeyBackend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def login_approle(self, role_id: str, secret_id: str) -> KeyBackend:
        return FailingSignIdentity(self.inner.login_approle(role_id, secret_id))  # type: ignore[return-value]


class FailingSignIdentity(FailingSignKeys):
    def sign(
        self, name: str, messages: Sequence[bytes], *, key_version: int | None = None
    ) -> list[Signature]:
        raise TemporaryError("injected: vault went away mid-batch", backend="vault")


@pytest.fixture
def janitor(vault_keys: KeyBackend, make_vault_janitor: Callable[[KeyBackend], VaultJanitor]) -> VaultJanitor:
    janitor = make_vault_janitor(vault_keys)
    janitor.key(ROOT_KEY_NAME)  # trust-list tests create it; each test starts without one
    return janitor


@pytest.fixture
def org(vault_keys: KeyBackend, janitor: VaultJanitor, database: Database) -> str:
    slug = prepare_signing_org(vault_keys, janitor)
    with database.transaction() as session:
        session.add(Tenant(slug=slug, kind="ministry", name_en="Ministry of Health", spec={},
                           spec_digest="0" * 64))
    return slug


@pytest.fixture
def cache(database: Database) -> PublicKeyCache:
    return PublicKeyCache(database, refresh_interval=0)


def issue(
    database: Database, signer: OrgSigner, org: str, n: int = 1, **changes: Any
) -> list[IssuedDocument]:
    return issue_documents(database, signer, signing_caller(database, org), new_documents(n, **changes),
                           base_url=BASE_URL)


def count(database: Database, model: Any) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_batch_of_1000_is_signed_once_registered_and_verifies(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache
) -> None:
    started = time.perf_counter()
    issued = issue(database, signer, org, 1000)
    elapsed = time.perf_counter() - started

    assert len(issued) == 1000 and len({d.serial for d in issued}) == 1000
    first = issued[0]
    assert first.url == "HTTPS://VERIFY.EXAMPLE.GOV/V/" + first.token
    assert first.recipient_masked == "A**** K**** S****"
    assert (first.key_name, first.key_version) == (org, 1)
    assert count(database, Document) == 1000
    public_key = signer.public_keys(signing_caller(database, org)).public_key(1)
    with database.transaction() as session:
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "document:issue")).all()
        assert audit.detail["count"] == 1000 and audit.org == org
        assert sorted(audit.detail["serials"]) == sorted(d.serial for d in issued)
        [archived] = session.scalars(select(SigningPublicKey)).all()
        assert (archived.key_name, archived.version, archived.tenant_slug, archived.algorithm) == (
            org, 1, org, "ed25519")
        assert base64.b64decode(archived.public_key) == public_key
    for doc in issued:
        result = verify_token(database, cache, doc.token)
        assert result.verdict is Verdict.VALID, (doc.serial, result)
    result = verify_token(database, cache, first.token.lower())
    assert (result.issuer, result.issuer_name, result.title, result.recipient_masked, result.serial) == (
        org, "Ministry of Health", "Birth certificate 0", "A**** K**** S****", first.serial)
    assert "Ahmed" not in str(result.to_json())
    print(f"\nissued 1000 documents in {elapsed:.2f}s ({1000 / elapsed:.0f}/s)")


def test_verification_is_one_primary_key_select(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache
) -> None:
    [doc] = issue(database, signer, org)
    verify_token(database, cache, doc.token)  # warm the key cache
    statements: list[str] = []  # through the engine (ORM and Core)
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    point_reads: list[str] = []  # through storage.lookup's driver connections
    lookups = database.point_lookups
    for lookup in lookups:
        lookup.before_execute.append(lambda _conn, sql=lookup.sql: point_reads.append(sql))
    event.listen(database.engine, "before_cursor_execute", listener)
    try:
        assert verify_token(database, cache, doc.token).verdict is Verdict.VALID
    finally:
        event.remove(database.engine, "before_cursor_execute", listener)
        for lookup in lookups:
            lookup.before_execute.clear()
    assert statements == []
    [sql] = point_reads
    assert "FROM documents" in sql and "documents.serial =" in sql


def test_a_key_archived_after_the_cache_loaded_is_found_at_once(
    database: Database, signer: OrgSigner, org: str, vault_keys: KeyBackend, janitor: VaultJanitor
) -> None:
    cache = PublicKeyCache(database, refresh_interval=3600)  # no full reload during this test
    [first] = issue(database, signer, org)
    assert verify_token(database, cache, first.token).verdict is Verdict.VALID
    newcomer = prepare_signing_org(vault_keys, janitor)
    [doc] = issue(database, signer, newcomer)
    result = verify_token(database, cache, doc.token)
    assert (result.verdict, result.issuer) == (Verdict.VALID, newcomer)
    assert verify_token(database, cache, forge(signer, org, issuer=org, kid_org="nobody")).verdict \
        is Verdict.UNKNOWN_ISSUER


def test_revoke_and_supersede_change_the_verdict(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache, vault_keys: KeyBackend,
    janitor: VaultJanitor,
) -> None:
    old, replacement, other = issue(database, signer, org, 3)

    revoke_document(database, org, other.serial, reason="issued in error", initiator="user:admin")
    result = verify_token(database, cache, other.token)
    assert (result.verdict, result.reason) == (Verdict.REVOKED, "issued in error")
    with pytest.raises(Conflict):
        revoke_document(database, org, other.serial, reason="again", initiator="user:admin")

    supersede_document(database, org, old.serial, replacement_serial=replacement.serial,
                       reason="name corrected", initiator="user:admin")
    result = verify_token(database, cache, old.token)
    assert (result.verdict, result.superseded_by, result.reason) == (
        Verdict.SUPERSEDED, replacement.serial, "name corrected")
    assert verify_token(database, cache, replacement.token).verdict is Verdict.VALID
    with pytest.raises(Conflict):  # a revoked document cannot replace anything
        supersede_document(database, org, replacement.serial, replacement_serial=other.serial,
                           reason="x", initiator="user:admin")

    # Another organisation cannot touch them, and cannot tell that they exist.
    stranger = prepare_signing_org(vault_keys, janitor)
    for serial in (replacement.serial, "f" * 32):
        with pytest.raises(NotFound) as caught:
            revoke_document(database, stranger, serial, reason="mine now", initiator="user:evil")
        assert caught.value.message == f"no document {serial} of {stranger}"
    with pytest.raises(InvalidInput, match="reason"):
        revoke_document(database, org, replacement.serial, reason="  ", initiator="user:admin")
    with database.transaction() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("document:%"))
                                  .order_by(AuditEvent.id)).all()
    assert actions == ["document:issue", "document:revoke", "document:supersede"]


def test_expired_documents_are_expired(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache
) -> None:
    expires = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    [doc] = issue(database, signer, org, expires_at=expires)
    assert verify_token(database, cache, doc.token).verdict is Verdict.VALID
    later = verify_token(database, cache, doc.token, now=expires + timedelta(seconds=1))
    assert later.verdict is Verdict.EXPIRED and later.expires_at == expires
    with pytest.raises(InvalidInput, match="expires_at must be after"):
        issue(database, signer, org, expires_at=utcnow() - timedelta(days=1))


def forge(signer: OrgSigner, signing_org: str, *, issuer: str, kid_org: str | None = None) -> str:
    """A token whose claims say `issuer`, signed with `signing_org`'s real key through its identity."""
    caller = signing_caller(signer.database, signing_org)
    key = signer.public_keys(caller)
    protected = protected_header(kid_org or signing_org, key.latest_version)
    payload = Claims(issuer=issuer, doc_type="birth-certificate", serial=os.urandom(16),
                     sha256=os.urandom(32), issued_at=int(time.time())).to_cbor()
    _, [signature] = signer.sign(caller, [sig_structure(protected, payload)])
    return encode_token(encode_sign1(protected, payload, signature.signature))


def test_tokens_signed_with_another_orgs_key_are_forged_or_unknown(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache, vault_keys: KeyBackend,
    janitor: VaultJanitor,
) -> None:
    other = prepare_signing_org(vault_keys, janitor)
    issue(database, signer, org)
    issue(database, signer, other)  # archives the other org's key too

    assert verify_token(database, cache, forge(signer, other, issuer=org)).verdict is Verdict.FORGED
    assert verify_token(database, cache, forge(signer, other, issuer=org, kid_org=org)).verdict \
        is Verdict.FORGED
    # A key nobody archived (an org that never issued through us).
    unknown = prepare_signing_org(vault_keys, janitor)
    assert verify_token(database, cache, forge(signer, unknown, issuer=unknown)).verdict \
        is Verdict.UNKNOWN_ISSUER
    # Genuine, but never registered.
    assert verify_token(database, cache, forge(signer, org, issuer=org)).verdict is Verdict.NOT_FOUND


def test_a_signing_failure_writes_nothing(database: Database, vault_keys: KeyBackend, org: str) -> None:
    failing = OrgSigner(FailingSignKeys(vault_keys), database)  # type: ignore[arg-type]
    with pytest.raises(TemporaryError, match="injected"):
        issue(database, failing, org, 10)
    with database.transaction() as session:
        logged = session.scalar(select(func.count()).where(AuditEvent.action.like("document:%")))
    assert (count(database, Document), count(database, SigningPublicKey), logged) == (0, 0, 0)


def test_trust_list_is_signed_fresh_and_gives_the_online_verdicts(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache, vault_keys: KeyBackend,
) -> None:
    expires = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    valid, revoked, superseded, expiring = issue(database, signer, org, 4, expires_at=expires)
    revoke_document(database, org, revoked.serial, reason="forgery reported", initiator="user:admin")
    supersede_document(database, org, superseded.serial, replacement_serial=valid.serial,
                       reason="reissued", initiator="user:admin")
    root = ensure_root_key(vault_keys)

    signed = build_trust_list(database, vault_keys)
    assert signed["kid"] == f"{ROOT_KEY_NAME}#1"
    assert signed["payload"]["issuers"][org]["name"] == "Ministry of Health"
    assert [k["kid"] for k in signed["payload"]["issuers"][org]["keys"]] == [f"{org}#1"]
    assert {r["serial"] for r in signed["payload"]["revoked"]} == {revoked.serial, superseded.serial}
    import json

    trust = load_trust_list(json.dumps(signed).encode(), root_public_key=root)
    for doc in (valid, revoked, superseded, expiring):
        for now in (None, expires + timedelta(seconds=1)):
            online = verify_token(database, cache, doc.token, now=now)
            offline = verify_offline(doc.token, trust, now=now) if now is None else None
            if offline is not None:
                assert (offline.verdict, offline.reason, offline.superseded_by) == (
                    online.verdict, online.reason, online.superseded_by), doc.serial
    assert verify_offline(revoked.token, trust).verdict is Verdict.REVOKED
    assert verify_offline(superseded.token, trust).superseded_by == valid.serial

    # Tampering: un-revoking a document, or swapping a key, breaks the root signature.
    tampered = json.loads(json.dumps(signed))
    tampered["payload"]["revoked"] = []
    with pytest.raises(TrustListInvalid, match="signature does not verify"):
        load_trust_list(tampered, root_public_key=root)
    with pytest.raises(TrustListInvalid, match="signature does not verify"):
        load_trust_list(signed, root_public_key=os.urandom(32))
    with pytest.raises(TrustListInvalid, match="not JSON"):
        load_trust_list(b"{not json", root_public_key=root)

    # Stale: past next_update it is refused, on loading and on verifying.
    after = datetime.fromisoformat(signed["payload"]["next_update"].replace("Z", "+00:00")) + timedelta(1)
    with pytest.raises(TrustListInvalid, match="stale") as caught:
        load_trust_list(signed, root_public_key=root, now=after)
    assert caught.value.hint and "trust-list.json" in caught.value.hint
    with pytest.raises(TrustListInvalid, match="stale"):
        verify_offline(valid.token, trust, now=after)


def test_old_documents_verify_after_rotation_and_even_after_the_key_is_gone(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache, vault_keys: KeyBackend,
) -> None:
    [before] = issue(database, signer, org)
    vault_keys.rotate_signing_key(signing_key_name(org))
    signer.forget(org)
    [after] = issue(database, signer, org)
    assert (before.key_version, after.key_version) == (1, 2)

    # Vault no longer has the key at all: the archive made at signing time is what verifies.
    vault_keys.delete_signing_key(signing_key_name(org), force=True)
    fresh_cache = PublicKeyCache(database)
    for doc in (before, after):
        assert verify_token(database, fresh_cache, doc.token).verdict is Verdict.VALID
    root = ensure_root_key(vault_keys)
    trust = load_trust_list(build_trust_list(database, vault_keys), root_public_key=root)
    assert set(trust.keys) == {(org, 1), (org, 2)}
    for doc in (before, after):
        assert verify_offline(doc.token, trust).verdict is Verdict.VALID


def test_a_key_recreated_under_the_same_name_issues_nothing(
    database: Database, signer: OrgSigner, org: str, vault_keys: KeyBackend, cache: PublicKeyCache
) -> None:
    [old] = issue(database, signer, org)
    vault_keys.delete_signing_key(signing_key_name(org), force=True)
    vault_keys.ensure_signing_key(signing_key_name(org))  # version 1 again, other key pair
    signer.forget(org)
    with pytest.raises(Conflict, match="recreated"):
        issue(database, signer, org)
    assert count(database, Document) == 1
    assert verify_token(database, cache, old.token).verdict is Verdict.VALID


def test_single_character_changes_are_never_valid_online(
    database: Database, signer: OrgSigner, org: str, cache: PublicKeyCache
) -> None:
    [doc] = issue(database, signer, org)
    token = doc.token
    for i in range(len(token)):
        for char in ("A", "Q", "7"):
            if char != token[i]:
                changed = token[:i] + char + token[i + 1:]
                assert verify_token(database, cache, changed).verdict is not Verdict.VALID, (i, char)
    for bad in (token[:-1], token[:10], token + "AAAAAAAA", "A" * 5000, "", "<script>"):
        assert verify_token(database, cache, bad).verdict is Verdict.MALFORMED


def test_issuance_refuses_bad_batches(database: Database, signer: OrgSigner, org: str) -> None:
    with pytest.raises(InvalidInput, match="between 1 and 1000"):
        issue_documents(database, signer, signing_caller(database, org), [], base_url=BASE_URL)
    with pytest.raises(InvalidInput, match="between 1 and 1000"):
        issue(database, signer, org, 1001)
    assert count(database, Document) == 0
