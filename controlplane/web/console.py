"""Console pages: sign in and out, password change, and the status page of every dependency."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts.service import authenticate, change_password, end_session, start_session
from controlplane.errors import InvalidInput
from controlplane.web import context
from controlplane.web.auth import SESSION_KEY, login_required
from controlplane.web.probes import current_health

bp = Blueprint("console", __name__)

MAX_FIELD = 256


def _field(name: str) -> str:
    value = request.form.get(name, "")
    if len(value) > MAX_FIELD:
        raise InvalidInput(f"{name} is too long (at most {MAX_FIELD} characters)")
    return value


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: an open redirect would make our login page a phishing aid."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(
        target).netloc:
        return target
    return url_for("console.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | WerkzeugResponse | tuple[str, int]:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username, password = _field("username").strip().lower(), _field("password")
    if not username or not password:
        return render_template("login.html", error="Enter your username and password.",
                               next=request.form.get("next", "")), 400
    with context.database().transaction() as db:
        actor = authenticate(db, username=username, password=password)
        token = start_session(db, actor) if actor else None
    if token is None:
        return render_template("login.html", error="Wrong username or password.",
                               username=username, next=request.form.get("next", "")), 401
    # A new session id at every login: a cookie planted before login is worthless after it.
    session.clear()
    session[SESSION_KEY] = token
    session.permanent = True
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    token = session.pop(SESSION_KEY, None)
    if token:
        with context.database().transaction() as db:
            end_session(db, token, actor=context.actor())
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("console.login"))


@bp.route("/account/password", methods=["GET", "POST"], endpoint="change_password")
@login_required
def change_password_view() -> str | WerkzeugResponse | tuple[str, int]:
    actor = context.actor()
    assert actor is not None
    if request.method == "GET":
        return render_template("password.html", forced=actor.must_change_password)
    new, repeat = _field("new_password"), _field("repeat_password")
    try:
        if new != repeat:
            raise InvalidInput("the two new passwords differ")
        with context.database().transaction() as db:
            change_password(db, actor, current=_field("current_password"), new=new)
    except InvalidInput as exc:
        return render_template("password.html", error=exc.message,
                               forced=actor.must_change_password), 400
    flash("Your password was changed.")
    return redirect(url_for("console.index"))


@bp.get("/")
@login_required
def index() -> str:
    return render_template("index.html", checks=current_health(), settings=context.settings())


@bp.get("/status")
@login_required
def status() -> str:
    fresh = request.args.get("refresh") == "1"
    return render_template("status.html", checks=current_health(fresh=fresh))
