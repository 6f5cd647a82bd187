"""Console sign-in state: loads the actor from the session cookie and guards views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from flask import Flask, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts.models import Role
from controlplane.accounts.service import resume_session
from controlplane.errors import PermissionDenied
from controlplane.web import context

P = ParamSpec("P")
R = TypeVar("R")

SESSION_KEY = "sid"


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
