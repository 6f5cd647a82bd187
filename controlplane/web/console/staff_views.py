"""Console pages for changes that one operator cannot make alone: staff-account changes waiting for a
second operator (list, approve, reject), invites of an organisation's first admin, and the public page
where an invitee accepts an invite and sets their own password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts import invites, staff_changes
from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.errors import ControlPlaneError, InvalidInput
from controlplane.tenancy.registry import live_org_slugs
from controlplane.web.console.auth import fresh_auth_required, login_required, signed_in_actor
from controlplane.web.console.console import MAX_FIELD, form_field
from controlplane.web.services import services

bp = Blueprint("staff", __name__)

MAX_ID = 2**31 - 1


def _operator() -> Actor:
    return signed_in_actor(Role.OPERATOR)


def _field(name: str, limit: int = MAX_FIELD) -> str:
    return form_field(name, limit, strip=True)


def file_staff_change(actor: Actor, *, kind: str, username: str, payload: dict[str, Any]) -> tuple[str, int]:
    """File a staff-account change from a people page: it waits for a second operator (202)."""
    with services().database.transaction() as db:
        change = staff_changes.file_change(db, actor, kind=kind, username=username, payload=payload)
        number = change.id
    return render_template("staff/filed.html", number=number, username=username), 202


@bp.get("/staff-changes/")
@login_required
def changes() -> str:
    actor = _operator()
    with services().database.transaction() as db:
        rows = staff_changes.list_changes(db, actor)
        page = render_template("staff/changes.html", rows=rows, me=actor.user_id)
    return page


def _change_id(change_id: int) -> int:
    if change_id > MAX_ID:
        abort(404)
    return change_id


@bp.post("/staff-changes/<int:change_id>/approve")
@login_required
@fresh_auth_required
def approve(change_id: int) -> WerkzeugResponse | tuple[str, int]:
    actor = _operator()
    with services().database.transaction() as db:
        done = staff_changes.approve_change(db, actor, _change_id(change_id), known_orgs=live_org_slugs(db))
        person, password, kind = done.user, done.one_time_password, done.change.kind
        page = (render_template("people/created.html", person=person, password=password,
                                reset=kind == "reset") if password else "")
    if page:  # a new account or a reset: the one-time password goes to the approver, never the filer
        return page, 200
    flash(gettext("Change %(n)s approved.", n=change_id))
    return redirect(url_for("staff.changes"))


@bp.post("/staff-changes/<int:change_id>/reject")
@login_required
@fresh_auth_required
def reject(change_id: int) -> WerkzeugResponse:
    actor = _operator()
    with services().database.transaction() as db:
        staff_changes.reject_change(db, actor, _change_id(change_id), comment=_field("comment", 500))
    flash(gettext("Change %(n)s rejected.", n=change_id))
    return redirect(url_for("staff.changes"))


# ------------------------------------------------------------------------------- invites
def _invite_form(*, form: dict[str, str], error: str = "", status: int = 200,
                 code: str = "") -> tuple[str, int]:
    with services().database.transaction() as db:
        orgs = live_org_slugs(db)
    return render_template("staff/invite.html", form=form, orgs=orgs, error=error, code=code,
                           accept_url=url_for("staff.accept_invite", _external=True)), status


@bp.get("/invites/new")
@login_required
def new_invite() -> tuple[str, int]:
    _operator()
    return _invite_form(form={"org": request.args.get("org", "")[:64]})


@bp.post("/invites/new")
@login_required
@fresh_auth_required
def create_invite() -> tuple[str, int]:
    """The code is in this response only: the operator passes it on and never learns a password."""
    actor = _operator()
    form = {"org": "", "username": "", "display_name": ""}
    try:
        form = {k: _field(k) for k in form}
        with services().database.transaction() as db:
            created = invites.create_invite(db, actor, org=form["org"], username=form["username"],
                                            display_name=form["display_name"], known_orgs=live_org_slugs(db))
            code = created.code
    except ControlPlaneError as exc:
        if exc.status >= 500:
            raise
        return _invite_form(form=form, error=exc.message, status=exc.status)
    return _invite_form(form=form, code=code, status=201)


@bp.route("/invite", methods=["GET", "POST"], endpoint="accept_invite")
def accept_invite() -> WerkzeugResponse | str | tuple[str, int]:
    """The invitee types the code they were given and chooses their password (no session needed)."""
    if request.method == "GET":
        return render_template("staff/accept.html")
    try:
        password = _field("password", 200)
        if password != _field("password_again", 200):
            raise InvalidInput(gettext("The two passwords differ."))
        with services().database.transaction() as db:
            user = invites.accept_invite(db, code=_field("code", 200), password=password,
                                         known_orgs=live_org_slugs(db))
            username = user.username
    except ControlPlaneError as exc:
        if exc.status >= 500:
            raise
        return render_template("staff/accept.html", error=exc.message), exc.status
    flash(gettext("Your account %(name)s is ready: sign in.", name=username))
    return redirect(url_for("console.login"))
