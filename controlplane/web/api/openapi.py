"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from flask import Blueprint, Response, jsonify

from controlplane import __version__
from controlplane.requests.rules import DEFAULT_CEILINGS, QUOTA_KEYS
from controlplane.web.api import openapi_audit, openapi_documents, openapi_operator
from controlplane.web.api.openapi_common import NO_CONTROL, REQUEST_ID, SLUG, errors, ok

# Parts of the document kept in their own modules: each exposes PATHS and SCHEMAS, merged below.
PARTS: tuple[ModuleType, ...] = (openapi_operator, openapi_documents, openapi_audit)

bp = Blueprint("api_docs", __name__)

REQUEST_STATES = ["draft", "submitted", "approved", "rejected", "applied", "failed", "withdrawn"]
_REQUEST = {"$ref": "#/components/schemas/Request"}
_REQUEST_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": _REQUEST}},
}
# Quota bodies: {section: {quota name: whole number from 0 to its ceiling}}; the API names every problem.
QUOTAS_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        section: {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                key.split(".", 1)[1]: {"type": "integer", "minimum": 0, "maximum": DEFAULT_CEILINGS[key]}
                for key in QUOTA_KEYS
                if key.startswith(f"{section}.")
            },
        }
        for section in ("compute", "network", "volume")
    },
}
# A new environment needs every quota; a quota change names only those it changes.
_EVERY_QUOTA = {
    "required": ["compute", "network", "volume"],
    "properties": {
        section: {"required": [k.split(".", 1)[1] for k in QUOTA_KEYS if k.startswith(f"{section}.")]}
        for section in ("compute", "network", "volume")
    },
}
_ACTION_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RequestAction"}}},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "National data-center control plane API",
        "version": __version__,
        "description": "For ministry systems, with a scoped organisation API token, and for operators, "
        "with a short-lived operator token made in the console after MFA (Authorization: Bearer cpt_...).",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/whoami": {
            "get": {
                "operationId": "whoami",
                "summary": "The organisation and scopes of the presented token",
                "responses": {**ok({"$ref": "#/components/schemas/WhoAmI"}), **errors(401)},
            }
        },
        "/api/v1/tenants": {
            "get": {
                "operationId": "listTenants",
                "summary": "The token's own organisation's tenant; every tenant for an operator token "
                "(scope tenants:read)",
                "responses": {
                    **ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Tenant"}}
                            },
                        }
                    ),
                    **errors(401, 403),
                },
            }
        },
        "/api/v1/tenants/{slug}": {
            "get": {
                "operationId": "getTenant",
                "summary": "One tenant with its spec (scope tenants:read)",
                "parameters": [SLUG],
                "responses": {**ok({"$ref": "#/components/schemas/TenantDetail"}), **errors(401, 403, 404)},
            }
        },
        "/api/v1/tenants/{slug}/events": {
            "get": {
                "operationId": "tenantEvents",
                "summary": "Recent reconcile events of a tenant (scope tenants:read)",
                "parameters": [
                    SLUG,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    },
                ],
                "responses": {
                    **ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                            },
                        }
                    ),
                    **errors(400, 401, 403, 404),
                },
            }
        },
        "/api/v1/requests": {
            "get": {
                "operationId": "listRequests",
                "summary": "Requests newest first (scope requests:read): an organisation token's own, "
                "an operator token's every organisation's",
                "parameters": [
                    {
                        "name": "org",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "pattern": "^[a-z][a-z0-9-]{1,63}$",
                            "not": {"pattern": "\\n"},
                        },
                    },
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": REQUEST_STATES},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                    },
                ],
                "responses": {**ok(_REQUEST_LIST), **errors(400, 401, 403)},
            },
            "post": {
                "operationId": "createRequest",
                "summary": "Request a quota change or a new environment for the token's organisation "
                "(scope requests:write); submitted at once unless submit is false",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/RequestCreate"}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "Created (a draft, submitted, or already auto-approved)",
                        "headers": {
                            "Location": {"description": "The request's URL", "schema": {"type": "string"}}
                        },
                        "content": {"application/json": {"schema": _REQUEST}},
                    },
                    **errors(400, 401, 403, 404, 409, 502, 503),
                },
            },
        },
        "/api/v1/requests/{request_id}": {
            "get": {
                "operationId": "getRequest",
                "summary": "One request of the token's organisation with every step (scope requests:read)",
                "parameters": [REQUEST_ID],
                "responses": {**ok(_REQUEST), **errors(401, 403, 404)},
            }
        },
        "/api/v1/requests/{request_id}/submit": {
            "post": {
                "operationId": "submitRequest",
                "summary": "Submit a draft for approval (scope requests:write)",
                "parameters": [REQUEST_ID],
                "requestBody": _ACTION_BODY,
                "responses": {**ok(_REQUEST), **errors(400, 401, 403, 404, 409, 502, 503)},
            }
        },
        "/api/v1/requests/{request_id}/withdraw": {
            "post": {
                "operationId": "withdrawRequest",
                "summary": "Withdraw a draft or submitted request (scope requests:write)",
                "parameters": [REQUEST_ID],
                "requestBody": _ACTION_BODY,
                "responses": {**ok(_REQUEST), **errors(400, 401, 403, 404, 409)},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "cpt_<prefix>_<secret>"}
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": "string"},
                },
            },
            "WhoAmI": {
                "type": "object",
                "required": ["org", "operator", "scopes"],
                "properties": {
                    "org": {"type": ["string", "null"], "description": "null for an operator token"},
                    "operator": {"type": ["string", "null"], "description": "the operator an operator "
                                 "token acts as; null for an organisation token"},
                    "scopes": {"type": "array", "items": {"type": "string"}},
                    "token": {"type": "object"},
                },
            },
            "Tenant": {
                "type": "object",
                "required": [
                    "slug",
                    "name",
                    "kind",
                    "phase",
                    "generation",
                    "applied_generation",
                    "drift",
                    "environments",
                ],
                "properties": {
                    "slug": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"enum": ["ministry", "governorate", "agency", "shared-service"]},
                    "phase": {"type": "string"},
                    "generation": {"type": "integer"},
                    "applied_generation": {"type": "integer"},
                    "drift": {"type": "integer"},
                    "last_error": {"type": ["string", "null"]},
                    "last_reconciled_at": {"type": ["string", "null"], "format": "date-time"},
                    "environments": {"type": "array", "items": {"type": "string"}},
                },
            },
            "TenantDetail": {
                "allOf": [
                    {"$ref": "#/components/schemas/Tenant"},
                    {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}},
                ]
            },
            "RequestCreate": {
                "type": "object",
                "required": ["kind", "environment", "quotas"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"enum": ["quota_change", "new_environment"]},
                    "environment": {
                        "type": "string",
                        "description": "An existing environment (quota_change) or the new one's name: "
                        "2-12 lowercase letters and digits, starting with a letter",
                        "pattern": "^[a-z][a-z0-9]{1,11}$",
                        "not": {"pattern": "\\n"},  # "$" would also match before a final newline
                    },
                    "quotas": {
                        **QUOTAS_SCHEMA,
                        "description": "Only the quotas to change (quota_change) or every quota "
                        "(new_environment)",
                    },
                    "description": {"type": "string", "maxLength": 500, "pattern": NO_CONTROL},
                    "comment": {"type": "string", "maxLength": 500, "pattern": NO_CONTROL},
                    "submit": {"type": "boolean", "default": True},
                },
                "if": {"required": ["kind"], "properties": {"kind": {"const": "new_environment"}}},
                "then": {"properties": {"quotas": _EVERY_QUOTA}},
            },
            "RequestAction": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"comment": {"type": "string", "maxLength": 500, "pattern": NO_CONTROL}},
            },
            "RequestStep": {
                "type": "object",
                "required": ["step", "actor", "at", "comment"],
                "properties": {
                    "step": {
                        "enum": [
                            "created",
                            "submitted",
                            "approved",
                            "auto-approved",
                            "rejected",
                            "applied",
                            "failed",
                            "withdrawn",
                        ]
                    },
                    "actor": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                    "comment": {"type": "string"},
                },
            },
            "Request": {
                "type": "object",
                "required": [
                    "id",
                    "org",
                    "kind",
                    "environment",
                    "quotas",
                    "description",
                    "state",
                    "created_by",
                    "created_at",
                    "required_approvals",
                    "approvals",
                    "applied_generation",
                    "outcome",
                    "steps",
                ],
                "properties": {
                    "id": {"type": "integer"},
                    "org": {"type": "string"},
                    "kind": {"enum": ["quota_change", "new_environment"]},
                    "environment": {"type": "string"},
                    "quotas": {"type": "object"},
                    "description": {"type": "string"},
                    "state": {"enum": REQUEST_STATES},
                    "created_by": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "required_approvals": {"type": "integer", "minimum": 1},
                    "approvals": {"type": "array", "items": {"type": "string"}},
                    "applied_generation": {"type": ["integer", "null"]},
                    "outcome": {"type": "string"},
                    "steps": {"type": "array", "items": {"$ref": "#/components/schemas/RequestStep"}},
                },
            },
            "Event": {
                "type": "object",
                "required": ["time", "kind", "message"],
                "properties": {
                    "time": {"type": "string", "format": "date-time"},
                    "kind": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


for _part in PARTS:
    DOCUMENT["paths"].update(_part.PATHS)
    DOCUMENT["components"]["schemas"].update(_part.SCHEMAS)


@bp.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    return jsonify(DOCUMENT)
