"""TOTP MFA: enrolment before any page, codes from the real secret, no reuse, recovery codes, encryption."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from controlplane.accounts.mfa import read_secret
from controlplane.accounts.models import (
    LoginFailure,
    LoginSession,
    MfaPending,
    MfaRecoveryCode,
    Role,
    User,
)
from controlplane.accounts.service import create_user
from controlplane.audit.models import AuditEvent
from controlplane.storage import Database, utcnow
from controlplane.web.console.auth import secret_box_for
from tests.fixtures.app import csrf_token_from

PASSWORD = "a-long-test-passphrase-7"
CODES_RE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>")


def _user(database: Database, username: str, role: Role, org: str = "") -> int:
    with database.transaction() as s:
        return create_user(s, username=username, password=PASSWORD, role=role, org=org,
                           initiator="test").id


def _login(client: FlaskClient, username: str, password: str = PASSWORD, next_url: str = "",
           ip: str = "127.0.0.1") -> object:
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "username": username,
                                       "password": password, "next": next_url},
                       environ_base={"REMOTE_ADDR": ip})


def _secret(app: Flask, database: Database, user_id: int) -> str:
    with database.transaction() as s:
        return read_secret(s, user_id, secret_box_for(app))


def _enrol(app: Flask, client: FlaskClient, database: Database, user_id: int) -> tuple[str, list[str]]:
    page = client.get("/login/mfa/enrol")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in html
    secret = _secret(app, database, user_id)
    assert secret in html  # shown as text too, for typing in
    done = client.post("/login/mfa/enrol", data={"csrf_token": csrf_token_from(html),
                                                  "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = CODES_RE.findall(done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def _code_page_post(client: FlaskClient, code: str) -> object:
    page = client.get("/login/mfa")
    assert page.status_code == 200
    return client.post("/login/mfa", data={"csrf_token": csrf_token_from(page.get_data(as_text=True)),
                                           "code": code})


def _sign_out(client: FlaskClient) -> None:
    home = client.get("/account/password").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token_from(home)}).status_code == 302


def _count(database: Database, action: str, outcome: str = "success") -> int:
    with database.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.outcome == outcome)) or 0


def test_operator_without_mfa_reaches_nothing_until_enrolled(
        app: Flask, client: FlaskClient, database: Database) -> None:
    _user(database, "op-noenrol", Role.OPERATOR)
    response = _login(client, "op-noenrol", next_url="/status")
    assert response.headers["Location"].endswith("/login/mfa/enrol")  # type: ignore[attr-defined]
    for path in ("/status", "/", "/account/password", "/account/tokens"):
        blocked = client.get(path)
        assert blocked.status_code == 302 and blocked.headers["Location"].endswith("/login/mfa/enrol")
    # the code page belongs to enrolled users only
    assert client.get("/login/mfa").headers["Location"].endswith("/login/mfa/enrol")
    with database.transaction() as s:  # half signed in: no session row exists
        assert s.scalar(select(func.count()).select_from(LoginSession)) == 0

    # the pending state (a server-side row) lasts 5 minutes, then it grants not even the enrolment page
    with database.transaction() as s:
        s.execute(update(MfaPending).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/login/mfa/enrol").headers["Location"].endswith("/login")
    assert client.get("/status").headers["Location"].startswith("/login?")


def test_enrol_then_sign_in_with_a_code_that_cannot_be_reused(
        app: Flask, client: FlaskClient, database: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user_id = _user(database, "op-mfa", Role.OPERATOR)
    _login(client, "op-mfa", next_url="/status")
    secret, _codes = _enrol(app, client, database, user_id)
    assert client.get("/status").status_code == 200
    assert _count(database, "account:mfa:enrol") == 1

    # stored encrypted, never in clear
    with database.transaction() as s:
        user = s.get(User, user_id)
        assert user is not None and user.mfa_enrolled_at is not None
        assert user.mfa_secret_encrypted and secret not in user.mfa_secret_encrypted
        assert user.mfa_secret_encrypted.startswith("k1:")  # sealed under the MFA key file
        assert user.mfa_last_step is not None

    _sign_out(client)
    response = _login(client, "op-mfa", next_url="/status")
    assert response.headers["Location"].endswith("/login/mfa")  # type: ignore[attr-defined]
    assert client.get("/status").headers["Location"].endswith("/login/mfa")
    # the code used for enrolment is spent; the next time step's code (within ±1 step) works once
    totp = pyotp.TOTP(secret)
    with database.transaction() as s:
        enrol_step = s.scalar(select(User.mfa_last_step).where(User.id == user_id))
    assert enrol_step is not None
    spent = _code_page_post(client, totp.generate_otp(enrol_step))
    assert spent.status_code == 401  # type: ignore[attr-defined]
    assert "not valid" in spent.get_data(as_text=True)  # type: ignore[attr-defined]
    next_code = totp.generate_otp(enrol_step + 1)
    signed_in = _code_page_post(client, next_code)
    assert signed_in.status_code == 302  # type: ignore[attr-defined]
    assert signed_in.headers["Location"] == "/status"  # type: ignore[attr-defined]
    assert client.get("/status").status_code == 200

    _sign_out(client)
    _login(client, "op-mfa")
    reused = _code_page_post(client, next_code)
    assert reused.status_code == 401  # type: ignore[attr-defined]
    assert client.get("/status").status_code == 302
    assert _count(database, "account:mfa:verify", "failure") == 2
    with database.transaction() as s:
        logins = s.scalars(select(AuditEvent).where(AuditEvent.action == "account:login",
                                                    AuditEvent.outcome == "success")).all()
        assert [e.detail["method"] for e in logins] == ["totp", "totp"]
    assert secret not in caplog.text


def test_recovery_codes_are_hashed_and_work_once(
        app: Flask, client: FlaskClient, database: Database) -> None:
    user_id = _user(database, "aud-mfa", Role.AUDITOR)
    _login(client, "aud-mfa")
    _secret_value, codes = _enrol(app, client, database, user_id)
    with database.transaction() as s:
        hashes = s.scalars(select(MfaRecoveryCode.code_hash).where(
            MfaRecoveryCode.user_id == user_id)).all()
        assert len(hashes) == 10 and not any(c in h for c in codes for h in hashes)
    _sign_out(client)

    _login(client, "aud-mfa")
    assert _code_page_post(client, codes[3].upper()).status_code == 302  # type: ignore[attr-defined]
    assert client.get("/status").status_code == 200
    assert _count(database, "account:mfa:recovery:use") == 1
    _sign_out(client)

    _login(client, "aud-mfa")
    assert _code_page_post(client, codes[3]).status_code == 401  # type: ignore[attr-defined]


def test_wrong_codes_slow_the_address_and_use_up_the_pending_sign_in(
        app: Flask, client: FlaskClient, database: Database) -> None:
    user_id = _user(database, "op-guess", Role.OPERATOR)
    _login(client, "op-guess")
    secret, _codes = _enrol(app, client, database, user_id)
    _sign_out(client)
    _login(client, "op-guess")
    totp = pyotp.TOTP(secret)
    valid = {totp.at(time.time() + d) for d in (-60, -30, 0, 30, 60)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    assert _code_page_post(client, wrong).status_code == 401  # type: ignore[attr-defined]
    second = _code_page_post(client, wrong)
    assert second.status_code == 401  # type: ignore[attr-defined]
    assert "Wait 1 seconds" in second.get_data(as_text=True)  # type: ignore[attr-defined]
    # tried again at once: refused unchecked, with the time to wait
    slowed = _code_page_post(client, wrong)
    assert slowed.status_code == 429  # type: ignore[attr-defined]
    assert slowed.headers["Retry-After"] == "1"  # type: ignore[attr-defined]
    for _ in range(3):  # each wait served (stored times moved back), three more wrong codes
        with database.transaction() as s:
            s.execute(update(LoginFailure).values(occurred_at=utcnow() - timedelta(minutes=2)))
        assert _code_page_post(client, wrong).status_code == 401  # type: ignore[attr-defined]
    # five wrong codes use up the pending sign-in: the password is asked again
    assert client.get("/login/mfa").headers["Location"].endswith("/login")
    # this address waits; the owner elsewhere does not, and no name is ever locked
    assert _login(client, "op-guess").status_code == 429  # type: ignore[attr-defined]
    elsewhere = _login(client, "op-guess", ip="203.0.113.77")
    assert elsewhere.headers["Location"].endswith("/login/mfa")  # type: ignore[attr-defined]
    assert _count(database, "account:lockout") == 0


def test_org_admin_without_mfa_signs_in_with_the_password(client: FlaskClient, database: Database) -> None:
    _user(database, "health-admin", Role.ORG_ADMIN, org="health")
    response = _login(client, "health-admin", next_url="/account/password")
    assert response.headers["Location"] == "/account/password"  # type: ignore[attr-defined]
    assert client.get("/account/password").status_code == 200  # signed in, no MFA step
    assert client.get("/status").status_code == 403  # platform internals stay staff-only
