"""Console pages to administer people: list, create (one-time password shown once), change role,
disable/enable, reset password. Operators administer everyone; an org admin their organisation.
A staff-account change an operator makes is filed for a second operator (web.console.staff_views)."""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts import admin, staff_changes
from controlplane.accounts.models import Role, User
from controlplane.accounts.service import USERNAME_RE, Actor
from controlplane.errors import ControlPlaneError, InvalidInput, NotFound
from controlplane.tenancy import registry
from controlplane.tenancy.phases import ACTIVE_PHASES, Phase
from controlplane.web.console.auth import fresh_auth_required, login_required, signed_in_actor
from controlplane.web.console.console import MAX_FIELD, form_field
from controlplane.web.console.staff_views import file_staff_change
from controlplane.web.services import services

bp = Blueprint("people", __name__, url_prefix="/people")

ADMINISTRATORS = (Role.OPERATOR, Role.ORG_ADMIN)
ORG_FILTER = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


def registered_orgs(session: Session) -> list[str]:
    """Slugs an organisation role may name: tenants registered and not being decommissioned."""
    return sorted(t.slug for t in registry.list_tenants(session) if Phase(t.phase) in ACTIVE_PHASES)


def _actor() -> Actor:
    return signed_in_actor(*ADMINISTRATORS)


def _org_for(role: str, org: str) -> str:
    """The form keeps the organisation select filled in; a staff role belongs to none, so drop it."""
    return "" if role in (Role.OPERATOR.value, Role.AUDITOR.value) else org


def _field(name: str, limit: int = MAX_FIELD) -> str:
    return form_field(name, limit, strip=True)


def _roles(actor: Actor) -> list[str]:
    """The roles `actor` may give, for the forms' choices."""
    if actor.role is Role.OPERATOR:
        return [r.value for r in Role]
    return [Role.ORG_MEMBER.value, Role.ORG_ADMIN.value]


def _orgs(actor: Actor) -> list[str]:
    if actor.role is Role.ORG_ADMIN:
        return [actor.org]  # never list another organisation to an org admin
    with services().database.transaction() as db:
        return registered_orgs(db)


@bp.get("/")
@login_required
def people() -> str:
    actor = _actor()
    org, role = request.args.get("org", "").strip(), request.args.get("role", "").strip()
    if org and not ORG_FILTER.match(org):
        raise InvalidInput("org: expected an organisation's slug")
    with services().database.transaction() as db:
        rows = admin.list_people(db, actor, org=org, role=role)
    return render_template("people/list.html", rows=rows, org=org, role=role, roles=_roles(actor),
                           orgs=_orgs(actor))


def _render_new(actor: Actor, *, form: dict[str, str], error: str = "", status: int = 200) -> tuple[str, int]:
    return render_template("people/new.html", form=form, error=error, roles=_roles(actor),
                           orgs=_orgs(actor), org_fixed=actor.role is Role.ORG_ADMIN), status


@bp.get("/new")
@login_required
def new_person() -> tuple[str, int]:
    actor = _actor()
    return _render_new(actor, form={"role": Role.ORG_MEMBER.value, "org": actor.org})


@bp.post("/")
@login_required
@fresh_auth_required
def create_person() -> tuple[str, int]:
    actor = _actor()
    form = {"username": "", "role": "", "org": "", "display_name": ""}
    try:
        form = {k: _field(k) for k in form}
        if actor.role is Role.OPERATOR and staff_changes.is_staff_create(form["role"]):
            return file_staff_change(actor, kind="create", username=form["username"],
                                     payload={"role": form["role"], "display_name": form["display_name"]})
        with services().database.transaction() as db:
            created = admin.create_person(
                db, actor, username=form["username"], role=form["role"],
                org=_org_for(form["role"], form["org"]),
                display_name=form["display_name"], known_orgs=registered_orgs(db))
    except ControlPlaneError as exc:
        if exc.status >= 500:
            raise
        return _render_new(actor, form=form, error=exc.message, status=exc.status)
    # The password is in this response only: never in a redirect, flash cookie or log.
    return render_template("people/created.html", person=created.user,
                           password=created.one_time_password, reset=False), 201


def _load(actor: Actor, username: str) -> User:
    if not USERNAME_RE.fullmatch(username):
        raise NotFound(f"no person {username!r} you administer")
    with services().database.transaction() as db:
        return admin.get_person(db, actor, username)


def _detail(actor: Actor, person: User, *, error: str = "", status: int = 200) -> tuple[str, int]:
    return render_template("people/detail.html", person=person, error=error, roles=_roles(actor),
                           orgs=_orgs(actor), org_fixed=actor.role is Role.ORG_ADMIN,
                           is_self=person.id == actor.user_id), status


@bp.get("/<username>")
@login_required
def person(username: str) -> tuple[str, int]:
    actor = _actor()
    return _detail(actor, _load(actor, username))


def _confirmed(username: str) -> None:
    """Disabling or resetting someone asks for their username typed again: no slip of the mouse."""
    if _field("confirm") != username:
        raise InvalidInput(gettext("Type the username %(name)s to confirm.", name=username))


@bp.post("/<username>/role")
@login_required
@fresh_auth_required
def set_role(username: str) -> WerkzeugResponse | tuple[str, int]:
    actor = _actor()
    person = _load(actor, username)
    try:
        role = _field("role")
        org = _org_for(role, _field("org"))
        if actor.role is Role.OPERATOR and staff_changes.is_staff_role_change(person, role):
            return file_staff_change(actor, kind="role", username=username,
                                     payload={"role": role, "org": org})
        with services().database.transaction() as db:
            admin.change_role(db, actor, username, role=role, org=org, known_orgs=registered_orgs(db))
    except ControlPlaneError as exc:
        if exc.status >= 500:
            raise
        return _detail(actor, person, error=exc.message, status=exc.status)
    flash(gettext("The role of %(name)s is now %(role)s.", name=username, role=gettext(role)))
    return redirect(url_for("people.person", username=username))


@bp.post("/<username>/disable")
@login_required
@fresh_auth_required
def disable(username: str) -> WerkzeugResponse | tuple[str, int]:
    actor = _actor()
    person = _load(actor, username)
    try:
        _confirmed(username)
        with services().database.transaction() as db:
            admin.disable_person(db, actor, username)
    except ControlPlaneError as exc:
        if exc.status >= 500:
            raise
        return _detail(actor, person, error=exc.message, status=exc.status)
    flash(gettext("%(name)s is disabled; their sessions and tokens were revoked.", name=username))
    return redirect(url_for("people.person", username=username))


@bp.post("/<username>/enable")
@login_required
@fresh_auth_required
def enable(username: str) -> WerkzeugResponse:
    actor = _actor()
    _load(actor, username)
    with services().database.transaction() as db:
        admin.enable_person(db, actor, username)
    flash(gettext("%(name)s is enabled.", name=username))
    return redirect(url_for("people.person", username=username))


@bp.post("/<username>/reset-password")
@login_required
@fresh_auth_required
def reset_password(username: str) -> tuple[str, int]:
    actor = _actor()
    person = _load(actor, username)
    try:
        _confirmed(username)
        if actor.role is Role.OPERATOR and staff_changes.is_staff_reset(person):
            return file_staff_change(actor, kind="reset", username=username,
                                     payload={"reset_mfa": request.form.get("reset_mfa") == "1"})
        with services().database.transaction() as db:
            done = admin.reset_password(db, actor, username, reset_mfa=request.form.get("reset_mfa") == "1")
    except ControlPlaneError as exc:
        if exc.status >= 500:
            raise
        return _detail(actor, person, error=exc.message, status=exc.status)
    return render_template("people/created.html", person=done.user, password=done.one_time_password,
                           reset=True), 200
