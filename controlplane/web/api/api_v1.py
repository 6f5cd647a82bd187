"""The JSON API, /api/v1: bearer-token callers (ministry systems, operators). Here: `whoami`."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from controlplane.web.api.api_auth import challenge_on_401, current_api_actor, has_bearer

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
challenge_on_401(bp)

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@bp.before_request
def _csrf_unless_bearer() -> None:
    """The blueprint is CSRF-exempt for bearer calls only: a browser cannot forge that header,
    but a cookie-carrying request still needs the CSRF token."""
    if request.method in _UNSAFE and not has_bearer():
        current_app.extensions["csrf"].protect()


@bp.get("/whoami")
def whoami() -> Response:
    """Which organisation (or operator) and scopes the presented token carries."""
    actor = current_api_actor()
    return jsonify(org=actor.org or None, operator=actor.operator or None, scopes=sorted(actor.scopes),
                   token={"name": actor.name, "prefix": actor.prefix,
                          "expires_at": actor.expires_at.isoformat() if actor.expires_at else None})
