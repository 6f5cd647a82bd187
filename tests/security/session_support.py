"""Helpers of the session and sign-in attack tests: people with a real authenticator, sign-in through
the console's own forms, and counting what the database holds."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from controlplane.accounts import mfa
from controlplane.accounts.models import LoginSession, Role, User
from controlplane.accounts.service import Actor, create_user
from controlplane.storage import Database, utcnow
from controlplane.web.console.auth import secret_box_for
from tests.fixtures.app import csrf_token_from

PASSWORD = "a-long-session-test-passphrase"


def make_person(app: Flask, database: Database, username: str, role: Role = Role.OPERATOR,
                org: str = "", *, with_mfa: bool = True) -> tuple[Actor, str | None]:
    """A person; with_mfa enrols an authenticator under the app's MFA key. Returns (actor, secret)."""
    with database.transaction() as s:
        user = create_user(s, username=username, password=PASSWORD, role=role, org=org, initiator="test")
        secret = None
        if with_mfa:
            with app.app_context():
                enrolment, _ = mfa.begin_enrolment(s, user.id, secret_box_for(app))
            mfa.confirm_enrolment(user)
            secret = enrolment.secret
        return Actor(user.id, username, role, org), secret


def post_login(client: FlaskClient, username: str, password: str = PASSWORD,
               ip: str = "127.0.0.1") -> TestResponse:
    token = csrf_token_from(client.get("/login", environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def post_code(client: FlaskClient, code: str, *, csrf: str | None = None) -> TestResponse:
    if csrf is None:
        csrf = csrf_token_from(client.get("/login/mfa").get_data(as_text=True))
    return client.post("/login/mfa", data={"csrf_token": csrf, "code": code})


def code_at(secret: str, steps_ahead: int = 0) -> str:
    """The code of the current time step (or one ahead: still accepted, ±1 step of skew)."""
    return pyotp.TOTP(secret).at(utcnow().timestamp() + 30 * steps_ahead)


def sign_in(client: FlaskClient, username: str, secret: str | None, ip: str = "127.0.0.1") -> None:
    response = post_login(client, username, ip=ip)
    if secret is not None:
        assert response.headers["Location"].endswith("/login/mfa")
        response = post_code(client, code_at(secret))
    assert response.status_code == 302, response.get_data(as_text=True)


def live_sessions(database: Database, user_id: int | None = None) -> int:
    with database.transaction() as s:
        query = select(func.count()).select_from(LoginSession).where(LoginSession.revoked_at.is_(None))
        if user_id is not None:
            query = query.where(LoginSession.user_id == user_id)
        return s.scalar(query) or 0


def make_stale(database: Database, user_id: int, minutes: int = 10) -> None:
    """Every session of the person last proved who they are `minutes` ago."""
    with database.transaction() as s:
        s.execute(update(LoginSession).where(LoginSession.user_id == user_id)
                  .values(authenticated_at=utcnow() - timedelta(minutes=minutes)))


def stored_secret(database: Database, user_id: int) -> str:
    with database.transaction() as s:
        value = s.scalar(select(User.mfa_secret_encrypted).where(User.id == user_id))
    assert value is not None
    return value
