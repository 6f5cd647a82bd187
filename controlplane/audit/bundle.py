"""`audit export`: a self-contained bundle (tar.gz) an auditor verifies with no database and no network.

Members:
  manifest.json     format, origin, tree size (= the latest checkpoint's), export time
  events.jsonl      line i = the leaf input of leaf i: the event's canonical CADF record (cadf.py)
  checkpoints.json  every checkpoint up to that size: size, root, time, key version, signature,
                    "note" = the C2SP signed note (log signature and the witness's cosignature
                    lines) for checkpoints since revision 0014, the old co-signature for older ones
  keys.json         public keys (raw Ed25519, base64) of every version of the audit key (and of the
                    legacy same-Vault witness key), and "witness_vkeys": the witness keys the
                    exporting control plane pins (an auditor should pin its own: --witness-key)
  proofs.json       a consistency proof between each pair of consecutive checkpoints
"""

from __future__ import annotations

import io
import itertools
import json
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from controlplane.audit.cadf import canonical_json, record_of_row
from controlplane.audit.checkpoints import (
    AUDIT_KEY,
    LEGACY_WITNESS_KEY,
    archived_keys,
    b64,
    format_note_time,
    origin_of,
    signed_note,
    witness_json,
)
from controlplane.audit.models import AuditCheckpoint, AuditEvent
from controlplane.audit.proofs import latest_checkpoint, prove_consistency
from controlplane.audit.sequencer import EVENT_COLUMNS
from controlplane.storage import Database, utcnow

FORMAT = "controlplane-audit-bundle/1"
MEMBERS = ("manifest.json", "events.jsonl", "checkpoints.json", "keys.json", "proofs.json")


@dataclass(frozen=True)
class Exported:
    path: Path
    tree_size: int
    checkpoints: int


def checkpoint_json(cp: AuditCheckpoint, audit_keys: dict[int, bytes] | None = None) -> dict[str, Any]:
    public = (audit_keys or {}).get(cp.key_version)
    note = signed_note(cp, public) if cp.note is not None and public is not None else None
    return {
        "note": note,
        "tree_size": cp.tree_size,
        "root_hash": b64(cp.root_hash),
        "time": format_note_time(cp.signed_at),
        "key_name": cp.key_name,
        "key_version": cp.key_version,
        "signature": b64(cp.signature),
        "witness": witness_json(cp),
    }


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def export_bundle(db: Database, output: Path, *, witness_vkeys: list[str] | None = None) -> Exported:
    """Write the bundle of everything covered by the latest signed checkpoint."""
    with db.transaction() as s, tempfile.TemporaryFile() as events:
        latest = latest_checkpoint(s)
        size = latest.tree_size
        cps = list(
            s.scalars(
                select(AuditCheckpoint)
                .where(AuditCheckpoint.tree_size <= size)
                .order_by(AuditCheckpoint.tree_size)
            )
        )
        proofs = []
        for first, second in itertools.pairwise(cps):
            p = prove_consistency(s, first.tree_size, second.tree_size)
            proofs.append({"first": p.first, "second": p.second, "proof": [b64(h) for h in p.path]})
        keys: dict[str, Any] = {
            name: {str(v): b64(k) for v, k in archived_keys(s, name).items()}
            for name in (AUDIT_KEY, LEGACY_WITNESS_KEY)
        }
        keys["witness_vkeys"] = list(witness_vkeys or [])
        audit_keys = archived_keys(s, AUDIT_KEY)
        count = 0
        query = (
            select(*EVENT_COLUMNS, AuditEvent.leaf_index)
            .where(AuditEvent.leaf_index < size)
            .order_by(AuditEvent.leaf_index)
        )
        for row in s.execute(query).yield_per(5000):
            events.write(canonical_json(record_of_row(row)) + b"\n")
            count += 1
        manifest = {
            "format": FORMAT,
            "origin": origin_of(latest),
            "tree_size": size,
            "events": count,
            "exported_at": format_note_time(utcnow()),
        }
        output.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(output, "w:gz", compresslevel=1) as tar:
            _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
            events.seek(0)
            info = tarfile.TarInfo("events.jsonl")
            info.size, info.mtime, info.mode = events.seek(0, io.SEEK_END), int(time.time()), 0o644
            events.seek(0)
            tar.addfile(info, events)
            listed = [checkpoint_json(cp, audit_keys) for cp in cps]
            _add(tar, "checkpoints.json", json.dumps(listed, indent=1).encode())
            _add(tar, "keys.json", json.dumps(keys, indent=1).encode())
            _add(tar, "proofs.json", json.dumps({"consistency": proofs}, indent=1).encode())
    return Exported(output, size, len(cps))
