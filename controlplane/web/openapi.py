"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from controlplane import __version__

bp = Blueprint("api_docs", __name__)

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid input",
        401: "Missing, wrong, revoked or expired token",
        403: "The token lacks the scope",
        404: "Not found (or not visible to this token)",
    }
    return {
        str(c): {"description": reasons[c], "content": {"application/json": {"schema": _ERROR}}}
        for c in codes
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,30}[a-z0-9]$"},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "National data-center control plane API",
        "version": __version__,
        "description": "For ministry systems, with a scoped API token (Authorization: Bearer cpt_...).",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/whoami": {
            "get": {
                "operationId": "whoami",
                "summary": "The organisation and scopes of the presented token",
                "responses": {**_ok({"$ref": "#/components/schemas/WhoAmI"}), **_errors(401)},
            }
        },
        "/api/v1/tenants": {
            "get": {
                "operationId": "listTenants",
                "summary": "The token's own organisation's tenant (scope tenants:read)",
                "responses": {
                    **_ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Tenant"}}
                            },
                        }
                    ),
                    **_errors(401, 403),
                },
            }
        },
        "/api/v1/tenants/{slug}": {
            "get": {
                "operationId": "getTenant",
                "summary": "One tenant with its spec (scope tenants:read)",
                "parameters": [SLUG],
                "responses": {**_ok({"$ref": "#/components/schemas/TenantDetail"}), **_errors(401, 403, 404)},
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
                    **_ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                            },
                        }
                    ),
                    **_errors(400, 401, 403, 404),
                },
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
                "required": ["org", "scopes"],
                "properties": {
                    "org": {"type": "string"},
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


@bp.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    return jsonify(DOCUMENT)
