"""Signed checkpoints of the audit log: the signed text, Ed25519 checks, archived and pinned public keys.

A checkpoint is the note (C2SP tlog-checkpoint shape, one extension line for the time)

    controlplane audit log
    <tree size>
    <base64 root hash>
    time <UTC, RFC 3339 with microseconds>

signed as-is with the audit key `cp_audit` in Vault. The witness key `cp_audit_witness` (standing
for a security agency) co-signs "cosignature/v1\\ntime <its time>\\n" + that note. Key names have an
underscore, which a tenant slug never has, so no tenant policy can reach them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.audit.models import AuditCheckpoint, AuditKey
from controlplane.storage import utcnow

AUDIT_KEY = "cp_audit"
WITNESS_KEY = "cp_audit_witness"
ORIGIN = "controlplane audit log"
PINNED_KEY_FILE = "audit-keys.pem"  # in the instance folder
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_note_time(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(_TIME)


def parse_note_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME).replace(tzinfo=UTC)


def checkpoint_note(tree_size: int, root_hash: bytes, signed_at: datetime) -> bytes:
    root = base64.b64encode(root_hash).decode("ascii")
    return f"{ORIGIN}\n{tree_size}\n{root}\ntime {format_note_time(signed_at)}\n".encode()


def cosignature_note(note: bytes, witnessed_at: datetime) -> bytes:
    return f"cosignature/v1\ntime {format_note_time(witnessed_at)}\n".encode() + note


def note_of(cp: AuditCheckpoint) -> bytes:
    return checkpoint_note(cp.tree_size, cp.root_hash, cp.signed_at)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def witness_json(cp: AuditCheckpoint) -> dict[str, Any] | None:
    """The witness co-signature of `cp` as the bundle and the API show it; None until co-signed."""
    if cp.witness_signature is None or cp.witness_signed_at is None:
        return None
    return {
        "key_name": cp.witness_key_name,
        "key_version": cp.witness_key_version,
        "time": format_note_time(cp.witness_signed_at),
        "signature": b64(cp.witness_signature),
    }


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_signed_by(cp: AuditCheckpoint, public_keys: Mapping[int, bytes]) -> bool:
    key = public_keys.get(cp.key_version)
    return key is not None and verify_ed25519(key, cp.signature, note_of(cp))


def witness_signed_by(cp: AuditCheckpoint, public_keys: Mapping[int, bytes]) -> bool:
    if cp.witness_signature is None or cp.witness_signed_at is None or cp.witness_key_version is None:
        return False
    key = public_keys.get(cp.witness_key_version)
    return key is not None and verify_ed25519(
        key, cp.witness_signature, cosignature_note(note_of(cp), cp.witness_signed_at)
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
