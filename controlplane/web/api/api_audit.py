"""JSON API of the audit log, /api/v1/audit: the latest signed checkpoint and Merkle proofs, for
auditors' and operators' systems with a token carrying `audit:read`. Hashes only, no event content."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from controlplane.audit import proofs
from controlplane.audit.checkpoints import (
    AUDIT_KEY,
    archived_keys,
    b64,
    format_note_time,
    note_of,
    origin_of,
    signed_note,
    witness_json,
)
from controlplane.audit.models import AuditCheckpoint
from controlplane.errors import InvalidInput
from controlplane.web.api.api_auth import require_scope
from controlplane.web.services import services

bp = Blueprint("api_audit", __name__, url_prefix="/api/v1/audit")

SCOPE = "audit:read"
MAX_SIZE = 2**62


def _int_arg(name: str, *, minimum: int) -> int:
    raw = request.args.get(name, "")
    if not raw.isascii() or not raw.isdigit() or not minimum <= int(raw) <= MAX_SIZE:
        raise InvalidInput(f"{name} must be a whole number from {minimum}")
    return int(raw)


def checkpoint_body(cp: AuditCheckpoint, public_key: bytes | None = None) -> dict[str, Any]:
    return {
        "origin": origin_of(cp),
        "tree_size": cp.tree_size,
        "root_hash": b64(cp.root_hash),
        "time": format_note_time(cp.signed_at),
        "note": note_of(cp).decode("ascii"),
        "signature": {"key_name": cp.key_name, "key_version": cp.key_version, "value": b64(cp.signature)},
        "witness": witness_json(cp),
        # the C2SP signed note (tlog-checkpoint + cosignature lines), for standard verifiers
        "signed_note": signed_note(cp, public_key) if cp.note is not None and public_key else None,
    }


@bp.get("/checkpoint")
@require_scope(SCOPE)
def latest_checkpoint() -> Response:
    with services().database.transaction() as s:
        cp = proofs.latest_checkpoint(s)
        return jsonify(checkpoint_body(cp, archived_keys(s, AUDIT_KEY).get(cp.key_version)))


@bp.get("/proof/inclusion")
@require_scope(SCOPE)
def inclusion_proof() -> Response:
    leaf_index, size = _int_arg("leaf_index", minimum=0), _int_arg("tree_size", minimum=1)
    with services().database.transaction() as s:
        proof = proofs.prove_inclusion(s, leaf_index, size)
    return jsonify(
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        leaf_hash=b64(proof.leaf_hash),
        root_hash=b64(proof.root_hash),
        inclusion_path=[b64(h) for h in proof.path],
    )


@bp.get("/proof/consistency")
@require_scope(SCOPE)
def consistency_proof() -> Response:
    first, second = _int_arg("first", minimum=1), _int_arg("second", minimum=1)
    with services().database.transaction() as s:
        proof = proofs.prove_consistency(s, first, second)
    return jsonify(
        first=proof.first,
        second=proof.second,
        first_root=b64(proof.first_root),
        second_root=b64(proof.second_root),
        consistency_path=[b64(h) for h in proof.path],
    )
