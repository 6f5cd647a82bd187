"""Building blocks of the /api/v1 OpenAPI document shared by its parts: error answers, path ids."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
REASONS = {
    400: "Invalid input; nothing was changed",
    401: "Missing, wrong, revoked or expired token",
    403: "The token lacks the scope, or its holder may not do this",
    404: "Not found (or not visible to this token)",
    409: "Conflicts with the current state of the request or the tenant; nothing was changed",
    502: "A backend (OpenStack) refused or failed; nothing was changed",
    503: "A backend (OpenStack) is unavailable for now; nothing was changed, retry later",
}
# Free text the API takes: no control characters (tab and newlines are fine), as api_body checks.
NO_CONTROL = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


def errors(*codes: int) -> dict[str, Any]:
    """The documented error answers of an operation, all with the Error body."""
    return {
        str(c): {"description": REASONS[c], "content": {"application/json": {"schema": ERROR}}}
        for c in codes
    }


def ok(schema: dict[str, Any], description: str = "OK", status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {"application/json": {"schema": schema}}}}


def json_body(schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def id_parameter(name: str) -> dict[str, Any]:
    """A numeric path id (the id columns are 32-bit integers on PostgreSQL)."""
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}


REQUEST_ID = id_parameter("request_id")
SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,30}[a-z0-9]$"},
}
