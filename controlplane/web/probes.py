"""Probes: /healthz (the process is alive), /readyz (dependencies answer: details only for staff
and loopback callers), /metrics (Prometheus)."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, abort, jsonify, request

from controlplane.backends.health import HealthCheck
from controlplane.doctor import check_database, check_everything
from controlplane.errors import ControlPlaneError, NotAuthenticated, ServiceUnavailable
from controlplane.metrics import BACKEND_UP, render_latest
from controlplane.web import context
from controlplane.web.services import services

bp = Blueprint("probes", __name__)

# Readiness is polled by load balancers every few seconds; checking OpenStack on each poll
# would put the control plane's own probes among Keystone's busiest clients.
CACHE_SECONDS = 5.0


def current_health(*, fresh: bool = False) -> list[HealthCheck]:
    held = services()
    cached = None if fresh else held.cached_health(CACHE_SECONDS)
    if cached is not None:
        return cached
    if held.settings.role == "verification":
        # The shared-verification role reads the registry and the published trust list: nothing else.
        checks = [check_database(held.database)]
    else:
        try:
            backends, error = held.backends, None
        except ServiceUnavailable as exc:  # the doctor reports the adapter's own problem
            backends, error = None, exc.__cause__ if isinstance(exc.__cause__, ControlPlaneError) else exc
        checks = check_everything(held.database, backends, error, witness_url=held.settings.witness_url)
    for check in checks:
        BACKEND_UP.labels(check.name).set(1 if check.ok else 0)
    held.remember_health(checks)
    return checks


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


def _from_loopback() -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _may_see_details() -> bool:
    """Check details name file paths, the database URL, endpoints and versions: a map for an
    attacker. Loopback callers and staff (a console session, an operator token) see them."""
    if _from_loopback():
        return True
    if services().settings.role == "verification":
        return False  # the public verifier has no staff sessions or tokens to check
    # Imported here: the verification role's process never loads the accounts code.
    from controlplane.accounts.models import Role
    from controlplane.web.bearer import current_api_actor, has_bearer

    actor = context.actor()
    if actor is not None and actor.role in (Role.OPERATOR, Role.AUDITOR):
        return True
    if has_bearer():
        try:
            return bool(current_api_actor().operator)
        except NotAuthenticated:
            return False
    return False


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = current_health()
    ready = all(c.ok for c in checks)
    body: dict[str, object] = {"status": "ready" if ready else "not ready"}
    if _may_see_details():
        body["checks"] = [
            {"name": c.name, "ok": c.ok, "detail": c.detail, "version": c.version,
             "hint": c.hint} for c in checks
        ]
    return jsonify(body), 200 if ready else 503


def _metrics_allowed() -> bool:
    """Metrics reveal tenant activity: loopback scrapers only, or the configured bearer token."""
    token = services().settings.metrics_token
    if token:
        return request.headers.get("Authorization", "") == f"Bearer {token}"
    return _from_loopback()


@bp.get("/metrics")
def metrics() -> Response:
    if not _metrics_allowed():
        abort(403, "metrics are served to loopback scrapers or with the metrics bearer token")
    payload, content_type = render_latest()
    return Response(payload, mimetype=content_type.split(";")[0],
                    headers={"Content-Type": content_type})
