"""Operator console for ministry requests: the queue (pending first), a request's detail with every
step, approve and reject. Auditors read; only operators decide, and the service enforces separation
of duties and the two-operator rule."""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.errors import ControlPlaneError, InvalidInput, NotFound
from controlplane.requests import service
from controlplane.requests.lifecycle import State
from controlplane.requests.rules import MAX_TEXT, RequestRules
from controlplane.requests.service import RequestView
from controlplane.web.console.auth import login_required, signed_in_actor
from controlplane.web.console.portal_views import QUOTA_LABELS
from controlplane.web.services import services

bp = Blueprint("requests", __name__, url_prefix="/requests")

STAFF = (Role.OPERATOR, Role.AUDITOR)
ORG_FILTER = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
QUEUE_PENDING = 50  # a page an operator works through; filters narrow it further
QUEUE_RECENT = 25
MAX_ID = 2**31 - 1


def _actor(*roles: Role) -> Actor:
    return signed_in_actor(*roles)


@bp.get("/")
@login_required
def queue() -> str:
    actor = _actor(*STAFF)
    state = request.args.get("state", "")
    org = request.args.get("org", "").strip()
    if state and state not in {s.value for s in State}:
        raise InvalidInput(f"state: expected one of {', '.join(s.value for s in State)}")
    if org and not ORG_FILTER.match(org):
        raise InvalidInput("org: expected an organisation's slug")
    db = services().database
    if state:
        rows = service.list_requests(db, actor, org=org or None, state=state, limit=QUEUE_PENDING)
    else:  # what waits for an operator first, then the most recent of the rest
        rows = service.list_requests(db, actor, org=org or None, state=State.SUBMITTED.value,
                                     limit=QUEUE_PENDING)
        rows += [r for r in service.list_requests(db, actor, org=org or None, limit=QUEUE_RECENT)
                 if r.state != State.SUBMITTED]
    return render_template("requests/queue.html", rows=rows, state=state, org=org,
                           states=[s.value for s in State])


def _detail(actor: Actor, view: RequestView, *, error: str = "", status: int = 200) -> tuple[str, int]:
    is_operator = actor.role is Role.OPERATOR
    own = view.created_by == actor.audit_name
    already = actor.audit_name in view.approvals
    html = render_template(
        "requests/detail.html", r=view, labels=QUOTA_LABELS, error=error, max_text=MAX_TEXT,
        may_decide=is_operator and view.state == State.SUBMITTED and not own and not already,
        own=own, already=already, is_operator=is_operator,
    )
    return html, status


def _load(actor: Actor, request_id: int) -> RequestView:
    if request_id > MAX_ID:
        raise NotFound(f"there is no request {request_id}")
    return service.get_request(services().database, actor, request_id)


@bp.get("/<int:request_id>")
@login_required
def detail(request_id: int) -> tuple[str, int]:
    actor = _actor(*STAFF)
    return _detail(actor, _load(actor, request_id))


def _comment() -> str:
    comment = request.form.get("comment", "")
    if len(comment) > MAX_TEXT:
        raise InvalidInput(f"comment: at most {MAX_TEXT} characters, got {len(comment)}")
    if _CONTROL.search(comment):
        raise InvalidInput("comment: control characters are not allowed")
    return comment.strip()


@bp.post("/<int:request_id>/approve")
@login_required
def approve(request_id: int) -> WerkzeugResponse | tuple[str, int]:
    actor = _actor(Role.OPERATOR)
    view = _load(actor, request_id)
    try:
        comment = _comment()
        done = service.approve_request(services().database, services().backends, actor, request_id,
                                       comment=comment, rules=RequestRules.from_settings(services().settings))
    except ControlPlaneError as exc:  # refused (own request, twice, too late, bad input): say why here
        return _detail(actor, _load(actor, request_id) if exc.status < 500 else view,
                       error=exc.message, status=exc.status)
    if done.state == State.SUBMITTED:
        flash(gettext("Approval %(n)d of %(m)d recorded; another operator must approve too.",
                      n=len(done.approvals), m=done.required_approvals))
    else:
        flash(gettext("Request %(id)d is now %(state)s.", id=done.id, state=gettext(done.state)))
    return redirect(url_for("requests.detail", request_id=request_id))


@bp.post("/<int:request_id>/reject")
@login_required
def reject(request_id: int) -> WerkzeugResponse | tuple[str, int]:
    actor = _actor(Role.OPERATOR)
    view = _load(actor, request_id)
    try:
        done = service.reject_request(services().database, actor, request_id, comment=_comment())
    except ControlPlaneError as exc:
        return _detail(actor, view, error=exc.message, status=exc.status)
    flash(gettext("Request %(id)d is now %(state)s.", id=done.id, state=gettext(done.state)))
    return redirect(url_for("requests.detail", request_id=request_id))
