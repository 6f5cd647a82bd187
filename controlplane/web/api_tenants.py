"""JSON API for tenants, /api/v1/tenants: a ministry system reads its own organisation's tenant."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from controlplane.errors import InvalidInput, NotFound
from controlplane.storage import as_utc
from controlplane.tenancy import registry
from controlplane.tenancy.models import Tenant
from controlplane.web import context
from controlplane.web.api_auth import current_api_actor, require_scope

bp = Blueprint("api_tenants", __name__, url_prefix="/api/v1/tenants")

MAX_EVENTS = 500


def tenant_json(t: Tenant) -> dict[str, Any]:
    return {
        "slug": t.slug,
        "name": t.name_en,
        "kind": t.kind,
        "phase": t.phase,
        "generation": t.generation,
        "applied_generation": t.applied_generation,
        "drift": t.drift_count,
        "last_error": t.last_error or None,
        "last_reconciled_at": as_utc(t.last_reconciled_at).isoformat() if t.last_reconciled_at else None,
        "environments": sorted(t.spec.get("environments", {})),
    }


def _visible(slug: str) -> Tenant:
    """The tenant if the token's organisation owns it; any other slug is simply not found."""
    actor = current_api_actor()
    with context.database().transaction() as s:
        tenant = s.get(Tenant, slug) if slug == actor.org else None
        if tenant is None:
            raise NotFound(f"no tenant {slug!r} visible to this token")
        s.expunge(tenant)
    return tenant


@bp.get("")
@require_scope("tenants:read")
def list_tenants() -> Response:
    actor = current_api_actor()
    with context.database().transaction() as s:
        own = s.get(Tenant, actor.org)
        items = [tenant_json(own)] if own is not None else []
    return jsonify(items=items)


@bp.get("/<slug>")
@require_scope("tenants:read")
def get_tenant(slug: str) -> Response:
    tenant = _visible(slug)
    body = tenant_json(tenant)
    body["spec"] = tenant.spec
    return jsonify(body)


@bp.get("/<slug>/events")
@require_scope("tenants:read")
def tenant_events(slug: str) -> Response:
    _visible(slug)
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_EVENTS:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_EVENTS}")
    with context.database().transaction() as s:
        events = registry.recent_events(s, slug, limit=int(raw))
        items = [{"time": as_utc(e.occurred_at).isoformat(), "kind": e.kind, "message": e.message}
                 for e in events]
    return jsonify(items=items)
