"""Account pages: the MFA step of sign-in (code, enrolment with a QR code) and API token management."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from datetime import timedelta

import segno
from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts import sessions as account_sessions
from controlplane.accounts.models import Role
from controlplane.accounts.service import (
    Actor,
    LoginAttempt,
    LoginStage,
    begin_mfa_enrolment,
    check_mfa_step,
    confirm_mfa_enrolment,
)
from controlplane.accounts.sessions import PendingLogin
from controlplane.accounts.tokens import (
    KNOWN_SCOPES,
    OPERATOR_SCOPES,
    create_operator_token,
    create_token,
    list_tokens,
    revoke_token,
)
from controlplane.errors import InvalidInput, PermissionDenied
from controlplane.storage import utcnow
from controlplane.tenancy.registry import live_org_slugs
from controlplane.web.console.auth import (
    end_pending,
    fresh_auth_required,
    login_required,
    pending_login,
    pending_token,
    secret_box,
    signed_in_actor,
)
from controlplane.web.console.console import (
    MAX_FIELD,
    adopt_session,
    finish_login,
    form_field,
    safe_next,
    start_console_session,
    throttled_page,
)
from controlplane.web.services import services

bp = Blueprint("account", __name__)

# An organisation token always expires (accounts.tokens.MAX_ORG_TOKEN_DAYS): no "never" any more.
EXPIRY_CHOICES = {"30": 30, "90": 90, "365": 365}
OPERATOR_HOURS = ("1", "4", "8", "12")  # an operator token lasts at most a session's 12 hours


def _field(name: str, limit: int = MAX_FIELD) -> str:
    return form_field(name, limit, strip=True)


def _pending(stage: LoginStage) -> PendingLogin | WerkzeugResponse:
    pending = pending_login()
    if pending is None:
        flash("Your sign-in expired. Sign in again.")
        return redirect(url_for("console.login"))
    if pending.stage is not stage:
        return redirect(url_for("account.mfa_enrol" if pending.stage is LoginStage.MFA_ENROL
                                else "account.mfa_code"))
    return pending


def _qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code in a data: URI (the CSP allows data: images, nothing inline)."""
    buffer = io.BytesIO()
    segno.make_qr(uri, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


class _PendingGone(Exception):
    """The pending sign-in was used up by another request: roll back, and sign in again."""


def _settle_pending(db: Session, pending_id: str, attempt: LoginAttempt) -> str | None:
    """After a code was checked: a good one spends the pending sign-in and starts the session (its
    token); a wrong one counts against the pending sign-in unless the address is throttled."""
    if attempt.actor is not None:
        # Spent once: a replay of this cookie, or a racing request with it, finds nothing.
        if not account_sessions.consume_pending(db, pending_id):
            raise _PendingGone
        return start_console_session(db, attempt.actor)
    if not attempt.locked_until:
        account_sessions.count_pending_failure(db, pending_id)
    return None


def _expired() -> WerkzeugResponse:
    end_pending()
    flash("Your sign-in expired. Sign in again.")
    return redirect(url_for("console.login"))


@bp.route("/login/mfa", methods=["GET", "POST"], endpoint="mfa_code")
def mfa_code_view() -> str | WerkzeugResponse | tuple[str, int]:
    pending = _pending(LoginStage.MFA_CODE)
    if not isinstance(pending, PendingLogin):
        return pending
    if request.method == "GET":
        return render_template("account/mfa_code.html")
    pending_id = pending_token() or ""
    try:
        with services().database.transaction() as db:
            attempt = check_mfa_step(db, user_id=pending.user_id, code=_field("code", 64),
                                     box=secret_box(), client_ip=request.remote_addr or "")
            token = _settle_pending(db, pending_id, attempt)
    except _PendingGone:
        return _expired()
    if token is None:
        # Throttled: the same page, 429 with the wait (the pending sign-in keeps its own expiry
        # and attempt limit).
        return throttled_page("account/mfa_code.html", 429 if attempt.locked_until else 401,
                              attempt.retry_after, error=attempt.message)
    return finish_login(token, pending.next_url)


@bp.route("/login/mfa/enrol", methods=["GET", "POST"], endpoint="mfa_enrol")
def mfa_enrol_view() -> str | WerkzeugResponse | tuple[str, int]:
    pending = _pending(LoginStage.MFA_ENROL)
    if not isinstance(pending, PendingLogin):
        return pending
    if request.method == "POST":
        pending_id = pending_token() or ""
        try:
            with services().database.transaction() as db:
                attempt, codes = confirm_mfa_enrolment(
                    db, user_id=pending.user_id, code=_field("code", 64), box=secret_box(),
                    client_ip=request.remote_addr or "")
                token = _settle_pending(db, pending_id, attempt)
        except _PendingGone:
            return _expired()
        if token is not None:
            adopt_session(token)  # signed in; this page shows the recovery codes once, then moves on
            return render_template("account/recovery_codes.html", codes=codes,
                                   next_url=safe_next(pending.next_url))
        error: str | None = attempt.message
        status, retry_after = (429 if attempt.locked_until else 401), attempt.retry_after
    else:
        error, status, retry_after = None, 200, 0
    with services().database.transaction() as db:
        enrolment = begin_mfa_enrolment(db, user_id=pending.user_id, box=secret_box())
    return throttled_page("account/mfa_enrol.html", status, retry_after,
                          secret=enrolment.secret, qr=_qr_data_uri(enrolment.uri), error=error)


# ------------------------------------------------------------------------------- API tokens
TOKEN_MANAGERS = (Role.OPERATOR, Role.ORG_ADMIN)


def _manager() -> Actor:
    return signed_in_actor(*TOKEN_MANAGERS)


def _render_tokens(actor: Actor, *, created_secret: str | None = None, error: str | None = None,
                   form: Mapping[str, object] | None = None) -> str:
    with services().database.transaction() as db:
        tokens = list_tokens(db, actor)
    return render_template("account/tokens.html", tokens=tokens, scopes=KNOWN_SCOPES,
                           created_secret=created_secret, error=error,
                           form=form or {"org": actor.org, "scopes": [], "expires_days": "90"},
                           org_fixed=actor.role is Role.ORG_ADMIN,
                           may_grant=actor.role is Role.ORG_ADMIN,  # operators never mint a ministry's
                           operator_scopes=OPERATOR_SCOPES if actor.role is Role.OPERATOR else ())


@bp.get("/account/tokens", endpoint="tokens")
@login_required
def tokens_view() -> str:
    return _render_tokens(_manager())


@bp.post("/account/tokens", endpoint="create_token")
@login_required
@fresh_auth_required
def create_token_view() -> str | tuple[str, int]:
    actor = _manager()
    scopes = request.form.getlist("scopes")
    form = {"name": _field("name"), "org": _field("org") or actor.org, "scopes": scopes,
            "expires_days": _field("expires_days")}
    try:
        if form["expires_days"] not in EXPIRY_CHOICES:
            raise InvalidInput("choose an expiry from the list")
        days = EXPIRY_CHOICES[str(form["expires_days"])]
        with services().database.transaction() as db:
            created = create_token(
                db, actor, name=str(form["name"]), org=str(form["org"]), scopes=scopes,
                expires_at=utcnow() + timedelta(days=days), known_orgs=live_org_slugs(db))
    except (InvalidInput, PermissionDenied) as exc:
        return _render_tokens(actor, error=exc.message, form=form), exc.status
    return _render_tokens(actor, created_secret=created.secret)


@bp.post("/account/tokens/operator", endpoint="create_operator_token")
@login_required
@fresh_auth_required
def create_operator_token_view() -> str | tuple[str, int]:
    """An operator's own short-lived API token: only here, in a console session (so after MFA)."""
    actor = _manager()
    scopes = request.form.getlist("op_scopes")
    form = {"name": _field("op_name"), "scopes": [], "op_scopes": scopes, "op_hours": _field("op_hours")}
    try:
        hours = form["op_hours"]
        if hours not in OPERATOR_HOURS:
            raise InvalidInput("choose how many hours the operator token lasts")
        with services().database.transaction() as db:
            created = create_operator_token(db, actor, name=str(form["name"]), scopes=scopes,
                                            expires_at=utcnow() + timedelta(hours=int(hours)))
    except (InvalidInput, PermissionDenied) as exc:
        return _render_tokens(actor, error=exc.message, form=form), exc.status
    return _render_tokens(actor, created_secret=created.secret)


@bp.post("/account/tokens/<int:token_id>/revoke", endpoint="revoke_token")
@login_required
def revoke_token_view(token_id: int) -> WerkzeugResponse:
    actor = _manager()
    with services().database.transaction() as db:
        token = revoke_token(db, actor, token_id)
        name = token.name
    flash(f"The token {name!r} was revoked.")
    return redirect(url_for("account.tokens"))
