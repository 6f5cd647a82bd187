"""Account → Sessions: a person's own console sessions (list, end one, end all others), and the
re-prompt for password (+ TOTP) that a sensitive action asks when the session is not fresh."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts import sessions as account_sessions
from controlplane.accounts.service import Actor
from controlplane.errors import InvalidInput
from controlplane.web.console.auth import (
    MAX_REPLAYED,
    current_session_hash,
    login_required,
    reauth_prompt,
    secret_box,
    signed_in_actor,
)
from controlplane.web.console.console import MAX_FIELD, form_field, safe_next
from controlplane.web.services import services

bp = Blueprint("sessions", __name__, url_prefix="/account")

_SESSION_ID = re.compile(r"^[0-9a-f]{64}$")
_REPLAY_PREFIX = "r:"


def _actor() -> Actor:
    return signed_in_actor()


def _field(name: str, limit: int = MAX_FIELD) -> str:
    return form_field(name, limit, strip=False)


def _windows() -> tuple[timedelta, timedelta]:
    s = services().settings
    return timedelta(minutes=s.session_idle_minutes), timedelta(hours=s.session_absolute_hours)


@bp.get("/sessions", endpoint="list")
@login_required
def sessions_view() -> str:
    actor = _actor()
    idle, absolute = _windows()
    with services().database.transaction() as db:
        rows = account_sessions.list_sessions(db, actor, current_hash=current_session_hash(),
                                              idle=idle, absolute=absolute)
    return render_template("account/sessions.html", sessions=rows)


@bp.post("/sessions/<session_id>/end", endpoint="end")
@login_required
def end_session_view(session_id: str) -> WerkzeugResponse:
    actor = _actor()
    if not _SESSION_ID.fullmatch(session_id):
        abort(404)
    if session_id == current_session_hash():
        raise InvalidInput(gettext("To end this session, sign out."))
    with services().database.transaction() as db:
        account_sessions.end_own_session(db, actor, session_id)
    flash(gettext("The session was ended."))
    return redirect(url_for("sessions.list"))


@bp.post("/sessions/end-others", endpoint="end_others")
@login_required
def end_others_view() -> WerkzeugResponse:
    actor = _actor()
    with services().database.transaction() as db:
        ended = account_sessions.end_other_sessions(db, actor, current_hash=current_session_hash())
    flash(gettext("Other sessions ended: %(num)d.", num=ended))
    return redirect(url_for("sessions.list"))


def _replayed() -> list[tuple[str, str]]:
    """The guarded action's fields the re-prompt page carried (as r:<name> hidden fields)."""
    fields = [(k[len(_REPLAY_PREFIX):], v) for k, v in request.form.items(multi=True)
              if k.startswith(_REPLAY_PREFIX)]
    if len(fields) > MAX_REPLAYED or any(len(v) > MAX_FIELD for _, v in fields):
        raise InvalidInput("the form to continue with is too large")
    return fields


@bp.route("/reauth", methods=["GET", "POST"], endpoint="reauth")
@login_required
def reauth_view() -> str | WerkzeugResponse:
    """Prove it is still you (password, and the authenticator code if you have one); then the
    action that asked continues: a page with one button re-sends its form, or a GET goes on."""
    actor = _actor()
    if request.method == "GET":
        return reauth_prompt(request.args.get("next", "")[:MAX_FIELD], [], method="GET", status=200)
    next_path = _field("next")
    fields = _replayed()
    with services().database.transaction() as db:
        attempt = account_sessions.reauthenticate(
            db, actor, current_hash=current_session_hash(), password=_field("password"),
            code=_field("code", 64).strip(), box=secret_box(), client_ip=request.remote_addr or "")
    method = "POST" if request.form.get("method") == "POST" else "GET"
    if attempt.actor is None:
        return reauth_prompt(next_path, fields, method=method, error=attempt.message,
                             status=429 if attempt.locked_until else 401,
                             retry_after=attempt.retry_after)
    target = safe_next(next_path)
    if method == "GET":
        return redirect(target)
    # A POST cannot be redirected with its body: the person presses Continue to send it on.
    return render_template("account/reauth_continue.html", action=target, fields=fields)
