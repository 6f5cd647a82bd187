"""JSON API for ministry requests, /api/v1/requests: an organisation token files and follows its own
organisation's requests; an operator token reads every organisation's and approves or rejects them.
Who may do what is the use-cases' decision (requests.service, requests.rules); this layer parses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from controlplane.accounts.service import Actor
from controlplane.backends import Backends
from controlplane.errors import Conflict, InvalidInput, NotFound
from controlplane.requests import service
from controlplane.requests.lifecycle import Kind, State
from controlplane.requests.rules import ENVIRONMENT_NAME, RequestRules, parse_quotas
from controlplane.requests.service import RequestView
from controlplane.storage import as_utc
from controlplane.web.api.api_auth import challenge_on_401, current_api_actor, require_scope
from controlplane.web.api.api_body import read_body, text_field
from controlplane.web.services import services

bp = Blueprint("api_requests", __name__, url_prefix="/api/v1/requests")
challenge_on_401(bp)

MAX_LIST = 500
MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL
ORG_FILTER = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
CREATE_FIELDS = frozenset({"kind", "environment", "quotas", "description", "comment", "submit"})
ACTION_FIELDS = frozenset({"comment"})


def _actor() -> Actor:
    return current_api_actor().as_actor()


def _rules() -> RequestRules:
    return RequestRules.from_settings(services().settings)


def _backends() -> Backends:
    return services().backends


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
    parse_quotas(raw, complete=complete, rules=_rules())
    return raw


@contextmanager
def _state_conflicts() -> Iterator[None]:
    """The body was well formed (checked above, as documented); what the service still refuses
    conflicts with the tenant's current state: an unknown or existing environment, a change that
    changes nothing, a limit below usage.

    That is a 409, not a 400, on purpose: the same body can succeed later (once the environment
    exists, once usage drops), the document cannot list a tenant's environments (they change), and
    a 400 would tell a client the input itself is wrong, which schema-valid input is not."""
    try:
        yield
    except InvalidInput as exc:
        raise Conflict(exc.message, hint=exc.hint) from None


def _request_id(raw: int) -> int:
    if raw > MAX_ID:
        raise NotFound(f"there is no request {raw}")
    return raw


@bp.get("")
@require_scope("requests:read")
def list_requests() -> Response:
    """Requests newest first: an organisation token's own; an operator token's, every organisation's
    (narrowed by ?org=). Optional ?state= and ?limit=."""
    state = request.args.get("state", "")
    if state and state not in {s.value for s in State}:
        raise InvalidInput(f"state: expected one of {', '.join(s.value for s in State)}")
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIST}")
    org = request.args.get("org", "")
    if org and not ORG_FILTER.fullmatch(org):
        raise InvalidInput("org: expected an organisation's slug")
    actor = _actor()
    views = service.list_requests(services().database, actor, org=org or actor.org or None,
                                  state=state or None, limit=int(raw))
    return jsonify(items=[request_json(v) for v in views])


@bp.post("")
@require_scope("requests:write")
def create_request() -> tuple[Response, int, dict[str, str]]:
    """File a request: `kind`, `environment`, `quotas` (nested: {"compute": {"cores": 48}}),
    optional `description`, `comment` and `submit` (default true). Bad input writes nothing."""
    actor = _actor()
    body = read_body(allowed=CREATE_FIELDS, required=True)
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in {k.value for k in Kind}:
        raise InvalidInput("kind: expected \"quota_change\" or \"new_environment\"")
    environment = body.get("environment")
    if not isinstance(environment, str) or not environment:
        raise InvalidInput("environment: expected the environment's name as a string")
    text_field(body, "environment", limit=16)
    if not ENVIRONMENT_NAME.fullmatch(environment):
        raise InvalidInput(f"environment {environment[:16]!r}: environment names are 2-12 lowercase "
                           "letters and digits, starting with a letter")
    quotas = _quotas(body.get("quotas"), complete=kind == Kind.NEW_ENVIRONMENT)
    submit = body.get("submit", True)
    if not isinstance(submit, bool):
        raise InvalidInput("submit: expected true or false")
    description, comment = text_field(body, "description"), text_field(body, "comment")
    with _state_conflicts():
        view = service.create_request(
            services().database, _backends(), actor, org=actor.org, kind=kind, environment=environment,
            quotas=quotas, description=description, comment=comment, submit=submit, rules=_rules(),
        )
    location = url_for("api_requests.get_request", request_id=view.id)
    return jsonify(request_json(view)), 201, {"Location": location}


@bp.get("/<int:request_id>")
@require_scope("requests:read")
def get_request(request_id: int) -> Response:
    """One request the token may see; any other id is simply not found."""
    view = service.get_request(services().database, _actor(), _request_id(request_id))
    return jsonify(request_json(view))


def _comment(*, required: bool = False) -> str:
    return text_field(read_body(allowed=ACTION_FIELDS, required=required), "comment")


@bp.post("/<int:request_id>/submit")
@require_scope("requests:write")
def submit_request(request_id: int) -> Response:
    actor, request_id = _actor(), _request_id(request_id)
    comment = _comment()
    service.get_request(services().database, actor, request_id)  # 404 before touching the cloud
    with _state_conflicts():
        view = service.submit_request(services().database, _backends(), actor, request_id,
                                      comment=comment, rules=_rules())
    return jsonify(request_json(view))


@bp.post("/<int:request_id>/withdraw")
@require_scope("requests:write")
def withdraw_request(request_id: int) -> Response:
    actor, request_id = _actor(), _request_id(request_id)
    view = service.withdraw_request(services().database, actor, request_id, comment=_comment())
    return jsonify(request_json(view))


@bp.post("/<int:request_id>/approve")
@require_scope("requests:approve")
def approve_request(request_id: int) -> Response:
    """An operator token's approval, counted as its operator's (never their own request, never
    twice); the last approval needed makes the change desired state."""
    actor, request_id = _actor(), _request_id(request_id)
    comment = _comment()
    service.get_request(services().database, actor, request_id)  # 404 before touching the cloud
    with _state_conflicts():
        view = service.approve_request(services().database, _backends(), actor, request_id,
                                       comment=comment, rules=_rules())
    return jsonify(request_json(view))


@bp.post("/<int:request_id>/reject")
@require_scope("requests:approve")
def reject_request(request_id: int) -> Response:
    """An operator token's rejection; the comment saying why is required."""
    actor, request_id = _actor(), _request_id(request_id)
    view = service.reject_request(services().database, actor, request_id, comment=_comment(required=True))
    return jsonify(request_json(view))
