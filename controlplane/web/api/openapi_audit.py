"""The audit part of the /api/v1 OpenAPI document: latest checkpoint, inclusion and consistency proofs
(merged into openapi.DOCUMENT)."""

from __future__ import annotations

from typing import Any

from controlplane.web.api.openapi_common import errors, ok

_B64 = {"type": "string", "contentEncoding": "base64"}
_SCOPE = " Scope audit:read (operator tokens)."
_SIZE = {"type": "integer", "minimum": 1, "maximum": 2**62}


def _query(name: str, minimum: int, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": 2**62},
    }


PATHS: dict[str, Any] = {
    "/api/v1/audit/checkpoint": {
        "get": {
            "operationId": "getAuditCheckpoint",
            "summary": "The latest signed checkpoint of the audit log (tree size, root, time), its "
            "Ed25519 signature by the audit key and the witness co-signature if any." + _SCOPE,
            "responses": {**ok({"$ref": "#/components/schemas/AuditCheckpoint"}), **errors(401, 403, 404)},
        }
    },
    "/api/v1/audit/proof/inclusion": {
        "get": {
            "operationId": "getAuditInclusionProof",
            "summary": "RFC 9162 inclusion proof of one leaf in the tree of a given size; 404 when the "
            "log has no tree of that size yet or the tree no such leaf." + _SCOPE,
            "parameters": [
                _query("leaf_index", 0, "0-based leaf index, below tree_size"),
                _query("tree_size", 1, "a size up to the current tree size"),
            ],
            "responses": {
                **ok({"$ref": "#/components/schemas/AuditInclusionProof"}),
                **errors(400, 401, 403, 404),
            },
        }
    },
    "/api/v1/audit/proof/consistency": {
        "get": {
            "operationId": "getAuditConsistencyProof",
            "summary": "RFC 9162 consistency proof between two tree sizes (the later one up to the "
            "current tree size)." + _SCOPE,
            "parameters": [
                _query("first", 1, "the earlier tree size"),
                _query("second", 1, "the later tree size, at least first"),
            ],
            "responses": {
                **ok({"$ref": "#/components/schemas/AuditConsistencyProof"}),
                **errors(400, 401, 403, 404),
            },
        }
    },
}

_SIGNATURE = {
    "type": "object",
    "required": ["key_name", "key_version", "value"],
    "properties": {"key_name": {"type": "string"}, "key_version": {"type": "integer"}, "value": _B64},
}
_WITNESS = {
    "type": ["object", "null"],
    "description": "the independent witness's C2SP cosignature line(s), or (checkpoints before "
    "C2SP notes) the old same-Vault co-signature",
    "properties": {
        "cosignature": {"type": "string"},
        "key_name": {"type": "string"},
        "key_version": {"type": "integer"},
        "time": {"type": "string"},
        "signature": _B64,
    },
}

SCHEMAS: dict[str, Any] = {
    "AuditCheckpoint": {
        "type": "object",
        "required": ["origin", "tree_size", "root_hash", "time", "note", "signature", "witness"],
        "properties": {
            "origin": {"type": "string"},
            "tree_size": _SIZE,
            "root_hash": _B64,
            "time": {"type": "string", "description": "UTC, RFC 3339 with microseconds"},
            "note": {"type": "string", "description": "the exact text signed by the audit key"},
            "signature": _SIGNATURE,
            "witness": _WITNESS,
            "signed_note": {
                "type": ["string", "null"],
                "description": "C2SP tlog-checkpoint signed note: the log's signature and the "
                "witness's cosignature lines (null for checkpoints before C2SP notes)",
            },
        },
    },
    "AuditInclusionProof": {
        "type": "object",
        "required": ["leaf_index", "tree_size", "leaf_hash", "root_hash", "inclusion_path"],
        "properties": {
            "leaf_index": {"type": "integer", "minimum": 0},
            "tree_size": _SIZE,
            "leaf_hash": _B64,
            "root_hash": _B64,
            "inclusion_path": {"type": "array", "items": _B64},
        },
    },
    "AuditConsistencyProof": {
        "type": "object",
        "required": ["first", "second", "first_root", "second_root", "consistency_path"],
        "properties": {
            "first": _SIZE,
            "second": _SIZE,
            "first_root": _B64,
            "second_root": _B64,
            "consistency_path": {"type": "array", "items": _B64},
        },
    },
}
