"""JSON API for tenants, /api/v1/tenants: an organisation token reads its own organisation's tenant;
an operator token reads every tenant, queues a reconcile and takes decommission stages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from controlplane.accounts.admin import close_organisation
from controlplane.errors import Conflict, InvalidInput, NotFound
from controlplane.storage import as_utc
from controlplane.tenancy import decommission as dec
from controlplane.tenancy import registry
from controlplane.tenancy.handoff import ADVANCE_DECOMMISSION, ROTATE_KEY, queue_task
from controlplane.tenancy.keys import check_reason, rotate_signing_key
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.service import queue_reconcile
from controlplane.web.api.api_auth import challenge_on_401, current_api_actor, require_scope
from controlplane.web.api.api_body import read_body, whole_number
from controlplane.web.services import services

bp = Blueprint("api_tenants", __name__, url_prefix="/api/v1/tenants")
challenge_on_401(bp)

MAX_EVENTS = 500
MAX_RETENTION_DAYS = 36500
DECOMMISSION_FIELDS = frozenset({"confirm", "retention_days"})
ROTATE_FIELDS = frozenset({"reason"})


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
    """The tenant if the token may see it (an operator's: any; an organisation's: its own); any
    other slug is simply not found, with a message that names nothing."""
    actor = current_api_actor()
    with services().database.transaction() as s:
        tenant = s.get(Tenant, slug) if actor.is_operator or slug == actor.org else None
        if tenant is None:
            raise NotFound("there is no such tenant visible to this token")
        s.expunge(tenant)
    return tenant


@bp.get("")
@require_scope("tenants:read")
def list_tenants() -> Response:
    actor = current_api_actor()
    with services().database.transaction() as s:
        if actor.is_operator:
            items = [tenant_json(t) for t in registry.list_tenants(s)]
        else:
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
    with services().database.transaction() as s:
        events = registry.recent_events(s, slug, limit=int(raw))
        items = [{"time": as_utc(e.occurred_at).isoformat(), "kind": e.kind, "message": e.message}
                 for e in events]
    return jsonify(items=items)


@bp.post("/<slug>/reconcile")
@require_scope("tenants:reconcile")
def reconcile_now(slug: str) -> tuple[Response, int]:
    """Queue the tenant for the reconciler's next pass (202: the worker does the work)."""
    _visible(slug)
    read_body(allowed=frozenset(), required=False)
    queue_reconcile(services().database, slug, initiator=current_api_actor().audit_name)
    return jsonify(slug=slug, queued=True), 202


@bp.post("/<slug>/decommission")
@require_scope("tenants:decommission")
def decommission(slug: str) -> Response | tuple[Response, int]:
    """Take the tenant's next decommission stage. `confirm` must be the tenant's slug, typed: the
    console's typed confirmation, so a script cannot take a stage by a slip of the path."""
    _visible(slug)
    body = read_body(allowed=DECOMMISSION_FIELDS, required=True)
    confirm = body.get("confirm")
    if not isinstance(confirm, str):
        raise InvalidInput("confirm: type the tenant's slug, as a string")
    if confirm != slug:
        # Well formed, but it names another tenant than the path: a conflict between the request and
        # its target (like a failed precondition), not bad syntax; the document cannot express
        # "equal to the path", and schema-valid input is never a 400 here.
        raise Conflict("confirm: type the tenant's slug exactly, as in the path; nothing was changed")
    # Used by the retention-hold stage only, as in the console.
    days = whole_number(body, "retention_days", default=365, low=0, high=MAX_RETENTION_DAYS)
    backends = services().backends
    if not backends.holds_cloud:  # the console role: the worker holds the cloud (tenancy.handoff)
        task = queue_task(services().database, ADVANCE_DECOMMISSION, slug,
                          initiator=current_api_actor().audit_name, detail={"retention_days": days})
        return jsonify(slug=slug, task=task, status="queued"), 202
    stage = dec.advance(services().database, backends, slug, initiator=current_api_actor().audit_name,
                        retention_days=days, settings=services().settings, close_access=close_organisation)
    with services().database.transaction() as s:
        phase = registry.get_tenant(s, slug).phase
    return jsonify(slug=slug, stage=stage.value, phase=phase)


@bp.post("/<slug>/keys/rotate")
@require_scope("keys:rotate")
def rotate_key(slug: str) -> Response | tuple[Response, int]:
    """A new version of the tenant's signing key signs from now on; `reason` is audited. Only a
    ready tenant's (409 otherwise); bad input or a refusal rotates nothing."""
    _visible(slug)
    reason = check_reason(read_body(allowed=ROTATE_FIELDS, required=True).get("reason"))
    backends = services().backends
    if not backends.holds_cloud:  # the console role: only the worker manages keys (tenancy.handoff)
        task = queue_task(services().database, ROTATE_KEY, slug, initiator=current_api_actor().audit_name,
                          detail={"reason": reason})
        return jsonify(slug=slug, task=task, status="queued"), 202
    done = rotate_signing_key(services().database, backends.keys, slug,
                              initiator=current_api_actor().audit_name, reason=reason)
    services().forget_signing_key(slug)
    return jsonify(slug=slug, key=done.key, version=done.to_version)
