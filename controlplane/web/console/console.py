"""Console pages: sign in and out, password change, and the status page of every dependency."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts import sessions as account_sessions
from controlplane.accounts.models import Role
from controlplane.accounts.service import (
    Actor,
    LoginStage,
    change_password,
    check_password_step,
    end_session,
    start_session,
)
from controlplane.errors import InvalidInput
from controlplane.web import context
from controlplane.web.console.auth import SESSION_KEY, login_required, require_role, set_pending
from controlplane.web.probes import current_health
from controlplane.web.services import services

bp = Blueprint("console", __name__)

MAX_FIELD = 256


def form_field(name: str, limit: int = MAX_FIELD, *, strip: bool) -> str:
    """A posted form field, refused (400) when longer than `limit`; `strip` trims white space
    (never for passwords)."""
    value = request.form.get(name, "")
    if len(value) > limit:
        raise InvalidInput(f"{name} is too long (at most {limit} characters)")
    return value.strip() if strip else value


def _field(name: str) -> str:
    return form_field(name, strip=False)


def start_console_session(db: Session, actor: Actor) -> str:
    """start_session, noting where from (address and browser) for the person's sessions page."""
    return start_session(db, actor, client_ip=request.remote_addr or "",
                         user_agent=request.headers.get("User-Agent", "")[:200])


def throttled_page(template: str, status: int, retry_after: int, **context_: object) -> WerkzeugResponse:
    """A refusal page; a 429 says when to come back (Retry-After)."""
    response = make_response(render_template(template, **context_), status)
    if status == 429 and retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def safe_next(target: str | None) -> str:
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
    next_url = request.form.get("next", "")[:MAX_FIELD]
    if not username or not password:
        return render_template("login.html", error="Enter your username and password.",
                               next=next_url), 400
    pending: str | None = None
    with services().database.transaction() as db:
        attempt = check_password_step(db, username=username, password=password,
                                      client_ip=request.remote_addr or "")
        done = attempt.actor is not None and attempt.stage is LoginStage.DONE
        token = start_console_session(db, attempt.actor) if done and attempt.actor else None
        if attempt.actor is not None and attempt.stage is not None and token is None:
            # The password was right; the authenticator step comes next, kept server-side.
            pending = account_sessions.begin_pending(
                db, user_id=attempt.actor.user_id, stage=attempt.stage, next_url=next_url,
                client_ip=request.remote_addr or "")
    if attempt.actor is None:
        status = 429 if attempt.locked_until else 401
        return throttled_page("login.html", status, attempt.retry_after, error=attempt.message,
                              username=username, next=next_url)
    if pending is not None:
        set_pending(pending)
        return redirect(url_for("account.mfa_enrol" if attempt.stage is LoginStage.MFA_ENROL
                                else "account.mfa_code"))
    assert token is not None
    return finish_login(token, next_url)


def adopt_session(token: str) -> None:
    """Put a fully signed-in session in the cookie, dropping whatever was there (pending MFA state too).

    A new session id at every login: a cookie planted before login is worthless after it."""
    session.clear()
    session[SESSION_KEY] = token
    session.permanent = True


def finish_login(token: str, next_url: str | None) -> WerkzeugResponse:
    adopt_session(token)
    return redirect(safe_next(next_url))


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    token = session.pop(SESSION_KEY, None)
    if token:
        with services().database.transaction() as db:
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
        with services().database.transaction() as db:
            ended = change_password(db, actor, current=_field("current_password"), new=new,
                                    keep_session=session.get(SESSION_KEY))
    except InvalidInput as exc:
        return render_template("password.html", error=exc.message,
                               forced=actor.must_change_password), 400
    flash(gettext("Your password was changed.") if not ended else gettext(
        "Your password was changed. Other sessions ended: %(num)d.", num=ended))
    return redirect(url_for("console.index"))


@bp.get("/")
@login_required
def index() -> str | WerkzeugResponse:
    actor = context.actor()
    if actor is not None and actor.role in (Role.ORG_ADMIN, Role.ORG_MEMBER):
        # A ministry's people land on their own organisation; platform internals are staff-only.
        return redirect(url_for("portal.overview"))
    return render_template("index.html", checks=current_health(), settings=services().settings)


@bp.get("/status")
@login_required
def status() -> str:
    require_role(Role.OPERATOR, Role.AUDITOR)
    fresh = request.args.get("refresh") == "1"
    return render_template("status.html", checks=current_health(fresh=fresh))
