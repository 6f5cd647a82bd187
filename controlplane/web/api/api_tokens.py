"""JSON API for API tokens, /api/v1/tokens: list, create and revoke, as on the console's token page.

An organisation token with `tokens:manage` manages its own organisation's tokens and grants no more
than it has; an operator token lists and revokes any organisation's but never creates one (only an
organisation's own admins grant its scopes). Operator tokens themselves are made only in the console,
by an operator signed in with MFA (accounts.tokens.create_operator_token)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from controlplane.accounts.models import ApiToken
from controlplane.accounts.tokens import (
    MAX_NAME,
    MAX_ORG_TOKEN_DAYS,
    check_may_grant,
    create_token,
    list_tokens,
    revoke_token,
)
from controlplane.errors import InvalidInput, NotFound
from controlplane.storage import as_utc, utcnow
from controlplane.tenancy.registry import live_org_slugs
from controlplane.web.api.api_auth import challenge_on_401, current_api_actor, require_scope
from controlplane.web.api.api_body import read_body, text_field, whole_number
from controlplane.web.services import services

bp = Blueprint("api_tokens", __name__, url_prefix="/api/v1/tokens")
challenge_on_401(bp)

MAX_ID = 2**31 - 1
MAX_DAYS = MAX_ORG_TOKEN_DAYS  # a token made through the API always expires: at most a year
CREATE_FIELDS = frozenset({"name", "org", "scopes", "expires_in_days"})


def _when(value: Any) -> str | None:
    return as_utc(value).isoformat() if value else None


def token_json(t: ApiToken) -> dict[str, Any]:
    """A token as listed: never its secret (only the hash is stored anyway)."""
    return {
        "id": t.id,
        "name": t.name,
        "org": t.org or None,
        "operator_token": t.user_id is not None,
        "prefix": t.prefix,
        "scopes": list(t.scopes),
        "created_by": t.created_by,
        "created_by_user_id": t.created_by_user_id,
        "created_at": _when(t.created_at),
        "expires_at": _when(t.expires_at),
        "last_used_at": _when(t.last_used_at),
        "revoked_at": _when(t.revoked_at),
    }


@bp.get("")
@require_scope("tokens:manage")
def list_api_tokens() -> Response:
    """Tokens the caller may manage, newest first: an organisation token's own organisation's; an
    operator token's, all."""
    with services().database.transaction() as s:
        items = [token_json(t) for t in list_tokens(s, current_api_actor().as_actor())]
    return jsonify(items=items)


@bp.post("")
@require_scope("tokens:manage")
def create_api_token() -> tuple[Response, int, dict[str, str]]:
    """A new organisation token: `name`, `scopes`, `expires_in_days` (1-365, required), and `org`
    (its own: an organisation token grants only its own organisation's scopes; an operator token none,
    403). The secret is in this answer only."""
    api = current_api_actor()
    body = read_body(allowed=CREATE_FIELDS, required=True)
    name = text_field(body, "name", limit=MAX_NAME)
    org = text_field(body, "org", limit=64) or api.org
    check_may_grant(api.as_actor(), org)  # an operator token is refused before its input is judged
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
        raise InvalidInput("scopes: expected a list of scope names")
    if "expires_in_days" not in body:
        raise InvalidInput(f"expires_in_days: required; a token made through the API expires "
                           f"within {MAX_DAYS} days")
    days = whole_number(body, "expires_in_days", default=0, low=1, high=MAX_DAYS)
    with services().database.transaction() as s:
        created = create_token(s, api.as_actor(), name=name, org=org, scopes=scopes,
                               expires_at=utcnow() + timedelta(days=days), known_orgs=live_org_slugs(s))
        out = {**token_json(created.token), "secret": created.secret}
    return jsonify(out), 201, {"Location": url_for("api_tokens.list_api_tokens")}


@bp.post("/<int:token_id>/revoke")
@require_scope("tokens:manage")
def revoke_api_token(token_id: int) -> Response:
    """Revoke a token at once (again is harmless); another organisation's token is not found."""
    if token_id > MAX_ID:
        raise NotFound("no such API token")
    read_body(allowed=frozenset(), required=False)
    with services().database.transaction() as s:
        return jsonify(token_json(revoke_token(s, current_api_actor().as_actor(), token_id)))
