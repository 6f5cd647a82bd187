"""Issuance: validate new documents, sign them in one batched Vault call for a live credential of the
issuing organisation, register them and log the signatures in one transaction."""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from controlplane.audit import AuditAction, record_event
from controlplane.backends.keys import TENANT_SLUG, Signature, SigningKey
from controlplane.documents.callers import SigningCaller, check_caller
from controlplane.documents.claims import DOC_TYPE_PATTERN, Claims
from controlplane.documents.cose import encode_sign1, protected_header, sig_structure
from controlplane.documents.masking import mask_recipient
from controlplane.documents.models import Document, DocumentSignature
from controlplane.documents.signature_log import ROOT_FIELD, Entry, batch_root, signed_sha256
from controlplane.documents.signer import OrgSigner
from controlplane.documents.tokens import encode_token, verification_url
from controlplane.errors import Conflict, InvalidInput, PermanentError
from controlplane.metrics import DOCUMENT_SIGN_FAILURES_TOTAL, DOCUMENT_SIGN_SECONDS, DOCUMENTS_SIGNED_TOTAL
from controlplane.storage import Database, as_utc, utcnow
from controlplane.storage.bulk import insert_rows
from controlplane.tenancy.registry import archive_public_keys

MAX_BATCH = 1000
MAX_TEXT = 300
MAX_IMPORT_REF = 128
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("doc_type", "title", "recipient", "sha256", "expires_at", "import_ref")


@dataclass(frozen=True)
class NewDocument:
    """One document to issue, as the issuing organisation describes it."""

    doc_type: str
    title: str
    recipient: str
    sha256: str  # 64 lowercase hex digits: SHA-256 of the document file
    expires_at: datetime | None = None
    import_ref: str | None = None

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> NewDocument:
        """Validate an API body or a CSV row; InvalidInput names every bad field."""
        if not isinstance(obj, Mapping):
            raise InvalidInput("a document must be an object with doc_type, title, recipient and sha256")
        problems = [f"{key}: unknown field" for key in obj if key not in _FIELDS]
        doc_type = _text(obj, "doc_type", problems, max_len=64)
        if doc_type and not DOC_TYPE_PATTERN.fullmatch(doc_type):
            problems.append(
                "doc_type: use lowercase letters, digits, '_', '.', '-' (e.g. 'birth-certificate')"
            )
        title = _text(obj, "title", problems, max_len=MAX_TEXT)
        recipient = _text(obj, "recipient", problems, max_len=MAX_TEXT)
        digest = _text(obj, "sha256", problems, max_len=64).lower()
        if digest and not _SHA256_HEX.fullmatch(digest):
            problems.append("sha256: must be the 64 hexadecimal digits of the file's SHA-256")
        expires_at = parse_time(obj.get("expires_at"), "expires_at", problems)
        import_ref = obj.get("import_ref")
        if import_ref is not None and (
            not isinstance(import_ref, str) or not 0 < len(import_ref.strip()) <= MAX_IMPORT_REF
        ):
            problems.append(f"import_ref: must be text of 1-{MAX_IMPORT_REF} characters")
            import_ref = None
        if problems:
            raise InvalidInput("; ".join(problems))
        return cls(doc_type, title, recipient, digest, expires_at,
                   import_ref.strip() if isinstance(import_ref, str) else None)


@dataclass(frozen=True)
class IssuedDocument:
    """What the issuer gets back: never the full recipient."""

    serial: str
    token: str
    url: str
    doc_type: str
    title: str
    recipient_masked: str
    issued_at: datetime
    expires_at: datetime | None
    key_name: str
    key_version: int


def issue_documents(
    database: Database,
    signer: OrgSigner,
    caller: SigningCaller,
    items: Sequence[NewDocument],
    *,
    base_url: str,
    now: datetime | None = None,
) -> list[IssuedDocument]:
    """Sign and register 1..MAX_BATCH documents for the caller's organisation; all or nothing."""
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput(f"issue between 1 and {MAX_BATCH} documents at a time, not {len(items)}")
    issued_at = int(as_utc(now or utcnow()).timestamp())  # naive means UTC, as everywhere
    return sign_and_register(
        database, signer, caller, [(item, issued_at) for item in items],
        base_url=base_url, action=AuditAction.DOCUMENT_ISSUE,
    )


def sign_and_register(
    database: Database,
    signer: OrgSigner,
    caller: SigningCaller,
    entries: Sequence[tuple[NewDocument, int]],
    *,
    base_url: str,
    action: AuditAction,
) -> list[IssuedDocument]:
    """Sign every (document, issued_at epoch seconds) with one batched call, then write them all.

    Vault is called before the transaction opens; if signing fails nothing is written. The
    signatures are logged (an audit event committing to the batch's entries, see
    documents.signature_log) in the transaction that registers them: if that write fails, no token
    leaves this function, and the caller's credential is checked live again in it.
    """
    org = caller.org
    if not TENANT_SLUG.fullmatch(org):
        raise InvalidInput(f"organisation {org!r} is not a tenant slug")
    if not entries:
        return []
    for index, (item, issued_at) in enumerate(entries):
        _check_item(index, item, issued_at)
    key = signer.public_keys(caller)  # checks the caller first: a refused one costs no Vault call
    version = key.latest_version
    protected = protected_header(key.name, version)
    prepared = []
    for item, issued_at in entries:
        serial = secrets.token_bytes(16)
        claims = Claims(
            issuer=org, doc_type=item.doc_type, serial=serial, sha256=bytes.fromhex(item.sha256),
            issued_at=issued_at,
            expires_at=int(item.expires_at.timestamp()) if item.expires_at is not None else None,
        )
        payload = claims.to_cbor()
        prepared.append((item, claims, payload, sig_structure(protected, payload)))

    started = time.perf_counter()
    try:
        _, signatures = signer.sign(caller, [p[3] for p in prepared], key_version=version)
    except Exception:
        DOCUMENT_SIGN_FAILURES_TOTAL.inc()
        raise
    DOCUMENT_SIGN_SECONDS.observe(time.perf_counter() - started)
    _check_signatures(key, version, prepared[0][3], signatures, len(prepared))

    rows: list[dict[str, Any]] = []
    issued: list[IssuedDocument] = []
    logged = [Entry(p[1].serial.hex(), signed_sha256(p[3]), key.name, version) for p in prepared]
    for (item, claims, payload, _), signature in zip(prepared, signatures, strict=True):
        token = encode_token(encode_sign1(protected, payload, signature.signature))
        issued_dt = datetime.fromtimestamp(claims.issued_at, UTC)
        # The registry holds exactly what was signed (whole seconds).
        expires_dt = (datetime.fromtimestamp(claims.expires_at, UTC)
                      if claims.expires_at is not None else None)
        serial_hex = claims.serial.hex()
        rows.append({
            "serial": serial_hex, "org": org, "doc_type": item.doc_type, "title": item.title,
            "recipient": item.recipient, "sha256": item.sha256, "issued_at": issued_dt,
            "expires_at": expires_dt, "key_name": key.name, "key_version": version,
            "token": token, "status": "valid", "status_reason": "", "status_changed_at": None,
            "superseded_by": None, "import_ref": item.import_ref,
        })
        issued.append(IssuedDocument(
            serial=serial_hex, token=token, url=verification_url(base_url, token),
            doc_type=item.doc_type, title=item.title, recipient_masked=mask_recipient(item.recipient),
            issued_at=issued_dt, expires_at=expires_dt, key_name=key.name, key_version=version,
        ))

    with database.transaction() as session:
        checked = check_caller(session, caller, org)  # still live now that the tokens exist
        _archive_signing_key(session, org, key)
        insert_rows(session, Document, rows)
        event = record_event(
            session, action=action, initiator=checked.signed_by, target=f"documents:{org}", org=org,
            detail={"count": len(rows), "kid": f"{key.name}#{version}",
                    "serials": [r["serial"] for r in rows], "person": checked.person,
                    ROOT_FIELD: batch_root(logged).hex()},
        )
        signed_at = event.occurred_at
        insert_rows(session, DocumentSignature, [
            {"serial": e.serial, "org": org, "event_id": event.id, "batch_index": n,
             "batch_size": len(logged), "signed_sha256": e.signed_sha256, "key_name": e.key_name,
             "key_version": e.key_version, "signed_by": checked.signed_by, "person": checked.person,
             "signed_at": signed_at}
            for n, e in enumerate(logged)
        ])
    DOCUMENTS_SIGNED_TOTAL.inc(len(rows))
    return issued


def _archive_signing_key(session: Session, org: str, key: SigningKey) -> None:
    """Archive every listed public key version (tenancy's archive: insert-if-absent).

    A version already archived with other bytes means the key was deleted and made again under
    the same name: documents signed now could never verify, so nothing is issued.
    """
    archived = archive_public_keys(session, org, key)
    if archived.differing:
        raise Conflict(
            f"signing key {key.name} v{archived.differing[0]} in Vault is not the one archived for it: "
            "the key was recreated under the same name",
            hint="give the organisation a new key name or restore its key; nothing was issued",
        )


def parse_time(value: object, field: str, problems: list[str]) -> datetime | None:
    """An aware UTC datetime from None, '', a datetime or ISO 8601 text (naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{field}: {value!r} is not an ISO 8601 date or time")
            return None
    if not isinstance(value, datetime):
        problems.append(f"{field}: must be an ISO 8601 date or time")
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not datetime(1970, 1, 2, tzinfo=UTC) <= value <= datetime(9999, 1, 1, tzinfo=UTC):
        problems.append(f"{field}: out of range")
        return None
    return value.astimezone(UTC).replace(microsecond=0)


def _text(obj: Mapping[str, Any], field: str, problems: list[str], *, max_len: int) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{field}: required")
        return ""
    value = " ".join(value.split())  # one space between words; no tabs or line breaks
    if len(value) > max_len:
        problems.append(f"{field}: at most {max_len} characters")
    elif any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") for c in value if c != "\u200c"):
        problems.append(f"{field}: contains control or invisible formatting characters")
    return value


def _check_item(index: int, item: NewDocument, issued_at: int) -> None:
    # NewDocument.parse checked all this already; a NewDocument built directly may not have been.
    where = f"document {index + 1}"
    if not DOC_TYPE_PATTERN.fullmatch(item.doc_type) or not _SHA256_HEX.fullmatch(item.sha256):
        raise InvalidInput(f"{where}: doc_type or sha256 is not in the documented form")
    if not item.title or not item.recipient or len(item.title) > MAX_TEXT or len(item.recipient) > MAX_TEXT:
        raise InvalidInput(f"{where}: title and recipient must be 1-{MAX_TEXT} characters")
    if item.expires_at is not None:
        if item.expires_at.tzinfo is None:
            raise InvalidInput(f"{where}: expires_at must carry a time zone")
        if int(item.expires_at.timestamp()) <= issued_at:
            raise InvalidInput(f"{where}: expires_at must be after the issue time")


def _check_signatures(
    key: SigningKey, version: int, first_message: bytes, signatures: Sequence[Signature], count: int
) -> None:
    # Cheap insurance against a misconfigured backend: right count, right version, and the first
    # signature verifies with the public key we are about to archive and publish.
    if len(signatures) != count or any(s.key_version != version for s in signatures):
        raise PermanentError(
            f"signing returned {len(signatures)} signatures (version(s) "
            f"{sorted({s.key_version for s in signatures})}) for {count} messages with version {version}",
            backend="vault",
        )
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key(version)).verify(
            signatures[0].signature, first_message
        )
    except (InvalidSignature, KeyError, ValueError):
        raise PermanentError(
            f"the signature from key {key.name} v{version} does not verify with its public key",
            backend="vault",
        ) from None
