"""Verification: a token's verdict online (cached public keys + one registry read) or offline (trust list)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, bindparam, select

from controlplane.documents.claims import Claims
from controlplane.documents.cose import Sign1, decode_sign1, verify_signature
from controlplane.documents.errors import MalformedToken
from controlplane.documents.masking import mask_recipient
from controlplane.documents.models import Document
from controlplane.documents.tokens import decode_token
from controlplane.metrics import DOCUMENT_VERIFICATIONS_TOTAL, DOCUMENT_VERIFY_SECONDS
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tenancy.models import SigningPublicKey, Tenant

if TYPE_CHECKING:
    from controlplane.documents.trustlist import TrustList

# A miss (unknown kid) reloads the keys at most this often: random kids cannot hammer the database.
REFRESH_INTERVAL = 5.0


class Verdict(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    UNKNOWN_ISSUER = "unknown_issuer"
    FORGED = "forged"
    MALFORMED = "malformed"
    NOT_FOUND = "not_found"  # a genuine signature, but the serial is not in the registry


@dataclass(frozen=True)
class VerificationResult:
    """The verdict and what may be shown about the document: never the full recipient."""

    verdict: Verdict
    issuer: str | None = None  # only set once the signature is genuine
    issuer_name: str | None = None
    doc_type: str | None = None
    title: str | None = None  # online only
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    recipient_masked: str | None = None  # online only
    reason: str | None = None
    superseded_by: str | None = None
    key_id: str | None = None
    serial: str | None = None
    sha256: str | None = None  # hex digest of the document file, for the upload check

    def to_json(self) -> dict[str, Any]:
        # Every field is a scalar: a flat read, not asdict()'s recursive deep copy (hot on /verify).
        out = {name: getattr(self, name) for name in _RESULT_FIELDS}
        out["verdict"] = str(self.verdict)
        for name in ("issued_at", "expires_at"):
            value = out[name]
            out[name] = value.isoformat().replace("+00:00", "Z") if value else None
        return out


_RESULT_FIELDS = tuple(f.name for f in fields(VerificationResult))


class PublicKeyCache:
    """Archived public keys (decoded once) and issuer names, in process; never calls Vault."""

    def __init__(
        self, database: Database, *, refresh_interval: float = REFRESH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._keys: dict[tuple[str, int], tuple[str, bytes]] = {}
        self._names: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def get(self, key_name: str, version: int) -> tuple[str, bytes] | None:
        """(org, public key) of that key version; a miss reloads everything (at most every
        `refresh_interval` seconds) or else reads that one row, so a key archived a moment ago is
        found at once and an unknown kid costs one primary-key read, like a valid token."""
        found = self._keys.get((key_name, version))
        if found is not None:
            return found
        if self._may_refresh():
            self.refresh(only_if_due=True)
            return self._keys.get((key_name, version))
        return self._load_one(key_name, version)

    def issuer_name(self, org: str) -> str | None:
        return self._names.get(org)

    def refresh(self, *, only_if_due: bool = False) -> None:
        """Reload every archived key and issuer name (keeping already decoded keys)."""
        with self._lock:
            if only_if_due and not self._may_refresh():
                return  # another thread reloaded while this one waited for the lock
            self._loaded_at = self._clock()
            with self.database.engine.connect() as conn:
                rows = conn.execute(select(
                    SigningPublicKey.key_name, SigningPublicKey.version, SigningPublicKey.tenant_slug,
                    SigningPublicKey.public_key,
                )).all()
                names = {r.slug: r.name_en for r in conn.execute(select(Tenant.slug, Tenant.name_en))}
            keys = {}
            for key_name, version, org, encoded in rows:
                previous = self._keys.get((key_name, version))
                keys[(key_name, version)] = previous or (org, _decode_key(encoded))
            # Swapped whole: readers never see a half-built dict.
            self._keys, self._names = keys, names

    def _load_one(self, key_name: str, version: int) -> tuple[str, bytes] | None:
        row = _read_one(self.database, _ONE_KEY, {"key_name": key_name, "version": version})
        if row is None:
            return None
        org, encoded = row
        name_row = _read_one(self.database, _TENANT_NAME, {"slug": org})
        name = name_row[0] if name_row is not None else None
        found = (org, _decode_key(encoded))
        with self._lock:
            # Copy on write: readers keep iterating the dict they already hold.
            self._keys = {**self._keys, (key_name, version): found}
            if name is not None:
                self._names = {**self._names, org: name}
        return found

    def _may_refresh(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self.refresh_interval


def _decode_key(encoded: str) -> bytes:
    # The archive holds base64 text; decoded once per key version, never per verification.
    raw = base64.b64decode(encoded)
    Ed25519PublicKey.from_public_bytes(raw)  # refuses anything that is not an Ed25519 public key
    return raw


_ONE_KEY = select(SigningPublicKey.tenant_slug, SigningPublicKey.public_key).where(
    SigningPublicKey.key_name == bindparam("key_name"), SigningPublicKey.version == bindparam("version")
)
_TENANT_NAME = select(Tenant.name_en).where(Tenant.slug == bindparam("slug"))
# Strings and integers only: PointLookup returns the driver's values (no DateTime processing).
_REGISTRY_ROW = (
    select(
        Document.org, Document.doc_type, Document.title, Document.recipient, Document.sha256,
        Document.key_name, Document.key_version, Document.status, Document.status_reason,
        Document.superseded_by,
    ).where(Document.serial == bindparam("serial"))
)


class _RegistryRow(NamedTuple):
    org: str
    doc_type: str
    title: str
    recipient: str
    sha256: str
    key_name: str
    key_version: int
    status: str
    status_reason: str
    superseded_by: str | None


def verify_token(
    database: Database, cache: PublicKeyCache, token: str, *, now: datetime | None = None
) -> VerificationResult:
    """The verdict of a token: signature against cached keys, then one primary-key registry read."""
    started = time.perf_counter()
    result = _verify_online(database, cache, token, now or utcnow())
    _VERDICT_COUNTERS[result.verdict].inc()
    DOCUMENT_VERIFY_SECONDS.observe(time.perf_counter() - started)
    return result


# One child per verdict, resolved once: labels() takes a lock and walks a dict on every call.
_VERDICT_COUNTERS = {verdict: DOCUMENT_VERIFICATIONS_TOTAL.labels(str(verdict)) for verdict in Verdict}


def _verify_online(
    database: Database, cache: PublicKeyCache, token: str, now: datetime
) -> VerificationResult:
    parsed = _parse(token)
    if isinstance(parsed, VerificationResult):
        return parsed
    sign1, claims = parsed
    found = cache.get(sign1.key_name, sign1.key_version)
    checked = _check_signature(sign1, claims, found)
    if checked is not None:
        return checked
    found_row = _read_one(database, _REGISTRY_ROW, {"serial": claims.serial.hex()})
    issuer_name = cache.issuer_name(claims.issuer)
    if found_row is None:
        return _genuine(sign1, claims, issuer_name, verdict=Verdict.NOT_FOUND,
                        reason="the signature is genuine but the registry has no such document")
    row = _RegistryRow._make(found_row)
    if (row.org, row.sha256, row.key_name, row.key_version, row.doc_type) != (
        claims.issuer, claims.sha256.hex(), sign1.key_name, sign1.key_version, claims.doc_type
    ):
        return VerificationResult(Verdict.FORGED, reason="the token does not match the registry")
    return _genuine(sign1, claims, issuer_name, title=row.title,
                    recipient_masked=mask_recipient(row.recipient),
                    **_status(claims, row.status, row.status_reason, row.superseded_by, now))


def _read_one(
    database: Database, statement: Select[*tuple[Any, ...]], params: dict[str, Any]
) -> tuple[Any, ...] | None:
    # A prepared point read on a bare driver connection (storage.lookup): this is most of the
    # database cost of every public verification, so it skips the ORM and Core's per-call work.
    return database.point_lookup(statement).first(params)


def verify_offline(
    token: str, trust_list: TrustList, *, now: datetime | None = None
) -> VerificationResult:
    """The verdict against a loaded trust list: no database, no network. Stale lists are refused."""
    now = now or utcnow()
    trust_list.check_fresh(now)
    parsed = _parse(token)
    if isinstance(parsed, VerificationResult):
        return parsed
    sign1, claims = parsed
    found = trust_list.keys.get((sign1.key_name, sign1.key_version))
    checked = _check_signature(sign1, claims, found)
    if checked is not None:
        return checked
    issuer_name = trust_list.names.get(claims.issuer)
    entry = trust_list.revoked.get(claims.serial.hex())
    if entry is not None and entry.get("issuer") == claims.issuer:
        return _genuine(sign1, claims, issuer_name, **_status(
            claims, str(entry["status"]), str(entry.get("reason") or ""), entry.get("superseded_by"), now))
    return _genuine(sign1, claims, issuer_name, **_status(claims, "valid", "", None, now))


def check_file_digest(result_or_serial: VerificationResult | Document | str, file_bytes: bytes) -> bool:
    """Whether `file_bytes` is the file the document was issued for (its SHA-256 is in the claims).

    Takes a VerificationResult, a Document row, or the expected hex digest itself.
    """
    expected = (
        result_or_serial if isinstance(result_or_serial, str) else result_or_serial.sha256
    )
    if not expected:
        return False
    return hmac.compare_digest(hashlib.sha256(file_bytes).hexdigest(), expected.lower())


def _parse(token: str) -> tuple[Sign1, Claims] | VerificationResult:
    try:
        sign1 = decode_sign1(decode_token(token))
        return sign1, Claims.from_cbor(sign1.payload)
    except MalformedToken as exc:
        return VerificationResult(Verdict.MALFORMED, reason=exc.message)


def _check_signature(
    sign1: Sign1, claims: Claims, found: tuple[str, bytes | Ed25519PublicKey] | None
) -> VerificationResult | None:
    if found is None:
        return VerificationResult(
            Verdict.UNKNOWN_ISSUER, reason="the key that signed this token is not a known issuer's"
        )
    org, public_key = found
    if not verify_signature(sign1, public_key):
        return VerificationResult(Verdict.FORGED, reason="the signature does not match the content")
    if org != claims.issuer:
        # A genuine signature by one organisation claiming to be another.
        return VerificationResult(
            Verdict.FORGED, reason="the token names another issuer than the one that signed it"
        )
    return None


def _genuine(sign1: Sign1, claims: Claims, issuer_name: str | None, **more: Any) -> VerificationResult:
    """A result for a genuine signature: what the claims say, plus `more` (verdict, registry facts).
    Built in one go: dataclasses.replace() per step cost more than the rest of this function."""
    return VerificationResult(
        verdict=more.pop("verdict", Verdict.VALID), issuer=claims.issuer,
        issuer_name=issuer_name or claims.issuer, doc_type=claims.doc_type,
        issued_at=datetime.fromtimestamp(claims.issued_at, UTC),
        expires_at=(datetime.fromtimestamp(claims.expires_at, UTC)
                    if claims.expires_at is not None else None),
        key_id=sign1.kid, serial=claims.serial.hex(), sha256=claims.sha256.hex(), **more,
    )


def _status(
    claims: Claims, status: str, reason: str, superseded_by: str | None, now: datetime,
) -> dict[str, Any]:
    """The verdict fields for a registry (or trust list) status at `now`."""
    # Revocation and replacement say more than expiry, so they win over it.
    if status == "revoked":
        return {"verdict": Verdict.REVOKED, "reason": reason}
    if status == "superseded":
        return {"verdict": Verdict.SUPERSEDED, "reason": reason, "superseded_by": superseded_by}
    if claims.expires_at is not None and as_utc(now).timestamp() >= claims.expires_at:
        return {"verdict": Verdict.EXPIRED, "reason": "the document's validity has ended"}
    return {}
