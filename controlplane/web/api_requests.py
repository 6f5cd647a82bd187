"""JSON API for ministry requests, /api/v1/requests: a ministry system files and follows its own
organisation's requests with a scoped token. Approving stays an operator's console action."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from flask import Blueprint, Response, jsonify, request, url_for

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.backends import Backends
from controlplane.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from controlplane.requests import service
from controlplane.requests.lifecycle import Kind, State
from controlplane.requests.rules import ENVIRONMENT_NAME, MAX_TEXT, RequestRules, parse_quotas
from controlplane.requests.service import RequestView
from controlplane.storage import as_utc
from controlplane.web import context
from controlplane.web.api_auth import current_api_actor, require_scope

bp = Blueprint("api_requests", __name__, url_prefix="/api/v1/requests")

MAX_BODY = 16 * 1024  # a full new-environment request is well under 1 KiB
MAX_LIST = 500
MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL
CREATE_FIELDS = frozenset({"kind", "environment", "quotas", "description", "comment", "submit"})
ACTION_FIELDS = frozenset({"comment"})
# C0 controls other than tab and newlines (PostgreSQL refuses NUL in text; the rest is never wanted)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TokenActor(Actor):
    """A ministry system acting through an API token with `requests:write`: it may file its own
    organisation's requests like an org admin, and is recorded as ``token:<prefix>``."""

    @property
    def audit_name(self) -> str:
        return f"token:{self.username}"


def _token_actor() -> Actor:
    api = current_api_actor()
    return TokenActor(user_id=0, username=api.prefix, role=Role.ORG_ADMIN, org=api.org)


def _backends() -> Backends:
    backends, error = context.backends()
    if backends is None:
        raise error or InvalidInput("the cloud backends are not configured")
    return backends


def request_json(view: RequestView) -> dict[str, Any]:
    payload = view.payload
    return {
        "id": view.id,
        "org": view.org,
        "kind": view.kind,
        "environment": view.environment,
        "quotas": payload.get("quotas", {}),
        "description": str(payload.get("description", "")),
        "state": view.state,
        "created_by": view.created_by,
        "created_at": as_utc(view.created_at).isoformat(),
        "required_approvals": view.required_approvals,
        "approvals": list(view.approvals),
        "applied_generation": view.applied_generation,
        "outcome": view.outcome,
        "steps": [
            {"step": s.step, "actor": s.actor, "at": as_utc(s.at).isoformat(), "comment": s.comment}
            for s in view.steps
        ],
    }


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def read_body(*, allowed: frozenset[str], required: bool) -> dict[str, Any]:
    """The JSON object of the request body, checked before anything else happens: size, syntax,
    type, known fields. An optional body may be empty."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise InvalidInput(f"the request body is {length} bytes; at most {MAX_BODY} are accepted")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise InvalidInput(f"the request body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        if required:
            raise InvalidInput("send a JSON object (Content-Type: application/json)")
        return {}
    if request.mimetype != "application/json":
        raise InvalidInput(f"expected Content-Type application/json, got {request.mimetype or 'none'!r}")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"expected a JSON object, got {type(body).__name__}")
    unknown = sorted(str(k)[:40] for k in body if k not in allowed)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return body


def _text(body: dict[str, Any], name: str, *, limit: int = MAX_TEXT) -> str:
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


def _quotas(raw: object, *, complete: bool) -> dict[str, Any]:
    """The body's quotas, checked in shape, type and range here (400); whether they make sense for
    the tenant as it is now is the service's question (409)."""
    if not isinstance(raw, dict):
        raise InvalidInput("quotas: expected an object such as {\"compute\": {\"cores\": 48}}")
    empty = sorted(str(k)[:40] for k, v in raw.items() if isinstance(v, dict) and not v)
    if empty:
        raise InvalidInput(f"quotas: {', '.join(empty)}: name at least one quota, or leave the section out")
    # JSON Schema counts 48.0 as an integer, so the API does too; 48.5 stays refused
    raw = {
        section: {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}
        if isinstance(values, dict) else values
        for section, values in raw.items()
    }
    parse_quotas(raw, complete=complete, rules=RequestRules())
    return raw


@contextmanager
def _state_conflicts() -> Iterator[None]:
    """The body was well formed (checked above, as documented); what the service still refuses
    conflicts with the tenant's current state: an unknown or existing environment, a change that
    changes nothing, a limit below usage. That is a 409, not a 400."""
    try:
        yield
    except InvalidInput as exc:
        raise Conflict(exc.message, hint=exc.hint) from None


def _request_id(raw: int) -> int:
    if raw > MAX_ID:
        raise NotFound(f"there is no request {raw}")
    return raw


@bp.errorhandler(NotAuthenticated)
def _not_authenticated(exc: NotAuthenticated) -> tuple[Response, int]:
    response = jsonify(exc.to_dict())
    response.headers["WWW-Authenticate"] = 'Bearer realm="controlplane"'
    return response, exc.status


@bp.get("")
@require_scope("requests:read")
def list_requests() -> Response:
    """The token's organisation's requests, newest first; optional ?state= and ?limit=."""
    state = request.args.get("state", "")
    if state and state not in {s.value for s in State}:
        raise InvalidInput(f"state: expected one of {', '.join(s.value for s in State)}")
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIST}")
    actor = _token_actor()
    views = service.list_requests(context.database(), actor, org=actor.org, state=state or None,
                                  limit=int(raw))
    return jsonify(items=[request_json(v) for v in views])


@bp.post("")
@require_scope("requests:write")
def create_request() -> tuple[Response, int, dict[str, str]]:
    """File a request: `kind`, `environment`, `quotas` (nested: {"compute": {"cores": 48}}),
    optional `description`, `comment` and `submit` (default true). Bad input writes nothing."""
    actor = _token_actor()
    body = read_body(allowed=CREATE_FIELDS, required=True)
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in {k.value for k in Kind}:
        raise InvalidInput("kind: expected \"quota_change\" or \"new_environment\"")
    environment = body.get("environment")
    if not isinstance(environment, str) or not environment:
        raise InvalidInput("environment: expected the environment's name as a string")
    _text(body, "environment", limit=16)
    if not ENVIRONMENT_NAME.fullmatch(environment):
        raise InvalidInput(f"environment {environment[:16]!r}: environment names are 2-12 lowercase "
                           "letters and digits, starting with a letter")
    quotas = _quotas(body.get("quotas"), complete=kind == Kind.NEW_ENVIRONMENT)
    submit = body.get("submit", True)
    if not isinstance(submit, bool):
        raise InvalidInput("submit: expected true or false")
    description, comment = _text(body, "description"), _text(body, "comment")
    with _state_conflicts():
        view = service.create_request(
            context.database(), _backends(), actor, org=actor.org, kind=kind, environment=environment,
            quotas=quotas, description=description, comment=comment, submit=submit,
        )
    location = url_for("api_requests.get_request", request_id=view.id)
    return jsonify(request_json(view)), 201, {"Location": location}


@bp.get("/<int:request_id>")
@require_scope("requests:read")
def get_request(request_id: int) -> Response:
    """One request of the token's organisation; any other id is simply not found."""
    view = service.get_request(context.database(), _token_actor(), _request_id(request_id))
    return jsonify(request_json(view))


@bp.post("/<int:request_id>/submit")
@require_scope("requests:write")
def submit_request(request_id: int) -> Response:
    actor = _token_actor()
    request_id = _request_id(request_id)
    comment = _text(read_body(allowed=ACTION_FIELDS, required=False), "comment")
    service.get_request(context.database(), actor, request_id)  # 404 before touching the cloud
    with _state_conflicts():
        view = service.submit_request(context.database(), _backends(), actor, request_id, comment=comment)
    return jsonify(request_json(view))


@bp.post("/<int:request_id>/withdraw")
@require_scope("requests:write")
def withdraw_request(request_id: int) -> Response:
    actor = _token_actor()
    request_id = _request_id(request_id)
    comment = _text(read_body(allowed=ACTION_FIELDS, required=False), "comment")
    view = service.withdraw_request(context.database(), actor, request_id, comment=comment)
    return jsonify(request_json(view))
