"""Trust list: every issuer's public keys (all versions) and the revocations, signed by the root key."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from controlplane.backends.keys import KeyBackend
from controlplane.documents.errors import TrustListInvalid
from controlplane.documents.models import Document
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tenancy.models import SigningPublicKey, Tenant

# The underscore keeps it out of the tenant slug namespace, so no tenant can ever own this key.
ROOT_KEY_NAME = "cp_trust_root"
FORMAT_VERSION = 1
# A list issued this far in the future means a wrong clock somewhere: refuse rather than guess.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class TrustList:
    """A loaded, verified trust list: what offline verification needs and nothing else."""

    issued_at: datetime
    next_update: datetime
    keys: dict[tuple[str, int], tuple[str, Ed25519PublicKey]]  # (key name, version) -> (org, key)
    names: dict[str, str]  # org -> display name
    revoked: dict[str, dict[str, Any]] = field(default_factory=dict)  # serial -> entry

    def check_fresh(self, now: datetime) -> None:
        """Raise TrustListInvalid if `now` is past next_update (or before issued_at, beyond skew)."""
        now = as_utc(now)
        if now > self.next_update:
            raise TrustListInvalid(
                f"the trust list is stale: it was valid until {_iso(self.next_update)} and it is now "
                f"{_iso(now)}; revocations since then would be missed",
                hint="download a fresh one from /trust-list.json",
            )
        if now + CLOCK_SKEW < self.issued_at:
            raise TrustListInvalid(
                f"the trust list was issued at {_iso(self.issued_at)}, after now ({_iso(now)}): "
                "is a clock wrong?",
                hint="check this computer's clock",
            )


def ensure_root_key(keys: KeyBackend) -> bytes:
    """Create the data center's root key if missing; return the raw public key of its latest version."""
    key = keys.ensure_signing_key(ROOT_KEY_NAME)
    return key.public_key(key.latest_version)


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The signed bytes: sorted keys, no whitespace, UTF-8 (not ASCII escapes)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_trust_list(
    database: Database,
    keys: KeyBackend,
    *,
    now: datetime | None = None,
    validity: timedelta = timedelta(hours=24),
) -> dict[str, Any]:
    """Read keys and revocations (one short read), then sign with the root key (outside any transaction)."""
    now = (now or utcnow()).replace(microsecond=0)
    with database.engine.connect() as conn:
        key_rows = conn.execute(
            select(SigningPublicKey).order_by(SigningPublicKey.key_name, SigningPublicKey.version)
        ).all()
        names = {r.slug: r.name_en for r in conn.execute(select(Tenant.slug, Tenant.name_en))}
        revoked_rows = conn.execute(
            select(Document.org, Document.serial, Document.status, Document.status_reason,
                   Document.status_changed_at, Document.superseded_by)
            .where(Document.status != "valid")
            .order_by(Document.serial)
        ).all()
    issuers: dict[str, dict[str, Any]] = {}
    for row in key_rows:
        org = row.tenant_slug
        entry = issuers.setdefault(org, {"name": names.get(org, org), "keys": []})
        entry["keys"].append({
            "kid": f"{row.key_name}#{row.version}",
            "public_key": _b64url(base64.b64decode(row.public_key)),
            "archived_at": _iso(as_utc(row.archived_at)),
        })
    revoked = [
        {"issuer": r.org, "serial": r.serial, "status": r.status, "reason": r.status_reason,
         "at": _iso(as_utc(r.status_changed_at)) if r.status_changed_at else None,
         "superseded_by": r.superseded_by}
        for r in revoked_rows
    ]
    payload = {
        "version": FORMAT_VERSION,
        "issued_at": _iso(now),
        "next_update": _iso(now + validity),
        "issuers": issuers,
        "revoked": revoked,
    }
    root = keys.ensure_signing_key(ROOT_KEY_NAME)
    [signature] = keys.sign(ROOT_KEY_NAME, [canonical_json(payload)], key_version=root.latest_version)
    return {
        "payload": payload,
        "signature": _b64url(signature.signature),
        "kid": f"{ROOT_KEY_NAME}#{signature.key_version}",
    }


def load_trust_list(
    data: bytes | str | Mapping[str, Any], *, root_public_key: bytes, now: datetime | None = None
) -> TrustList:
    """Verify the root signature and freshness, then index the list; TrustListInvalid otherwise."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise TrustListInvalid(f"the trust list is not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("payload"), Mapping):
        raise TrustListInvalid("the trust list has no payload object")
    payload = data["payload"]
    try:
        root = Ed25519PublicKey.from_public_bytes(root_public_key)
        signature = _unb64url(str(data.get("signature", "")))
        root.verify(signature, canonical_json(payload))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        raise TrustListInvalid(
            "the trust list's signature does not verify with the root public key: it was altered "
            "or signed by another key",
            hint="download it again, and check the root key (trust-root.pub)",
        ) from None
    # Signed, so well-formed unless our own builder is broken; still refuse clearly, never crash.
    try:
        trust_list = _index(payload)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise TrustListInvalid(
            f"the trust list is signed but not in format {FORMAT_VERSION}: {exc}"
        ) from None
    trust_list.check_fresh(now or utcnow())
    return trust_list


def _index(payload: Mapping[str, Any]) -> TrustList:
    if payload["version"] != FORMAT_VERSION:
        raise ValueError(f"version {payload['version']!r}")
    keys: dict[tuple[str, int], tuple[str, Ed25519PublicKey]] = {}
    names: dict[str, str] = {}
    for org, entry in payload["issuers"].items():
        names[org] = str(entry["name"])
        for key in entry["keys"]:
            name, _, version = str(key["kid"]).rpartition("#")
            public_key = Ed25519PublicKey.from_public_bytes(_unb64url(key["public_key"]))
            keys[(name, int(version))] = (org, public_key)
    revoked = {str(r["serial"]): dict(r) for r in payload["revoked"]}
    return TrustList(
        issued_at=_parse_iso(payload["issued_at"]),
        next_update=_parse_iso(payload["next_update"]),
        keys=keys, names=names, revoked=revoked,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
