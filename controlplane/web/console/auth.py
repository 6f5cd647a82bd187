"""Console sign-in state: loads the actor from the session cookie, keeps the pending MFA step, guards views.

A signed-in session is a server-side row (`sid` in the cookie). Between the password and the MFA
code there is a server-side pending row too (accounts.sessions): the cookie's `mfa_pending` holds
only its random id, so a cookie forged with SECRET_KEY, or replayed after use, signs nobody in."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar, cast

from flask import (
    Flask,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts import sessions as account_sessions
from controlplane.accounts.mfa import SecretBox
from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor, LoginStage, resume_session_state
from controlplane.accounts.sessions import PendingLogin
from controlplane.errors import PermissionDenied
from controlplane.web import context
from controlplane.web.services import services, services_of

P = ParamSpec("P")
R = TypeVar("R")

SESSION_KEY = "sid"
PENDING_KEY = "mfa_pending"
# Fields never carried over the re-prompt to the action it guards (secrets, and the CSRF token,
# which the continue page issues afresh).
_NOT_REPLAYED = frozenset({"csrf_token", "password", "current_password", "new_password",
                           "repeat_password", "code"})
MAX_REPLAYED = 40


def set_pending(token: str) -> None:
    """Put a pending sign-in's id in the cookie, dropping everything else there."""
    session.clear()
    session[PENDING_KEY] = token


def pending_token() -> str | None:
    raw = session.get(PENDING_KEY)
    return raw if isinstance(raw, str) and 0 < len(raw) <= 64 else None


def pending_login() -> PendingLogin | None:
    """The live pending sign-in of this browser, if any (unknown or expired ones are dropped)."""
    token = pending_token()
    if token is None:
        session.pop(PENDING_KEY, None)
        return None
    with services().database.transaction() as db:
        pending = account_sessions.load_pending(db, token)
    if pending is None:
        session.pop(PENDING_KEY, None)
    return pending


def end_pending() -> None:
    session.pop(PENDING_KEY, None)


def secret_box() -> SecretBox:
    """The cipher of stored TOTP secrets, keyed by the MFA key file (never by SECRET_KEY, which
    only opens secrets of earlier releases so they can be re-sealed)."""
    return secret_box_for(current_app)


def secret_box_for(app: Flask) -> SecretBox:
    return services_of(app).mfa_box


def _load_actor() -> None:
    g.actor = None
    token = session.get(SESSION_KEY)
    if not token or request.endpoint in (None, "static") or (
        request.blueprint == "probes" and request.endpoint != "probes.readyz"
    ):
        return
    s = services().settings
    with services().database.transaction() as db:
        state = resume_session_state(
            db, token, idle=timedelta(minutes=s.session_idle_minutes),
            absolute=timedelta(hours=s.session_absolute_hours),
        )
    if state is None:
        session.pop(SESSION_KEY, None)
        return
    g.actor, g.session_hash, g.authenticated_at = state.actor, state.id_hash, state.authenticated_at


def current_session_hash() -> str:
    return cast(str, g.get("session_hash", ""))


def login_required(view: Callable[P, R]) -> Callable[P, R | WerkzeugResponse]:
    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | WerkzeugResponse:
        actor = context.actor()
        if actor is None:
            pending = pending_login()
            if pending is not None:
                return redirect(url_for("account.mfa_enrol" if pending.stage is LoginStage.MFA_ENROL
                                        else "account.mfa_code"))
            return redirect(url_for("console.login", next=request.path))
        if actor.must_change_password and request.endpoint != "console.change_password":
            return redirect(url_for("console.change_password"))
        return view(*args, **kwargs)

    return wrapped


def fresh_auth_required(view: Callable[P, R]) -> Callable[P, R | WerkzeugResponse]:
    """Guard a sensitive action (key rotation, decommission, token creation, people
    administration): the session must have proved its person (password, and TOTP if enrolled)
    within the last 5 minutes. Otherwise the re-prompt page is shown; it carries the action's
    form fields (never secrets) and, once confirmed, offers to send them on. Put it under
    @login_required."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | WerkzeugResponse:
        if context.actor() is None:  # login_required runs first; this is defence in depth
            return redirect(url_for("console.login", next=request.path))
        if account_sessions.is_fresh(g.get("authenticated_at")):
            return view(*args, **kwargs)
        if request.method == "GET":
            return redirect(url_for("sessions.reauth", next=request.full_path.rstrip("?")))
        return reauth_prompt(request.path, replay_fields(), method="POST")

    return wrapped


def replay_fields() -> list[tuple[str, str]]:
    """The current form's fields that the re-prompt carries to the guarded action."""
    return [(k, v) for k, v in request.form.items(multi=True) if k not in _NOT_REPLAYED][:MAX_REPLAYED]


def reauth_prompt(next_path: str, fields: list[tuple[str, str]], *, method: str, error: str = "",
                  status: int = 401, retry_after: int = 0) -> WerkzeugResponse:
    """The re-prompt page (401: this session must authenticate again; 429 while throttled)."""
    with services().database.transaction() as db:
        actor = context.actor()
        wants_code = actor is not None and account_sessions.needs_code(db, actor)
    response = make_response(render_template(
        "account/reauth.html", next=next_path, fields=fields, error=error, wants_code=wants_code,
        method=method), status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def require_role(*roles: Role) -> None:
    actor = context.actor()
    if actor is None or actor.role not in roles:
        raise PermissionDenied("your role does not allow this page")


def signed_in_actor(*roles: Role) -> Actor:
    """The signed-in person, of one of `roles` when any are given (PermissionDenied otherwise).
    Views call it under @login_required; the 401 is for the type checker and defence in depth."""
    if roles:
        require_role(*roles)
    actor = context.actor()
    if actor is None:
        abort(401)
    return actor


def init_app(app: Flask) -> None:
    app.before_request(_load_actor)
