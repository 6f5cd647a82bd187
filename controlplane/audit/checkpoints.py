"""Signed checkpoints of the audit log: the signed text, Ed25519 checks, archived and pinned public keys.

A checkpoint is a C2SP signed note (tlog-checkpoint): its text

    <origin>            the `audit_origin` setting, e.g. controlplane.local/audit
    <tree size>
    <base64 root hash>

is signed as-is with the audit key `cp_audit` in the control plane's Vault; the signature line is
`— <origin> base64(key id || signature)`, key id = SHA-256(origin || 0x0A || 0x01 || public key)[:4].
The independent witness (controlplane.witness, the security agency's) answers with a
cosignature/v1 line (tlog-cosignature), stored in `cosignature`. Key names have an underscore,
which a tenant slug never has, so no tenant policy can reach them.

Checkpoints from before (NULL `note`) were signed over "controlplane audit log\n<size>\n<root>\n
time <RFC 3339>\n" and co-signed by a `cp_audit_witness` key in the same Vault; they still verify
with the archived keys, but that old co-signature proves nothing an operator could not forge.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.audit.models import AuditCheckpoint, AuditKey
from controlplane.storage import utcnow
from controlplane.tlog.note import (
    Note,
    NoteError,
    NoteSignature,
    Verifier,
    cosignature_timestamp,
    ed25519_verifier,
    ed25519_verify,
    parse_checkpoint,
    parse_signature_lines,
    verified_by,
)

AUDIT_KEY = "cp_audit"
LEGACY_WITNESS_KEY = "cp_audit_witness"  # the old same-Vault "witness": archived keys, old rows only
LEGACY_ORIGIN = "controlplane audit log"
DEFAULT_ORIGIN = "controlplane.local/audit"
PINNED_KEY_FILE = "audit-keys.pem"  # in the instance folder
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_note_time(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(_TIME)


def parse_note_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME).replace(tzinfo=UTC)


def legacy_checkpoint_note(tree_size: int, root_hash: bytes, signed_at: datetime) -> bytes:
    """The text checkpoints were signed over before they became C2SP notes (revision 0014)."""
    root = base64.b64encode(root_hash).decode("ascii")
    return f"{LEGACY_ORIGIN}\n{tree_size}\n{root}\ntime {format_note_time(signed_at)}\n".encode()


def legacy_cosignature_note(note: bytes, witnessed_at: datetime) -> bytes:
    return f"cosignature/v1\ntime {format_note_time(witnessed_at)}\n".encode() + note


def note_of(cp: AuditCheckpoint) -> bytes:
    """The exact bytes the audit key signed."""
    if cp.note is not None:
        return cp.note.encode()
    return legacy_checkpoint_note(cp.tree_size, cp.root_hash, cp.signed_at)


def origin_of(cp: AuditCheckpoint) -> str:
    return parse_checkpoint(cp.note).origin if cp.note is not None else LEGACY_ORIGIN


def signature_line(cp: AuditCheckpoint, public_key: bytes) -> NoteSignature:
    """The audit key's signature on a C2SP checkpoint as a note signature line."""
    verifier = ed25519_verifier(origin_of(cp), public_key)
    return NoteSignature(verifier.name, verifier.key_id, cp.signature)


def signed_note(cp: AuditCheckpoint, public_key: bytes, *, with_cosignature: bool = True) -> str:
    """The checkpoint as a C2SP signed note (log signature, then the witness's cosignature if any)."""
    if cp.note is None:
        raise ValueError(f"the checkpoint at tree size {cp.tree_size} predates C2SP notes")
    cosig = cp.cosignature if with_cosignature and cp.cosignature else ""
    return cp.note + "\n" + signature_line(cp, public_key).line() + cosig


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def is_cosigned(cp: AuditCheckpoint) -> bool:
    return cp.cosignature is not None or cp.witness_signature is not None


def witness_json(cp: AuditCheckpoint) -> dict[str, Any] | None:
    """The witness co-signature of `cp` as the bundle and the API show it; None until co-signed."""
    if cp.cosignature is not None:
        out: dict[str, Any] = {"cosignature": cp.cosignature}
        if cp.witness_signed_at is not None:
            out["time"] = format_note_time(cp.witness_signed_at)
        return out
    if cp.witness_signature is None or cp.witness_signed_at is None:
        return None
    return {
        "key_name": cp.witness_key_name,
        "key_version": cp.witness_key_version,
        "time": format_note_time(cp.witness_signed_at),
        "signature": b64(cp.witness_signature),
    }


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    return ed25519_verify(public_key, signature, message)


def checkpoint_signed_by(cp: AuditCheckpoint, public_keys: Mapping[int, bytes]) -> bool:
    key = public_keys.get(cp.key_version)
    return key is not None and verify_ed25519(key, cp.signature, note_of(cp))


def cosignatures_verify(text: str, lines: str, witnesses: Sequence[Verifier]) -> bool:
    """True if at least one cosignature line is by a pinned witness and every such line verifies."""
    try:
        return bool(verified_by(Note(text, parse_signature_lines(lines)), witnesses))
    except NoteError:
        return False


def cosignature_time(lines: str, witnesses: Sequence[Verifier]) -> datetime | None:
    known = {(w.name, w.key_id) for w in witnesses}
    for sig in parse_signature_lines(lines):
        if (sig.name, sig.key_id) in known:
            return datetime.fromtimestamp(cosignature_timestamp(sig), UTC)
    return None


def witness_signed_by(
    cp: AuditCheckpoint, legacy_keys: Mapping[int, bytes], witnesses: Sequence[Verifier] = ()
) -> bool:
    """The witness's cosignature verifies: a C2SP cosignature under a pinned witness key, or (old
    rows) the legacy co-signature under an archived `cp_audit_witness` key."""
    if cp.cosignature is not None:
        return cp.note is not None and cosignatures_verify(cp.note, cp.cosignature, witnesses)
    if cp.witness_signature is None or cp.witness_signed_at is None or cp.witness_key_version is None:
        return False
    key = legacy_keys.get(cp.witness_key_version)
    return key is not None and verify_ed25519(
        key, cp.witness_signature, legacy_cosignature_note(note_of(cp), cp.witness_signed_at)
    )


# ------------------------------------------------------------------------------- archived keys
def archived_keys(session: Session, name: str) -> dict[int, bytes]:
    rows = session.execute(select(AuditKey.version, AuditKey.public_key).where(AuditKey.name == name))
    return {version: bytes(key) for version, key in rows}


def archive_keys(session: Session, name: str, public_keys: Mapping[int, bytes]) -> list[int]:
    """Store versions not archived yet; return those added."""
    known = archived_keys(session, name)
    added = [v for v in sorted(public_keys) if v not in known]
    for version in added:
        session.add(
            AuditKey(name=name, version=version, public_key=public_keys[version], archived_at=utcnow())
        )
    session.flush()
    return added


# --------------------------------------------------------------------------------- pinned keys
def pem_of(public_key: bytes) -> str:
    return (
        Ed25519PublicKey.from_public_bytes(public_key)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def pinned_text(name: str, public_keys: Mapping[int, bytes]) -> str:
    """PEM blocks, one per version, each after a label line (text outside PEM blocks is ignored)."""
    return "".join(f"{name} version {v}\n{pem_of(public_keys[v])}" for v in sorted(public_keys))


def read_pinned_keys(path: Path) -> list[bytes]:
    """Raw Ed25519 public keys from a file of PEM blocks. ValueError names what is wrong."""
    text = path.read_text(encoding="ascii")
    blocks = text.split("-----BEGIN PUBLIC KEY-----")[1:]
    if not blocks:
        raise ValueError(f"{path} holds no PEM public key")
    keys = []
    for block in blocks:
        pem = (
            "-----BEGIN PUBLIC KEY-----"
            + block.split("-----END PUBLIC KEY-----")[0]
            + "-----END PUBLIC KEY-----\n"
        )
        loaded = serialization.load_pem_public_key(pem.encode("ascii"))
        if not isinstance(loaded, Ed25519PublicKey):
            raise ValueError(f"{path}: not an Ed25519 public key")
        keys.append(loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return keys


def pin_keys(path: Path, name: str, public_keys: Mapping[int, bytes]) -> bool:
    """Trust on first use: write the file when missing, append versions it lacks. True if written."""
    pinned: Iterable[bytes] = read_pinned_keys(path) if path.is_file() else []
    missing = {v: k for v, k in public_keys.items() if k not in set(pinned)}
    if not missing:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="ascii") as out:
        out.write(pinned_text(name, missing))
    return True
