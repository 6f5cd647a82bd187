"""JSON request bodies of /api/v1: size, syntax, type and known fields checked before anything else."""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from flask import request

from controlplane.errors import ControlPlaneError, InvalidInput
from controlplane.requests.rules import MAX_TEXT

MAX_BODY = 16 * 1024  # a full new-environment request is well under 1 KiB
# C0 controls other than tab and newlines (PostgreSQL refuses NUL in text; the rest is never wanted)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(*, required: bool, limit: int = MAX_BODY,
              too_large: type[ControlPlaneError] = InvalidInput) -> Any:
    """The parsed body (any JSON value; {} when optional and empty), checked for size, content type
    and syntax before anything else happens. `too_large` is what an oversized body raises: the
    documents API answers 413, the older endpoints document 400."""
    if limit > (request.max_content_length or 0):
        request.max_content_length = limit  # a batch may exceed the app's MAX_CONTENT_LENGTH
    length = request.content_length
    if length is not None and length > limit:
        raise too_large(f"the request body is {length} bytes; at most {limit} are accepted")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise too_large(f"the request body is larger than {limit} bytes")
    if not raw.strip():
        if required:
            raise InvalidInput("send a JSON object (Content-Type: application/json)")
        return {}
    if request.mimetype != "application/json":
        raise InvalidInput(f"expected Content-Type application/json, got {request.mimetype or 'none'!r}")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {str(exc)[:120]}") from None


def json_object(value: object, allowed: frozenset[str], *, where: str = "") -> dict[str, Any]:
    """`value` as a JSON object with only `allowed` keys; `where` ("body") prefixes the error."""
    prefix = f"{where}: " if where else ""
    if not isinstance(value, dict):
        raise InvalidInput(f"{prefix}expected a JSON object, got {type(value).__name__}")
    unknown = sorted(str(k)[:40] for k in value if k not in allowed)
    if unknown:
        raise InvalidInput(f"{prefix}unknown field(s): {', '.join(unknown)}; "
                           f"allowed: {', '.join(sorted(allowed))}")
    return value


def read_body(*, allowed: frozenset[str], required: bool) -> dict[str, Any]:
    """The JSON object of the request body, checked before anything else happens: size, syntax,
    type, known fields. An optional body may be empty."""
    return json_object(read_json(required=required), allowed)


def text_field(body: dict[str, Any], name: str, *, limit: int = MAX_TEXT) -> str:
    """A string field of `body` ("" when absent): a string, at most `limit` characters, no controls."""
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInput(f"{name}: at most {limit} characters, got {len(value)}")
    if _CONTROL.search(value):
        raise InvalidInput(f"{name}: control characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name}: not valid Unicode text") from None
    return value


def whole_number(body: dict[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    """An integer field of `body` within [low, high]; 48.0 counts as 48, as JSON Schema says."""
    value = body.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name}: expected a whole number from {low} to {high}")
    return value
