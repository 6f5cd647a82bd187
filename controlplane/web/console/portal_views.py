"""Ministry portal: an organisation's own environments (quota vs usage, live from OpenStack), its
request forms and the history of its requests. Org admins request; org members only look."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.backends import Backends
from controlplane.errors import ControlPlaneError, InvalidInput, NotFound, PermissionDenied
from controlplane.requests import service
from controlplane.requests.lifecycle import Kind
from controlplane.requests.rules import MAX_TEXT, QUOTA_KEYS, RequestRules, flatten
from controlplane.tenancy import registry
from controlplane.tenancy.snapshots import project_quotas
from controlplane.tenancy.spec import TenantSpec
from controlplane.tenancy.usage import DISPLAY_MAX_AGE
from controlplane.web.console.auth import login_required, signed_in_actor
from controlplane.web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("portal", __name__, url_prefix="/portal")

ORG_ROLES = (Role.ORG_ADMIN, Role.ORG_MEMBER)
# English labels are also the msgids of their translations (web/translations/*/messages.po)
QUOTA_LABELS: dict[str, str] = {
    "compute.cores": "CPU cores",
    "compute.ram_mb": "RAM (MiB)",
    "compute.instances": "Instances",
    "network.networks": "Networks",
    "network.subnets": "Subnets",
    "network.ports": "Ports",
    "network.routers": "Routers",
    "network.floating_ips": "Floating IPs",
    "network.security_groups": "Security groups",
    "network.security_group_rules": "Security group rules",
    "volume.gigabytes": "Volume storage (GB)",
    "volume.volumes": "Volumes",
    "volume.snapshots": "Volume snapshots",
}
_NUMBER = re.compile(r"^-?[0-9]{1,12}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_VALUE_FIELD = 24


@dataclass(frozen=True)
class QuotaRow:
    key: str
    label: str
    limit: int  # the desired limit (the tenant's spec): what a request changes
    cloud_limit: int | None  # what OpenStack enforces now (-1 = unlimited), when it could be read
    in_use: int | None

    @property
    def percent(self) -> int:
        limit = self.cloud_limit if self.cloud_limit is not None else self.limit
        if self.in_use is None or limit <= 0:
            return 0
        return min(100, self.in_use * 100 // limit)


@dataclass(frozen=True)
class EnvironmentUsage:
    name: str
    rows: tuple[QuotaRow, ...]
    error: str = ""
    age: int | None = None  # seconds since the worker read it (the console role); None: read live


def _actor() -> Actor:
    return signed_in_actor(*ORG_ROLES)  # staff use the operator pages; the portal is one organisation's view


Limits = dict[str, tuple[int, int | None]]  # quota key -> (limit, in use)


def _live_quotas(backends: Backends, project_id: str) -> tuple[Limits, float | None]:
    """Limits and usage by quota key, and their age when the worker recorded them (the console)."""
    q, age = project_quotas(services().database, backends, project_id, max_age=DISPLAY_MAX_AGE)
    c, n, v = q.compute, q.network, q.volume
    pairs = {
        "compute.cores": c.cores, "compute.ram_mb": c.ram, "compute.instances": c.instances,
        "network.networks": n.networks, "network.subnets": n.subnets, "network.ports": n.ports,
        "network.routers": n.routers, "network.floating_ips": n.floatingips,
        "network.security_groups": n.security_groups,
        "network.security_group_rules": n.security_group_rules,
        "volume.gigabytes": v.gigabytes, "volume.volumes": v.volumes, "volume.snapshots": v.snapshots,
    }
    return {k: (q.limit, q.in_use) for k, q in pairs.items()}, age


def _usage(spec: TenantSpec, resources: dict[str, str], only: str | None = None) -> list[EnvironmentUsage]:
    """Limits and usage per environment; usage read live from OpenStack, errors shown, never raised."""
    out = []
    for env in spec.environments:
        if only is not None and env.name != only:
            continue
        limits = flatten(env.quotas)
        live: dict[str, tuple[int, int | None]] = {}
        error, age = "", None
        project_id = resources.get(f"project:{env.name}")
        if not project_id:
            error = "not provisioned yet"
        else:
            try:  # ServiceUnavailable included: shown on the page, not raised
                live, age = _live_quotas(services().backends, project_id)
            except ControlPlaneError as exc:
                error = exc.message
        rows = tuple(
            QuotaRow(k, QUOTA_LABELS[k], limits[k], *(live.get(k) or (None, None))) for k in QUOTA_KEYS
        )
        out.append(EnvironmentUsage(env.name, rows, error, None if age is None else int(age)))
    return out


def _tenant(org: str) -> tuple[TenantSpec | None, dict[str, str], str]:
    """The organisation's spec, its cloud ids and its phase; no spec when it is not registered."""
    with services().database.transaction() as s:
        try:
            tenant = registry.get_tenant(s, org)
        except NotFound:
            return None, {}, ""
        return registry.tenant_spec(tenant), registry.resources_of(s, org), tenant.phase


@bp.get("")
@login_required
def overview() -> str:
    actor = _actor()
    spec, resources, phase = _tenant(actor.org)
    usage = _usage(spec, resources) if spec is not None else []
    history = service.list_requests(services().database, actor, org=actor.org, limit=100)
    return render_template("portal/overview.html", spec=spec, phase=phase, usage=usage, history=history,
                           org=actor.org, may_request=actor.role is Role.ORG_ADMIN)


def _form_page(actor: Actor, *, kind: str, environment: str, values: dict[str, str] | None = None,
               comment: str = "", description: str = "", error: str = "", status: int = 200
               ) -> tuple[str, int]:
    spec, resources, _phase = _tenant(actor.org)
    if spec is None:
        raise NotFound(f"{actor.org} has no registered tenant yet; ask the data center to vend it")
    if kind == Kind.QUOTA_CHANGE:
        if environment not in {e.name for e in spec.environments}:
            raise NotFound(f"{actor.org} has no environment {environment[:16]!r}")
        [env_usage] = _usage(spec, resources, only=environment)
    else:
        template = flatten(spec.environments[0].quotas)
        env_usage = EnvironmentUsage(
            environment, tuple(QuotaRow(k, QUOTA_LABELS[k], template[k], None, None) for k in QUOTA_KEYS)
        )
    html = render_template(
        "portal/request_form.html", kind=kind, environment=environment, usage=env_usage,
        values=values or {}, comment=comment, description=description, error=error,
        may_request=actor.role is Role.ORG_ADMIN, max_text=MAX_TEXT,
    )
    return html, status


@bp.get("/environments/<environment>/quota")
@login_required
def quota_form(environment: str) -> tuple[str, int]:
    return _form_page(_actor(), kind=Kind.QUOTA_CHANGE.value, environment=environment)


@bp.get("/environments/new")
@login_required
def environment_form() -> tuple[str, int]:
    return _form_page(_actor(), kind=Kind.NEW_ENVIRONMENT.value, environment="")


def _field(name: str, limit: int) -> str:
    value = request.form.get(name, "")
    if len(value) > limit:
        raise InvalidInput(f"{name}: at most {limit} characters")
    if _CONTROL.search(value):
        raise InvalidInput(f"{name}: control characters are not allowed")
    return value.strip()


def _quotas_from_form(kind: str) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """Nested quotas from the `q.<section>.<name>` fields; a blank field keeps the current limit
    (a new environment needs all). Values are checked for form only: the service checks the rest."""
    nested: dict[str, dict[str, int]] = {}
    values: dict[str, str] = {}
    problems = []
    for key in QUOTA_KEYS:
        raw = _field(f"q.{key}", MAX_VALUE_FIELD)
        values[key] = raw
        if not raw:
            if kind == Kind.NEW_ENVIRONMENT:
                problems.append(f"{key}: missing")
            continue
        if not _NUMBER.match(raw):
            problems.append(f"{key}: expected a whole number, got {raw[:24]!r}")
            continue
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = int(raw)
    if problems:
        raise InvalidInput("invalid quotas: " + "; ".join(problems))
    if not nested:
        raise InvalidInput("enter at least one new limit")
    return nested, values


@bp.post("/requests")
@login_required
def create_request() -> WerkzeugResponse | tuple[str, int]:
    actor = _actor()
    if actor.role is not Role.ORG_ADMIN:
        raise PermissionDenied("only an organisation admin can make requests")
    kind = _field("kind", 20)
    if kind not in {k.value for k in Kind}:
        raise InvalidInput("kind: expected quota_change or new_environment")
    environment = _field("environment", 16)
    comment, description = _field("comment", MAX_TEXT), _field("description", MAX_TEXT)
    values = {k: request.form.get(f"q.{k}", "")[:MAX_VALUE_FIELD] for k in QUOTA_KEYS}
    try:
        quotas, values = _quotas_from_form(kind)
        held = services()
        view = service.create_request(
            held.database, held.backends, actor, org=actor.org, kind=kind, environment=environment,
            quotas=quotas, description=description, comment=comment,
            submit=request.form.get("submit") != "draft",
            rules=RequestRules.from_settings(services().settings),
        )
    except InvalidInput as exc:
        try:  # the form again, with what was typed and why it was refused
            return _form_page(actor, kind=kind, environment=environment, values=values, comment=comment,
                              description=description, error=exc.message, status=exc.status)
        except NotFound:
            raise exc from None
    flash(gettext("Request %(id)d is now %(state)s.", id=view.id, state=gettext(view.state)))
    return redirect(url_for("portal.request_detail", request_id=view.id))


def _visible(actor: Actor, request_id: int) -> service.RequestView:
    if request_id > 2**31 - 1:
        raise NotFound(f"there is no request {request_id}")
    view = service.get_request(services().database, actor, request_id)
    if view.org != actor.org:  # the service hides it already; never rely on one check alone
        raise NotFound(f"there is no request {request_id}")
    return view


@bp.get("/requests/<int:request_id>")
@login_required
def request_detail(request_id: int) -> str:
    actor = _actor()
    view = _visible(actor, request_id)
    return render_template("portal/request.html", r=view, may_request=actor.role is Role.ORG_ADMIN,
                           labels=QUOTA_LABELS, changes=_changes(view))


def _changes(view: service.RequestView) -> list[tuple[str, int]]:
    quotas: Any = view.payload.get("quotas") or {}
    out = []
    for key in QUOTA_KEYS:
        section, name = key.split(".", 1)
        value = quotas.get(section, {}).get(name) if isinstance(quotas.get(section), dict) else None
        if isinstance(value, int):
            out.append((key, value))
    return out


@bp.post("/requests/<int:request_id>/submit")
@login_required
def submit_request(request_id: int) -> WerkzeugResponse:
    actor = _actor()
    comment = _field("comment", MAX_TEXT)
    _visible(actor, request_id)
    held = services()
    view = service.submit_request(held.database, held.backends, actor, request_id, comment=comment,
                                  rules=RequestRules.from_settings(held.settings))
    flash(gettext("Request %(id)d is now %(state)s.", id=view.id, state=gettext(view.state)))
    return redirect(url_for("portal.request_detail", request_id=view.id))


@bp.post("/requests/<int:request_id>/withdraw")
@login_required
def withdraw_request(request_id: int) -> WerkzeugResponse:
    actor = _actor()
    comment = _field("comment", MAX_TEXT)
    _visible(actor, request_id)
    view = service.withdraw_request(services().database, actor, request_id, comment=comment)
    flash(gettext("Request %(id)d is now %(state)s.", id=view.id, state=gettext(view.state)))
    return redirect(url_for("portal.request_detail", request_id=view.id))


__all__ = ["QUOTA_LABELS", "bp"]
