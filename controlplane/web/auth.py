"""Console sign-in state: loads the actor from the session cookie, keeps the pending MFA step, guards views.

A signed-in session is a server-side row (`sid` in the cookie). Between the password and the MFA
code there is no row: only a signed, 5-minute `mfa_pending` entry in the cookie, which no guarded
view accepts."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, TypeVar, cast

from flask import Flask, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts.mfa import SecretBox
from controlplane.accounts.models import Role
from controlplane.accounts.service import LoginStage, resume_session
from controlplane.errors import PermissionDenied
from controlplane.web import context

P = ParamSpec("P")
R = TypeVar("R")

SESSION_KEY = "sid"
PENDING_KEY = "mfa_pending"
PENDING_SECONDS = 300


@dataclass(frozen=True)
class PendingLogin:
    """A password-verified sign-in waiting for its MFA step; it grants nothing by itself."""

    user_id: int
    stage: LoginStage
    next_url: str


def begin_pending(user_id: int, stage: LoginStage, next_url: str) -> None:
    session.clear()
    session[PENDING_KEY] = {"uid": user_id, "stage": stage.value, "next": next_url,
                            "exp": int(time.time()) + PENDING_SECONDS}


def pending_login() -> PendingLogin | None:
    """The live pending sign-in of this browser, if any (expired ones are dropped)."""
    raw = session.get(PENDING_KEY)
    try:
        if not isinstance(raw, dict) or int(raw["exp"]) < time.time():
            raise ValueError("expired")
        return PendingLogin(int(raw["uid"]), LoginStage(raw["stage"]), str(raw.get("next", "")))
    except (KeyError, TypeError, ValueError):
        session.pop(PENDING_KEY, None)
        return None


def end_pending() -> None:
    session.pop(PENDING_KEY, None)


def secret_box() -> SecretBox:
    """The cipher of stored TOTP secrets, keyed from the app's SECRET_KEY."""
    ext = current_app.extensions
    if "controlplane.mfa_box" not in ext:
        ext["controlplane.mfa_box"] = SecretBox(current_app.config["SECRET_KEY"])
    return cast(SecretBox, ext["controlplane.mfa_box"])


def _load_actor() -> None:
    g.actor = None
    token = session.get(SESSION_KEY)
    if not token or request.endpoint in (None, "static") or (
        request.blueprint == "probes"
    ):
        return
    s = context.settings()
    with context.database().transaction() as db:
        g.actor = resume_session(
            db, token, idle=timedelta(minutes=s.session_idle_minutes),
            absolute=timedelta(hours=s.session_absolute_hours),
        )
    if g.actor is None:
        session.pop(SESSION_KEY, None)


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


def require_role(*roles: Role) -> None:
    actor = context.actor()
    if actor is None or actor.role not in roles:
        raise PermissionDenied("your role does not allow this page")


def init_app(app: Flask) -> None:
    app.before_request(_load_actor)
