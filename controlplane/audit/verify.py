"""`audit verify BUNDLE`: check an exported bundle offline (no database, no network).

Recomputes every leaf hash from the events and the tree over them; checks each checkpoint's root
against that tree, its signature with the bundled audit key (which must be one of the pinned keys),
the witness co-signatures, and the consistency proofs between consecutive checkpoints. Any single
changed byte of events, checkpoints, keys or proofs is a fault with a message naming it. With a
pinned checkpoint (`since`), a log that is shorter (truncated), or holds another history below the
pinned size (fork, regrown), fails too. C2SP checkpoints carry their signed note; a standard note
verifier can check those with the audit key's vkey and the witness's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.audit.bundle import FORMAT, MEMBERS
from controlplane.audit.checkpoints import (
    AUDIT_KEY,
    LEGACY_WITNESS_KEY,
    legacy_checkpoint_note,
    legacy_cosignature_note,
    parse_note_time,
    verify_ed25519,
)
from controlplane.audit.pinning import Pinned, pinned_fault
from controlplane.tlog import merkle
from controlplane.tlog.note import (
    NoteError,
    Verifier,
    ed25519_verifier,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verified_by,
)


@dataclass
class VerifyReport:
    tree_size: int = 0
    checkpoints: int = 0
    witnessed: int = 0
    faults: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults


class BundleUnreadable(Exception):
    pass


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise BundleUnreadable(f"{what} is not base64") from None


def read_members(path: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(path, "r:*") as tar:
            members: dict[str, bytes] = {}
            for info in tar.getmembers():
                if info.name in MEMBERS and info.isfile():
                    data = tar.extractfile(info)
                    if data is not None:
                        members[info.name] = data.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BundleUnreadable(f"{path} is not a readable bundle: {exc}") from None
    missing = [m for m in MEMBERS if m not in members]
    if missing:
        raise BundleUnreadable(f"the bundle lacks {', '.join(missing)}")
    return members


def _keys(raw: Any, name: str) -> dict[int, bytes]:
    versions = raw.get(name, {}) if isinstance(raw, dict) else {}
    return {int(v): _b64(k, f"{name} public key version {v}") for v, k in versions.items()}


def leaf_hashes_of(events: bytes) -> list[bytes]:
    """One leaf hash per line of events.jsonl (the exact bytes of each line are the leaf input)."""
    lines = events.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    sha = hashlib.sha256
    return [sha(b"\x00" + line).digest() for line in lines]


def verify_bundle(
    path: Path,
    *,
    pinned_audit_keys: Sequence[bytes],
    pinned_witness_keys: Sequence[bytes] | None = None,
    witnesses: Sequence[Verifier] | None = None,
    since: Pinned | None = None,
) -> VerifyReport:
    """`pinned_witness_keys`: legacy co-signature keys; `witnesses`: C2SP witness verifier keys
    (default: the bundle's own witness_vkeys, which prove only what the exporter pinned)."""
    report = VerifyReport()
    try:
        members = read_members(path)
        manifest = json.loads(members["manifest.json"])
        cps = json.loads(members["checkpoints.json"])
        keys = json.loads(members["keys.json"])
        proofs = json.loads(members["proofs.json"]).get("consistency", [])
        audit_keys, witness_keys = _keys(keys, AUDIT_KEY), _keys(keys, LEGACY_WITNESS_KEY)
        if witnesses is None:
            witnesses = [parse_vkey(str(v)) for v in keys.get("witness_vkeys", [])]
    except (BundleUnreadable, ValueError, AttributeError) as exc:
        report.faults.append(f"bundle: {exc}")
        return report
    if manifest.get("format") != FORMAT:
        report.faults.append(f"manifest: format {manifest.get('format')!r} is not {FORMAT}")
    leaves = leaf_hashes_of(members["events.jsonl"])
    report.tree_size, report.checkpoints = len(leaves), len(cps)
    if manifest.get("tree_size") != len(leaves) or manifest.get("events") != len(leaves):
        report.faults.append(
            f"events: the bundle holds {len(leaves)} event(s), the manifest says "
            f"{manifest.get('tree_size')}: events were added or removed"
        )
    for version, key in audit_keys.items():
        if key not in pinned_audit_keys:
            report.faults.append(
                f"keys: {AUDIT_KEY} version {version} in the bundle is not a pinned audit key"
            )
    if pinned_witness_keys is not None:
        for version, key in witness_keys.items():
            if key not in pinned_witness_keys:
                report.faults.append(
                    f"keys: {LEGACY_WITNESS_KEY} version {version} is not a pinned witness key"
                )
    if since is not None:
        levels = merkle.levels_of(leaves)
        reader = merkle.reader_of(levels)
        found = pinned_fault(since, len(leaves), lambda n: merkle.subtree_root(0, n, reader))
        if found is not None:
            report.faults.append(f"{found[0]}: {found[1]}")
    try:
        report.faults += _check_checkpoints(cps, leaves, audit_keys, witness_keys, witnesses, report)
        report.faults += _check_proofs(cps, proofs)
    except (BundleUnreadable, KeyError, TypeError, ValueError) as exc:
        report.faults.append(f"checkpoints: unreadable ({exc})")
    return report


def _check_checkpoints(
    cps: list[dict[str, Any]],
    leaves: list[bytes],
    audit_keys: dict[int, bytes],
    witness_keys: dict[int, bytes],
    witnesses: Sequence[Verifier],
    report: VerifyReport,
) -> list[str]:
    faults: list[str] = []
    if not cps:
        return ["checkpoints: the bundle has no checkpoint"]
    sizes = [int(cp["tree_size"]) for cp in cps]
    if sizes != sorted(set(sizes)):
        faults.append("checkpoints: tree sizes are not strictly increasing")
    if sizes[-1] != len(leaves):
        faults.append(
            f"checkpoints: the latest checkpoint covers {sizes[-1]} events, the bundle holds "
            f"{len(leaves)}: events were added or removed"
        )
    levels = merkle.levels_of(leaves)
    reader = merkle.reader_of(levels)
    previous = 0
    for cp in cps:
        size, root = int(cp["tree_size"]), _b64(cp["root_hash"], "a checkpoint root")
        label = f"checkpoint at tree size {size}"
        key = audit_keys.get(int(cp["key_version"]))
        if cp.get("note"):
            faults += _check_note(label, cp, size, root, key, witnesses, report)
        else:
            faults += _check_legacy(label, cp, size, root, key, witness_keys, report)
        if 0 < size <= len(leaves) and merkle.subtree_root(0, size, reader) != root:
            faults.append(
                f"{label}: events {previous}..{size - 1} (lines {previous + 1}..{size} of "
                "events.jsonl) differ from what it signed"
            )
        previous = size
    return faults


def _check_note(
    label: str,
    cp: dict[str, Any],
    size: int,
    root: bytes,
    key: bytes | None,
    witnesses: Sequence[Verifier],
    report: VerifyReport,
) -> list[str]:
    """A C2SP checkpoint: its note states this size and root, is signed by the audit key under its
    origin, and (if co-signed) the cosignature verifies under a witness key."""
    try:
        note = parse_note(str(cp["note"]))
        checkpoint = parse_checkpoint(note.text)
    except NoteError as exc:
        return [f"{label}: the signed note is malformed ({exc})"]
    if (checkpoint.size, checkpoint.root_hash) != (size, root):
        return [f"{label}: the signed note states another size or root"]
    faults = []
    try:
        log_key = [ed25519_verifier(checkpoint.origin, key)] if key is not None else []
        signature = _b64(cp["signature"], "a signature")
        signed = key is not None and verify_ed25519(key, signature, note.text.encode())
        if not signed or not verified_by(note, log_key):
            faults.append(f"{label}: the audit signature does not verify")
    except NoteError:
        faults.append(f"{label}: the audit signature does not verify")
    others = [s for s in note.signatures if s.name != checkpoint.origin]
    if others:
        try:
            if verified_by(note, witnesses):
                report.witnessed += 1
            elif witnesses:
                faults.append(f"{label}: no witness co-signature by a pinned witness key")
        except NoteError:
            faults.append(f"{label}: the witness co-signature does not verify")
    return faults


def _check_legacy(
    label: str,
    cp: dict[str, Any],
    size: int,
    root: bytes,
    key: bytes | None,
    witness_keys: dict[int, bytes],
    report: VerifyReport,
) -> list[str]:
    """A checkpoint from before C2SP notes: the old text and the old co-signature."""
    faults = []
    note = legacy_checkpoint_note(size, root, parse_note_time(cp["time"]))
    if key is None or not verify_ed25519(key, _b64(cp["signature"], "a signature"), note):
        faults.append(f"{label}: the audit signature does not verify")
    witness = cp.get("witness")
    if witness is not None:
        wkey = witness_keys.get(int(witness["key_version"]))
        cosig = legacy_cosignature_note(note, parse_note_time(witness["time"]))
        if wkey is None or not verify_ed25519(wkey, _b64(witness["signature"], "a co-signature"), cosig):
            faults.append(f"{label}: the witness co-signature does not verify")
        else:
            report.witnessed += 1
    return faults


def _check_proofs(cps: list[dict[str, Any]], proofs: list[dict[str, Any]]) -> list[str]:
    faults = []
    by_pair = {(int(p["first"]), int(p["second"])): p["proof"] for p in proofs}
    for first, second in itertools.pairwise(cps):
        m, n = int(first["tree_size"]), int(second["tree_size"])
        proof = by_pair.get((m, n))
        if proof is None:
            faults.append(f"proofs: no consistency proof from tree size {m} to {n}")
            continue
        path = [_b64(h, "a proof hash") for h in proof]
        if not merkle.verify_consistency(
            m, n, _b64(first["root_hash"], "a root"), _b64(second["root_hash"], "a root"), path
        ):
            faults.append(f"proofs: the consistency proof from tree size {m} to {n} does not verify")
    return faults
