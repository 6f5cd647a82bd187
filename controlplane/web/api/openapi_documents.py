"""The documents part of the /api/v1 OpenAPI document: issue, read, QR, revoke, supersede, the list of
everything signed (with log proofs) and the public verify (merged into openapi.DOCUMENT).
/trust-list.json is a published file, not an operation."""

from __future__ import annotations

import unicodedata
from typing import Any

from controlplane.documents.issuance import MAX_BATCH, MAX_TEXT
from controlplane.documents.issued import CURSOR_PATTERN, MAX_LIMIT, TIME_PATTERN
from controlplane.documents.revocation import MAX_REASON
from controlplane.documents.tokens import MAX_TOKEN_CHARS
from controlplane.documents.verification import Verdict
from controlplane.web.api.openapi_common import NO_CONTROL, errors, json_body, ok


def _refused_characters() -> str:
    """A regex class of what NewDocument.parse refuses in text: control, format and private-use
    characters, except the whitespace it folds into spaces and the ZWNJ Kurdish needs. (It refuses
    lone surrogates too, which a regex class cannot name: no valid UTF-8 text holds one.)"""
    refused = [c for c in range(0x110000)
               if unicodedata.category(chr(c)) in ("Cc", "Cf", "Co") and c != 0x200C
               and not chr(c).isspace()]
    ranges: list[tuple[int, int]] = []
    for c in refused:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))

    def esc(c: int) -> str:
        return f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}"

    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


# Text the issuer gives: something visible, nothing invisible or controlling (whitespace is folded).
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT,
         "allOf": [{"pattern": "\\S"}, {"pattern": f"^[^{_refused_characters()}]*$"}]}
_SLUGGY = "^[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?$"
_NO_NEWLINE = {"not": {"pattern": "\\n"}}  # "$" would also match before a final newline
# Expiry must lie after the issue time; documented as a far-future date so every example is valid.
_FUTURE_DATE = ("^(2[1-9][0-9]{2}|[3-8][0-9]{3}|9[0-8][0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
                "(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](Z|\\+00:00)?)?$")
SERIAL = {"name": "serial", "in": "path", "required": True,
          "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
TOKEN = {"name": "token", "in": "path", "required": True,
         "description": "The base32 token from the QR code, either case",
         "schema": {"type": "string", "pattern": f"^[A-Za-z2-7]{{1,{MAX_TOKEN_CHARS}}}$", **_NO_NEWLINE}}
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_DOCUMENT = {"$ref": "#/components/schemas/Document"}


def _status(code: int, description: str) -> dict[str, Any]:
    return {str(code): {"description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}


_TOO_LARGE = _status(413, "The body is larger than the endpoint accepts; nothing was written")
_LIMITED = {"429": {
    "description": "Too many verifications from this address; retry after the Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}}
_NO_SIGNER = _status(404, "The organisation has no signing key in Vault yet (apply its tenant first)")
_VAULT = {**_status(502, "Vault refused or failed to sign; nothing was written"),
          **_status(503, "Vault is unavailable for now; nothing was written, retry later")}
_PNG = {"200": {"description": "The QR code", "content": {"image/png": {"schema": {}}}}}
_SVG = {"200": {"description": "The QR code", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}}

_B64 = {"type": "string", "description": "base64"}
_ISSUED_PARAMETERS = [
    {"name": "cursor", "in": "query", "required": False,
     "description": "next_cursor of the previous page", "schema": {"type": "string",
                                                                   "pattern": CURSOR_PATTERN, **_NO_NEWLINE}},
    *({"name": name, "in": "query", "required": False, "description": what,
       "schema": {"type": "string", "pattern": TIME_PATTERN, **_NO_NEWLINE}}
      for name, what in (("since", "Documents issued at or after this time (UTC)"),
                         ("until", "Documents issued before this time (UTC)"))),
    {"name": "limit", "in": "query", "required": False, "description": "Documents per page",
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
]

PATHS: dict[str, Any] = {
    "/api/v1/documents/issued": {
        "get": {
            "operationId": "listIssuedDocuments",
            "summary": "Everything signed with the organisation's keys (scope documents:read or "
            "documents:issue; an organisation token, its own organisation only), oldest first: each "
            "document with who signed it, the SHA-256 of the signed bytes, its path in its batch and "
            "its batch event's inclusion proof against the latest signed checkpoint, or 'pending', "
            "or 'unlogged' (in the registry, never in the log). What `controlplane documents "
            "monitor` checks.",
            "parameters": _ISSUED_PARAMETERS,
            "responses": {**ok({"$ref": "#/components/schemas/IssuedList"}), **errors(400, 401, 403)},
        }
    },
    "/api/v1/documents": {
        "post": {
            "operationId": "issueDocuments",
            "summary": "Sign and register one document, or a batch of up to 1,000 (scope documents:issue). "
            "All or nothing: a bad item or a signing failure writes nothing.",
            "parameters": [{"name": "qr_svg", "in": "query", "required": False,
                            "description": "Include the QR SVG inline in batch answers (single "
                            "documents always carry it unless false)",
                            "schema": {"enum": ["true", "false"]}}],
            "requestBody": json_body({"oneOf": [{"$ref": "#/components/schemas/NewDocument"},
                                                {"$ref": "#/components/schemas/DocumentBatch"}]},
                                     required=True),
            "responses": {
                **ok({"oneOf": [{"$ref": "#/components/schemas/IssuedDocument"},
                                {"$ref": "#/components/schemas/IssuedBatch"}]}, "Issued", status=201),
                **errors(400, 401, 403), **_NO_SIGNER, **_TOO_LARGE, **_VAULT,
            },
        }
    },
    "/api/v1/documents/{serial}": {
        "get": {
            "operationId": "getDocument",
            "summary": "One of the organisation's documents (scope documents:read); any other serial is 404",
            "parameters": [SERIAL],
            "responses": {**ok(_DOCUMENT), **errors(401, 403, 404)},
        }
    },
    "/api/v1/documents/{serial}/qr.png": {
        "get": {
            "operationId": "getDocumentQrPng",
            "summary": "The document's QR code as PNG (scope documents:read)",
            "parameters": [SERIAL],
            "responses": {**_PNG, **errors(401, 403, 404)},
        }
    },
    "/api/v1/documents/{serial}/qr.svg": {
        "get": {
            "operationId": "getDocumentQrSvg",
            "summary": "The document's QR code as SVG (scope documents:read)",
            "parameters": [SERIAL],
            "responses": {**_SVG, **errors(401, 403, 404)},
        }
    },
    "/api/v1/documents/{serial}/revoke": {
        "post": {
            "operationId": "revokeDocument",
            "summary": "Revoke a document, saying why (scope documents:revoke); the reason is shown on "
            "the verification page and published in the next trust list",
            "parameters": [SERIAL],
            "requestBody": json_body({"$ref": "#/components/schemas/DocumentRevoke"}, required=True),
            "responses": {**ok(_DOCUMENT), **errors(400, 401, 403, 404, 409)},
        }
    },
    "/api/v1/documents/{serial}/supersede": {
        "post": {
            "operationId": "supersedeDocument",
            "summary": "Mark a valid document replaced by another valid one of the organisation "
            "(scope documents:revoke)",
            "parameters": [SERIAL],
            "requestBody": json_body({"$ref": "#/components/schemas/DocumentSupersede"}, required=True),
            "responses": {**ok(_DOCUMENT), **errors(400, 401, 403, 404, 409)},
        }
    },
    "/api/v1/verify/{token}": {
        "get": {
            "operationId": "verifyToken",
            "summary": "Public: the verdict of a token, as the verification page shows it. Never calls "
            "Vault; rate-limited per client address.",
            "security": [],
            "parameters": [TOKEN],
            "responses": {
                **ok({"$ref": "#/components/schemas/VerificationResult"},
                     "The verdict, whatever it is (a forged token is a good answer, not an error)"),
                "400": {"description": "Not base32 text of a token's length: the verdict is malformed",
                        "content": {"application/json": {"schema": {"allOf": [
                            {"$ref": "#/components/schemas/Error"},
                            {"$ref": "#/components/schemas/VerificationResult"}]}}}},
                **_LIMITED,
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {
    "IssuedList": {
        "type": "object",
        "required": ["org", "checkpoint", "documents", "events", "next_cursor"],
        "properties": {
            "org": {"type": "string"},
            "checkpoint": {"oneOf": [{"$ref": "#/components/schemas/AuditCheckpoint"}, {"type": "null"}]},
            "documents": {"type": "array", "items": {"$ref": "#/components/schemas/IssuedEntry"}},
            "events": {"type": "object", "description": "The batch events the documents refer to, by id",
                       "additionalProperties": {"$ref": "#/components/schemas/SignatureEvent"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "IssuedEntry": {
        "type": "object",
        "required": ["serial", "issued_at", "key_id", "token", "signature", "log"],
        "properties": {
            "serial": {"type": "string"},
            "issued_at": _TIME,
            "key_id": {"type": "string"},
            "token": {"type": "string"},
            "log": {"enum": ["included", "pending", "unlogged"]},
            "signature": {"oneOf": [{"type": "null"}, {
                "type": "object",
                "required": ["signed_sha256", "key_name", "key_version", "signed_by", "person",
                             "signed_at", "event_id", "batch_index", "batch_size", "batch_path"],
                "properties": {
                    "signed_sha256": {"type": "string", "description": "SHA-256 (hex) of the COSE "
                                      "Sig_structure the key signed"},
                    "key_name": {"type": "string"},
                    "key_version": {"type": "integer"},
                    "signed_by": {"type": "string", "description": "token:<prefix> or user:<name>"},
                    "person": {"type": "string", "description": "the person behind it"},
                    "signed_at": _TIME,
                    "event_id": {"type": "integer"},
                    "batch_index": {"type": "integer"},
                    "batch_size": {"type": "integer"},
                    "batch_path": {"type": "array", "items": _B64},
                },
            }]},
        },
    },
    "SignatureEvent": {
        "type": "object",
        "required": ["leaf_input", "status"],
        "properties": {
            "leaf_input": {**_B64, "description": "The event's exact Merkle leaf input (CADF JSON); "
                           "its detail.signatures_root is the root of the batch's entries"},
            "status": {"enum": ["included", "pending"]},
            "pending_since": _TIME,
            "leaf_index": {"type": "integer"},
            "tree_size": {"type": "integer"},
            "inclusion_path": {"type": "array", "items": _B64},
        },
    },
    "NewDocument": {
        "type": "object",
        "required": ["doc_type", "title", "recipient", "sha256"],
        "additionalProperties": False,
        "properties": {
            "doc_type": {"type": "string", "pattern": _SLUGGY, **_NO_NEWLINE,
                         "description": "e.g. birth-certificate"},
            "title": _TEXT,
            "recipient": {**_TEXT, "description": "Stored in full, only ever shown masked"},
            "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", **_NO_NEWLINE,
                       "description": "SHA-256 of the document file, hex"},
            "expires_at": {"type": ["string", "null"], "pattern": _FUTURE_DATE,
                           "description": "Optional expiry, ISO 8601 (UTC when no offset); after now"},
        },
    },
    "DocumentBatch": {
        "type": "object",
        "required": ["documents"],
        "additionalProperties": False,
        "properties": {"documents": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                     "items": {"$ref": "#/components/schemas/NewDocument"}}},
    },
    "IssuedDocument": {
        "type": "object",
        "required": ["serial", "token", "url", "doc_type", "title", "recipient_masked", "issued_at",
                     "expires_at", "key_id", "status", "qr_png_url", "qr_svg_url"],
        "properties": {
            "serial": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "token": {"type": "string", "pattern": "^[A-Z2-7]+$"},
            "url": {"type": "string", "description": "The verification URL in the QR code (uppercase)"},
            "doc_type": {"type": "string"},
            "title": {"type": "string"},
            "recipient_masked": {"type": "string"},
            "issued_at": _TIME,
            "expires_at": _MAYBE_TIME,
            "key_id": {"type": "string", "description": "<key name>#<version>, the COSE kid"},
            "status": {"enum": ["valid", "revoked", "superseded"]},
            "qr_png_url": {"type": "string"},
            "qr_svg_url": {"type": "string"},
            "qr_svg": {"type": "string", "description": "The QR code as an SVG document"},
        },
    },
    "IssuedBatch": {
        "type": "object",
        "required": ["documents"],
        "properties": {"documents": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/IssuedDocument"}}},
    },
    "Document": {
        "allOf": [
            {"$ref": "#/components/schemas/IssuedDocument"},
            {"type": "object", "required": ["status_reason", "status_changed_at", "superseded_by"],
             "properties": {"status_reason": _MAYBE_TEXT, "status_changed_at": _MAYBE_TIME,
                            "superseded_by": _MAYBE_TEXT}},
        ]
    },
    "DocumentRevoke": {
        "type": "object",
        "required": ["reason"],
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON,
                                  "allOf": [{"pattern": NO_CONTROL}, {"pattern": "\\S"}]}},
    },
    "DocumentSupersede": {
        "type": "object",
        "required": ["reason", "replacement_serial"],
        "additionalProperties": False,
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON,
                       "allOf": [{"pattern": NO_CONTROL}, {"pattern": "\\S"}]},
            "replacement_serial": {"type": "string", "pattern": "^[0-9a-f]{32}$", **_NO_NEWLINE},
        },
    },
    "VerificationResult": {
        "type": "object",
        "required": ["verdict"],
        "properties": {
            "verdict": {"enum": [str(v) for v in Verdict]},
            **dict.fromkeys(("issuer", "issuer_name", "doc_type", "title", "recipient_masked", "reason",
                             "superseded_by", "key_id", "serial", "sha256"), _MAYBE_TEXT),
            "issued_at": _MAYBE_TIME,
            "expires_at": _MAYBE_TIME,
        },
    },
}
