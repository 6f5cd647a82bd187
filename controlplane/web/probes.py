"""Probes: /healthz (the process is alive), /readyz (dependencies answer: details only for staff
and loopback callers), /metrics (Prometheus)."""

from __future__ import annotations

import ipaddress
import threading
import time

from flask import Blueprint, Response, abort, current_app, jsonify, request

from controlplane.accounts.models import Role
from controlplane.backends.health import HealthCheck
from controlplane.doctor import check_database, check_everything
from controlplane.errors import NotAuthenticated
from controlplane.metrics import BACKEND_UP, render_latest
from controlplane.web import context
from controlplane.web.bearer import current_api_actor, has_bearer

bp = Blueprint("probes", __name__)

# Readiness is polled by load balancers every few seconds; checking OpenStack on each poll
# would put the control plane's own probes among Keystone's busiest clients.
CACHE_SECONDS = 5.0
_cache_lock = threading.Lock()


def current_health(*, fresh: bool = False) -> list[HealthCheck]:
    ext = current_app.extensions
    with _cache_lock:
        cached = ext.get("controlplane.health_cache")
        if not fresh and cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return list(cached[1])
    if context.settings().role == "verification":
        # The shared-verification role reads the registry and the published trust list: nothing else.
        checks = [check_database(context.database())]
    else:
        backends, error = context.backends()
        checks = check_everything(context.database(), backends, error,
                                  witness_url=context.settings().witness_url)
    for check in checks:
        BACKEND_UP.labels(check.name).set(1 if check.ok else 0)
    with _cache_lock:
        ext["controlplane.health_cache"] = (time.monotonic(), checks)
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
    if context.settings().role == "verification":
        return False  # the public verifier has no staff sessions or tokens to check
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
    token = context.settings().metrics_token
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
