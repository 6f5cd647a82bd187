"""Console sign-in: bootstrap operator (MFA enrolment, one-time password), CSRF, logout, headers."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from controlplane.accounts.mfa import read_secret
from controlplane.accounts.models import LoginSession, Role, User
from controlplane.accounts.service import (
    _as_actor,
    create_user,
    ensure_bootstrap_operator,
    resume_session,
    start_session,
)
from controlplane.audit.models import AuditEvent
from controlplane.storage import Database, utcnow
from controlplane.web.console.auth import secret_box_for
from tests.fixtures.app import csrf_token_from

NEW_PASSWORD = "a-long-new-passphrase-42"


def _bootstrap(database: Database) -> str:
    with database.transaction() as s:
        password = ensure_bootstrap_operator(s)
    assert password
    return password


def _login(client: FlaskClient, username: str, password: str, next_url: str = "") -> object:
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "username": username,
                                       "password": password, "next": next_url})


def test_bootstrap_operator_is_created_once(database: Database) -> None:
    first = _bootstrap(database)
    with database.transaction() as s:
        assert ensure_bootstrap_operator(s) is None
        admin = s.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.role == "operator" and admin.must_change_password
        assert first not in admin.password_hash and admin.password_hash.startswith("$argon2id$")


def test_console_requires_sign_in(client: FlaskClient) -> None:
    response = client.get("/status")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_wrong_password_is_refused_and_audited(client: FlaskClient, database: Database) -> None:
    _bootstrap(database)
    response = _login(client, "admin", "not-the-password")
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "Wrong username or password" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    with database.transaction() as s:
        failures = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "account:login", AuditEvent.outcome == "failure"))
        assert failures == 1
        assert s.scalar(select(func.count()).select_from(LoginSession)) == 0


def test_one_time_password_forces_a_change_then_logout_kills_the_session(
        app: Flask, client: FlaskClient, database: Database) -> None:
    password = _bootstrap(database)
    response = _login(client, "admin", password, next_url="/status")
    # an operator sets up an authenticator before anything else
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert response.headers["Location"].endswith("/login/mfa/enrol")  # type: ignore[attr-defined]
    assert client.get("/status").headers["Location"].endswith("/login/mfa/enrol")
    page = client.get("/login/mfa/enrol").get_data(as_text=True)
    with database.transaction() as s:
        admin_id = s.scalar(select(User.id).where(User.username == "admin"))
        assert admin_id is not None
        secret = read_secret(s, admin_id, secret_box_for(app))
    done = client.post("/login/mfa/enrol", data={"csrf_token": csrf_token_from(page),
                                                  "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and "recovery codes" in done.get_data(as_text=True)
    # every page sends the user to the password form until the one-time password is replaced
    forced = client.get("/status")
    assert forced.status_code == 302 and forced.headers["Location"].endswith("/account/password")
    page = client.get("/account/password").get_data(as_text=True)
    response = client.post("/account/password", data={
        "csrf_token": csrf_token_from(page), "current_password": password,
        "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD})
    assert response.status_code == 302
    with database.transaction() as s:
        admin = s.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and not admin.must_change_password

    # logout revokes the session row: replaying the old cookie no longer works
    cookie = client.get_cookie("cp_session")
    assert cookie is not None
    home = client.get("/account/password").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token_from(home)}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("cp_session", cookie.value)
    assert replay.get("/account/password").status_code == 302
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(LoginSession).where(
            LoginSession.revoked_at.is_(None))) == 0


def test_post_without_csrf_token_changes_nothing(client: FlaskClient, database: Database) -> None:
    password = _bootstrap(database)
    response = client.post("/login", data={"username": "admin", "password": password})
    assert response.status_code == 400
    assert "Nothing was changed" in response.get_data(as_text=True)
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(LoginSession)) == 0


def test_login_never_redirects_off_site(client: FlaskClient, database: Database) -> None:
    password = "a-long-org-admin-passphrase"
    with database.transaction() as s:
        create_user(s, username="health-admin", password=password, role=Role.ORG_ADMIN, org="health",
                    initiator="test")
    response = _login(client, "health-admin", password, next_url="//evil.example/phish")
    assert response.headers["Location"] == "/"  # type: ignore[attr-defined]


def test_idle_and_absolute_timeouts_end_a_session(database: Database) -> None:
    _bootstrap(database)
    with database.transaction() as s:
        admin = s.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        token = start_session(s, _as_actor(admin))
    idle, absolute = timedelta(minutes=30), timedelta(hours=12)
    with database.transaction() as s:
        assert resume_session(s, token, idle=idle, absolute=absolute) is not None
    with database.transaction() as s:
        later = utcnow() + timedelta(minutes=31)
        assert resume_session(s, token, idle=idle, absolute=absolute, now=later) is None
    with database.transaction() as s:  # once expired, it stays revoked
        assert resume_session(s, token, idle=idle, absolute=absolute) is None


def test_security_headers_on_every_page(client: FlaskClient) -> None:
    response = client.get("/login")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    cookie_header = client.get("/login").headers.get("Set-Cookie", "")
    if cookie_header:
        assert "HttpOnly" in cookie_header and "SameSite=Lax" in cookie_header


def test_oversized_form_field_is_refused(client: FlaskClient, database: Database) -> None:
    _bootstrap(database)
    response = _login(client, "admin", "x" * 5000)
    assert response.status_code == 400  # type: ignore[attr-defined]
