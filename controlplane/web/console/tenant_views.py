"""Operator console for tenants: the dashboard, a tenant's detail, reconcile now, decommission."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import func, select
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts.admin import close_organisation
from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.errors import ControlPlaneError, InvalidInput, NotFound, ServiceUnavailable
from controlplane.requests.lifecycle import State
from controlplane.requests.models import ResourceRequest
from controlplane.tenancy import decommission as dec
from controlplane.tenancy import registry
from controlplane.tenancy.handoff import ADVANCE_DECOMMISSION, ROTATE_KEY, queue_task
from controlplane.tenancy.keys import REASON_MAX, rotate_signing_key
from controlplane.tenancy.models import PlaybookEvent, PlaybookRun, Tenant
from controlplane.tenancy.service import queue_reconcile
from controlplane.tenancy.snapshots import project_quotas
from controlplane.tenancy.usage import DISPLAY_MAX_AGE
from controlplane.web.console.auth import fresh_auth_required, login_required, signed_in_actor
from controlplane.web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("tenants", __name__, url_prefix="/tenants")

STAFF = (Role.OPERATOR, Role.AUDITOR)


def _actor() -> Actor:
    return signed_in_actor()


def _may_read(actor: Actor, slug: str) -> bool:
    return actor.role in STAFF or actor.org == slug


def _require_operator(actor: Actor) -> None:
    if actor.role != Role.OPERATOR:
        abort(403, "only data-center operators may do this")


def _next_stage(phase: str) -> str | None:
    stage = dec.NEXT_STAGE.get(phase)
    return stage.value if stage else None


@bp.get("/")
@login_required
def dashboard() -> str:
    actor = _actor()
    with services().database.transaction() as s:
        rows = registry.list_tenants(s)
        if actor.role not in STAFF:
            rows = [t for t in rows if t.slug == actor.org]
        counted = s.execute(select(PlaybookRun.tenant_slug, func.count()).group_by(PlaybookRun.tenant_slug))
        runs: dict[str, int] = {row[0]: row[1] for row in counted}
        waiting = s.execute(select(ResourceRequest.org, func.count())
                            .where(ResourceRequest.state == State.SUBMITTED.value)
                            .group_by(ResourceRequest.org))
        pending: dict[str, int] = {row[0]: row[1] for row in waiting}
        tenants = [{**_summary(t, runs.get(t.slug, 0)), "pending": pending.get(t.slug, 0)} for t in rows]
    counts: dict[str, int] = {}
    for t in tenants:
        counts[t["phase"]] = counts.get(t["phase"], 0) + 1
    return render_template("tenants/dashboard.html", tenants=tenants, counts=counts,
                           drifted=sum(1 for t in tenants if t["drift"]))


def _summary(t: Tenant, runs: int) -> dict[str, Any]:
    return {"slug": t.slug, "name": t.name_en, "kind": t.kind, "phase": t.phase,
            "generation": t.generation, "applied": t.applied_generation, "drift": t.drift_count,
            "last": t.last_reconciled_at, "error": t.last_error, "runs": runs,
            "environments": sorted(t.spec.get("environments", {}))}


@bp.get("/<slug>")
@login_required
def detail(slug: str) -> str:
    actor = _actor()
    if not _may_read(actor, slug):
        abort(404)  # another organisation's tenant does not exist, as far as this user can tell
    with services().database.transaction() as s:
        try:
            tenant = registry.get_tenant(s, slug)
        except NotFound:
            abort(404)
        spec = registry.tenant_spec(tenant)
        summary = _summary(tenant, 0)
        events = registry.recent_events(s, slug, limit=40)
        resources = registry.resources_of(s, slug)
        keys = registry.archived_public_keys(s, slug)
        runs = list(s.scalars(select(PlaybookRun).where(PlaybookRun.tenant_slug == slug)
                              .order_by(PlaybookRun.started_at.desc()).limit(5)))
        run_events = {r.id: list(s.scalars(select(PlaybookEvent).where(PlaybookEvent.run_id == r.id)
                                           .order_by(PlaybookEvent.counter))) for r in runs}
    usage = _usage(resources, spec.environments, fresh=request.args.get("refresh") == "1")
    running = any(r.status == "running" for r in runs)
    return render_template("tenants/detail.html", t=summary, spec=spec, events=events, resources=resources,
                           keys=keys, runs=runs, run_events=run_events, usage=usage, running=running,
                           next_stage=_next_stage(tenant.phase), is_operator=actor.role == Role.OPERATOR)


def _usage(resources: dict[str, str], environments: Any, *, fresh: bool = False) -> dict[str, Any]:
    """Quota and usage per environment, read live from OpenStack (at most DISPLAY_MAX_AGE old
    unless `fresh`), or in the console role as the worker recorded them, with their age; errors
    are shown, not raised."""
    try:
        backends, error = services().backends, ""
    except ServiceUnavailable as exc:
        backends, error = None, exc.message
    out: dict[str, Any] = {}
    for env in environments:
        project_id = resources.get(f"project:{env.name}")
        if not project_id:
            out[env.name] = {"error": "not provisioned yet"}
            continue
        if backends is None:
            out[env.name] = {"error": error}
            continue
        try:
            q, age = project_quotas(services().database, backends, project_id,
                                    max_age=0.0 if fresh else DISPLAY_MAX_AGE)
            c, n, v = q.compute, q.network, q.volume
        except ControlPlaneError as exc:
            out[env.name] = {"error": exc.message}
            continue
        out[env.name] = {"age": None if age is None else int(age), "rows": [
            ("cores", c.cores), ("RAM (MiB)", c.ram), ("instances", c.instances), ("networks", n.networks),
            ("ports", n.ports), ("routers", n.routers), ("floating IPs", n.floatingips),
            ("volume GB", v.gigabytes), ("volumes", v.volumes)]}
    return out


@bp.post("/<slug>/reconcile")
@login_required
def reconcile_now(slug: str) -> WerkzeugResponse:
    actor = _actor()
    _require_operator(actor)
    queue_reconcile(services().database, slug, initiator=actor.audit_name)
    flash(f"{slug}: queued for the reconciler's next pass.")
    return redirect(url_for("tenants.detail", slug=slug))


@bp.post("/<slug>/keys/rotate")
@login_required
@fresh_auth_required
def rotate_key(slug: str) -> WerkzeugResponse:
    """A new version of the tenant's signing key signs from now on; the reason is audited."""
    actor = _actor()
    _require_operator(actor)
    backends = services().backends
    # One character over the limit, so an overlong reason is refused rather than cut short.
    reason = request.form.get("reason", "")[: REASON_MAX + 1]
    if not backends.holds_cloud:  # the console role: only the worker manages keys (tenancy.handoff)
        task = queue_task(services().database, ROTATE_KEY, slug, initiator=actor.audit_name,
                          detail={"reason": reason})
        flash(gettext("%(slug)s: key rotation queued (task %(task)d); the worker makes it in its next pass.",
                      slug=slug, task=task))
        return redirect(url_for("tenants.detail", slug=slug))
    done = rotate_signing_key(services().database, backends.keys, slug, initiator=actor.audit_name,
                              reason=reason)
    services().forget_signing_key(slug)
    flash(f"{slug}: signing key rotated from version {done.from_version} to {done.to_version}.")
    return redirect(url_for("tenants.detail", slug=slug))


@bp.post("/<slug>/decommission")
@login_required
@fresh_auth_required
def decommission(slug: str) -> WerkzeugResponse:
    actor = _actor()
    _require_operator(actor)
    typed = request.form.get("confirm", "")[:64]
    if typed != slug:
        raise InvalidInput(f"type the tenant's name ({slug}) to confirm; nothing was changed")
    with services().database.transaction() as s:
        phase = registry.get_tenant(s, slug).phase
    stage = _next_stage(phase)
    if stage is None:
        raise InvalidInput(f"{slug} is {phase}: nothing left to decommission")
    backends = services().backends
    days = request.form.get("retention_days", "365") if stage == "retained" else "0"
    if not days.isdigit() or int(days) > 36500:
        raise InvalidInput("retention days must be a whole number between 0 and 36500")
    if not backends.holds_cloud:  # the console role: the worker holds the cloud (tenancy.handoff)
        task = queue_task(services().database, ADVANCE_DECOMMISSION, slug, initiator=actor.audit_name,
                          detail={"retention_days": int(days), "stage": stage})
        flash(gettext("%(slug)s: decommission stage '%(stage)s' queued (task %(task)d); the worker takes "
                      "it in its next pass.", slug=slug, stage=stage, task=task))
        return redirect(url_for("tenants.detail", slug=slug))
    dec.advance(services().database, backends, slug, initiator=actor.audit_name, retention_days=int(days),
                settings=services().settings, close_access=close_organisation)
    flash(f"{slug}: decommission stage '{stage}' done.")
    return redirect(url_for("tenants.detail", slug=slug))
