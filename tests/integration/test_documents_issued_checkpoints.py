"""The monitor's checkpoint check, on its own: a note signed by a pinned key is accepted (as the audit
API gives it today, or as a C2SP signed note), any other key, a changed field or a changed note is not."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from controlplane.documents.monitor import verify_checkpoint
from controlplane.tlog.note import Checkpoint


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


ROOT = hashlib.sha256(b"root").digest()


def api_shaped(key: Ed25519PrivateKey, size: int = 42) -> dict[str, Any]:
    note = Checkpoint("controlplane.local/audit", size, ROOT).text().encode()
    return {"tree_size": size, "root_hash": b64(ROOT), "note": note.decode(),
            "signature": {"key_name": "cp_audit", "key_version": 1, "value": b64(key.sign(note))}}


def test_a_checkpoint_signed_by_a_pinned_key_gives_its_size_and_root() -> None:
    key = Ed25519PrivateKey.generate()
    verified = verify_checkpoint(api_shaped(key), [raw(Ed25519PrivateKey.generate()), raw(key)])
    assert (verified.tree_size, verified.root_hash) == (42, ROOT)


def test_a_c2sp_signed_note_is_read_too() -> None:
    key = Ed25519PrivateKey.generate()
    body = api_shaped(key)
    text = body["note"]
    line = b64(bytes([1, 2, 3, 4]) + key.sign(text.encode()))  # key hash, then the signature
    body["note"] = f"{text}\n\u2014 controlplane-audit {line}\n"  # text ends with a newline
    del body["signature"]
    assert verify_checkpoint(body, [raw(key)]).tree_size == 42


def test_another_key_or_a_changed_field_or_note_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ValueError, match="not signed by a pinned"):
        verify_checkpoint(api_shaped(key), [raw(Ed25519PrivateKey.generate())])
    with pytest.raises(ValueError, match="differ"):
        verify_checkpoint({**api_shaped(key), "tree_size": 43}, [raw(key)])
    changed = api_shaped(key)
    changed["note"] = changed["note"].replace("\n42\n", "\n41\n")
    with pytest.raises(ValueError, match="not signed by a pinned"):
        verify_checkpoint(changed, [raw(key)])
    with pytest.raises(ValueError, match="no signed checkpoint"):
        verify_checkpoint(None, [raw(key)])
