"""The operator part of the /api/v1 OpenAPI document: approve/reject, reconcile now, decommission and
token management (merged into openapi.DOCUMENT)."""

from __future__ import annotations

from typing import Any

from controlplane.accounts.tokens import KNOWN_SCOPES, MAX_NAME, OPERATOR_SCOPES, ORG_RE
from controlplane.tenancy.keys import REASON_MAX, REASON_MIN
from controlplane.web.api.openapi_common import (
    NO_CONTROL,
    REQUEST_ID,
    SLUG,
    errors,
    id_parameter,
    json_body,
    ok,
)

_REQUEST = {"$ref": "#/components/schemas/Request"}
_TOKEN = {"$ref": "#/components/schemas/Token"}
TOKEN_ID = id_parameter("token_id")
# Text that must say something: no control characters, and at least one visible character.
_SAYS_SOMETHING = {"allOf": [{"pattern": NO_CONTROL}, {"pattern": "\\S"}]}
_OPERATOR = " Operator token only."

PATHS: dict[str, Any] = {
    "/api/v1/requests/{request_id}/approve": {
        "post": {
            "operationId": "approveRequest",
            "summary": "Approve a submitted request as the token's operator (scope requests:approve); "
            "never one's own request, never twice: the last approval needed makes it desired state."
            + _OPERATOR,
            "parameters": [REQUEST_ID],
            "requestBody": json_body({"$ref": "#/components/schemas/RequestAction"}, required=False),
            "responses": {**ok(_REQUEST), **errors(400, 401, 403, 404, 409, 502, 503)},
        }
    },
    "/api/v1/requests/{request_id}/reject": {
        "post": {
            "operationId": "rejectRequest",
            "summary": "Reject a submitted request, saying why (scope requests:approve)." + _OPERATOR,
            "parameters": [REQUEST_ID],
            "requestBody": json_body({"$ref": "#/components/schemas/RequestReject"}, required=True),
            "responses": {**ok(_REQUEST), **errors(400, 401, 403, 404, 409)},
        }
    },
    "/api/v1/tenants/{slug}/reconcile": {
        "post": {
            "operationId": "reconcileTenant",
            "summary": "Queue the tenant for the reconciler's next pass (scope tenants:reconcile)."
            + _OPERATOR,
            "parameters": [SLUG],
            "requestBody": json_body({"type": "object", "additionalProperties": False, "maxProperties": 0},
                                     required=False),
            "responses": {
                **ok({"$ref": "#/components/schemas/ReconcileQueued"}, "Queued", status=202),
                **errors(400, 401, 403, 404),
            },
        }
    },
    "/api/v1/tenants/{slug}/decommission": {
        "post": {
            "operationId": "decommissionTenant",
            "summary": "Take the tenant's next decommission stage (disable, archive, retention hold, "
            "delete; scope tenants:decommission). `confirm` must be the tenant's slug: a different one "
            "is a 409 (it names another tenant than the path) and changes nothing." + _OPERATOR,
            "parameters": [SLUG],
            "requestBody": json_body({"$ref": "#/components/schemas/Decommission"}, required=True),
            "responses": {
                **ok({"$ref": "#/components/schemas/DecommissionStage"}),
                **errors(400, 401, 403, 404, 409, 502, 503),
            },
        }
    },
    "/api/v1/tenants/{slug}/keys/rotate": {
        "post": {
            "operationId": "rotateTenantKey",
            "summary": "Sign the tenant's documents with a new version of its signing key from now on "
            "(scope keys:rotate); documents already issued keep verifying. Only a ready tenant's key: "
            "otherwise a 409 and nothing is changed. The reason is audited." + _OPERATOR,
            "parameters": [SLUG],
            "requestBody": json_body({"$ref": "#/components/schemas/KeyRotate"}, required=True),
            "responses": {
                **ok({"$ref": "#/components/schemas/KeyRotated"}),
                **errors(400, 401, 403, 404, 409, 502, 503),
            },
        }
    },
    "/api/v1/tokens": {
        "get": {
            "operationId": "listTokens",
            "summary": "API tokens the caller manages, newest first (scope tokens:manage): an "
            "organisation token's own organisation's, an operator token's all. A sensitive read: "
            "each listing is an audit event",
            "responses": {
                **ok({"type": "object", "required": ["items"],
                      "properties": {"items": {"type": "array", "items": _TOKEN}}}),
                **errors(401, 403),
            },
        },
        "post": {
            "operationId": "createToken",
            "summary": "Create an organisation token (scope tokens:manage). An organisation token "
            "creates for its own organisation, with no scope it lacks and no later expiry; the secret "
            "is in this answer only; the organisation must exist and not be decommissioned. Only an "
            "organisation's own admins grant its scopes: an operator token gets 403. Operator tokens "
            "are made in the console only.",
            "requestBody": json_body({"$ref": "#/components/schemas/TokenCreate"}, required=True),
            "responses": {
                "201": {
                    "description": "Created",
                    "headers": {"Location": {"description": "The token list", "schema": {"type": "string"}}},
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/TokenCreated"}}
                    },
                },
                **errors(400, 401, 403),
            },
        },
    },
    "/api/v1/tokens/{token_id}/revoke": {
        "post": {
            "operationId": "revokeToken",
            "summary": "Revoke a token at once (scope tokens:manage); another organisation's is not found",
            "parameters": [TOKEN_ID],
            "requestBody": json_body({"type": "object", "additionalProperties": False, "maxProperties": 0},
                                     required=False),
            "responses": {**ok(_TOKEN), **errors(400, 401, 403, 404)},
        }
    },
}

_WHEN = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS: dict[str, Any] = {
    "RequestReject": {
        "type": "object",
        "required": ["comment"],
        "additionalProperties": False,
        "properties": {"comment": {"type": "string", "minLength": 1, "maxLength": 500, **_SAYS_SOMETHING}},
    },
    "ReconcileQueued": {
        "type": "object",
        "required": ["slug", "queued"],
        "properties": {"slug": {"type": "string"}, "queued": {"const": True}},
    },
    "Decommission": {
        "type": "object",
        "required": ["confirm"],
        "additionalProperties": False,
        "properties": {
            "confirm": {"type": "string", "maxLength": 64, "description": "The tenant's slug, typed"},
            "retention_days": {"type": "integer", "minimum": 0, "maximum": 36500, "default": 365,
                               "description": "Used by the retention-hold stage"},
        },
    },
    "KeyRotate": {
        "type": "object",
        "required": ["reason"],
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "minLength": REASON_MIN, "maxLength": REASON_MAX,
                                  **_SAYS_SOMETHING, "description": "Why the key is rotated; audited"}},
    },
    "KeyRotated": {
        "type": "object",
        "required": ["slug", "key", "version"],
        "properties": {"slug": {"type": "string"}, "key": {"type": "string"},
                       "version": {"type": "integer", "description": "The version that signs from now on"}},
    },
    "DecommissionStage": {
        "type": "object",
        "required": ["slug", "stage", "phase"],
        "properties": {"slug": {"type": "string"}, "stage": {"type": "string"}, "phase": {"type": "string"}},
    },
    "Token": {
        "type": "object",
        "required": ["id", "name", "org", "operator_token", "prefix", "scopes", "created_by", "created_at",
                     "expires_at", "last_used_at", "revoked_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "org": {"type": ["string", "null"], "description": "null for an operator token"},
            "operator_token": {"type": "boolean"},
            "prefix": {"type": "string"},
            "scopes": {"type": "array", "items": {"enum": sorted({*KNOWN_SCOPES, *OPERATOR_SCOPES})}},
            "created_by": {"type": "string"},
            "created_by_user_id": {"type": ["integer", "null"],
                                   "description": "The person who minted it (the root of a chain of tokens)"},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": _WHEN,
            "last_used_at": _WHEN,
            "revoked_at": _WHEN,
        },
    },
    "TokenCreate": {
        "type": "object",
        "required": ["name", "org", "scopes", "expires_in_days"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, **_SAYS_SOMETHING},
            "org": {"type": "string", "pattern": ORG_RE.pattern, "not": {"pattern": "\\n"}},
            "scopes": {"type": "array", "minItems": 1, "maxItems": len(KNOWN_SCOPES),
                       "items": {"enum": list(KNOWN_SCOPES)}},
            "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 365},
        },
    },
    "TokenCreated": {
        "allOf": [
            _TOKEN,
            {"type": "object", "required": ["secret"],
             "properties": {"secret": {"type": "string", "description": "Shown once, never again"}}},
        ]
    },
}
