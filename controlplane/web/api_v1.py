"""The JSON API, /api/v1: bearer-token callers (ministry systems). For now only `whoami`."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from controlplane.errors import NotAuthenticated
from controlplane.web.api_auth import current_api_actor, has_bearer

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@bp.before_request
def _csrf_unless_bearer() -> None:
    """The blueprint is CSRF-exempt for bearer calls only: a browser cannot forge that header,
    but a cookie-carrying request still needs the CSRF token."""
    if request.method in _UNSAFE and not has_bearer():
        current_app.extensions["csrf"].protect()


@bp.errorhandler(NotAuthenticated)
def _not_authenticated(exc: NotAuthenticated) -> tuple[Response, int]:
    response = jsonify(exc.to_dict())
    response.headers["WWW-Authenticate"] = 'Bearer realm="controlplane"'
    return response, exc.status


@bp.get("/whoami")
def whoami() -> Response:
    """Which organisation and scopes the presented token carries."""
    actor = current_api_actor()
    return jsonify(org=actor.org, scopes=sorted(actor.scopes),
                   token={"name": actor.name, "prefix": actor.prefix})
