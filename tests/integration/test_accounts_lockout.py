"""Login throttling: 5 failures lock a name for 15 minutes, 20 limit a client IP; DB-backed, audited."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from controlplane.accounts.lockout import LOCK_DURATION
from controlplane.accounts.models import LoginFailure, LoginLockout, LoginSession, Role
from controlplane.accounts.service import check_password_step, create_user
from controlplane.audit.models import AuditEvent
from controlplane.storage import Database, utcnow
from tests.fixtures.app import csrf_token_from

PASSWORD = "a-long-test-passphrase-9"


def _user(database: Database, username: str) -> None:
    with database.transaction() as s:
        create_user(s, username=username, password=PASSWORD, role=Role.ORG_ADMIN, org="health",
                    initiator="test")


def _login(client: FlaskClient, username: str, password: str, ip: str = "127.0.0.1") -> tuple[int, str]:
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "username": username,
                                           "password": password},
                           environ_base={"REMOTE_ADDR": ip})
    return response.status_code, response.get_data(as_text=True)


def _lockouts(database: Database) -> list[AuditEvent]:
    with database.transaction() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "account:lockout")))


def test_five_failures_lock_the_account_without_telling_if_the_password_was_right(
        client: FlaskClient, database: Database) -> None:
    _user(database, "locked-user")
    for _ in range(4):
        assert _login(client, "locked-user", "wrong-password-123")[0] == 401
    status, page = _login(client, "locked-user", "wrong-password-123")
    assert status == 429 and "locked" in page and "until" in page and "UTC" in page
    # while locked, the right and the wrong password get the very same answer, and no session
    right = _login(client, "locked-user", PASSWORD)
    wrong = _login(client, "locked-user", "wrong-password-123")
    assert right == wrong and right[0] == 429
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(LoginSession)) == 0
    events = _lockouts(database)
    assert len(events) == 1 and events[0].target == "user:locked-user"
    assert events[0].detail["failures"] == 5

    # fifteen minutes later (stored times moved back) the lock is over and the password works
    with database.transaction() as s:
        s.execute(update(LoginLockout).values(locked_until=utcnow() - timedelta(seconds=1)))
        s.execute(update(LoginFailure).values(occurred_at=utcnow() - timedelta(minutes=16)))
    status, _page = _login(client, "locked-user", PASSWORD)
    assert status == 302
    with database.transaction() as s:  # a complete sign-in clears the name's failures
        assert s.scalar(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.username == "locked-user")) == 0


def test_lock_ends_after_its_window_when_time_passes(database: Database) -> None:
    _user(database, "clock-user")
    start = utcnow()
    with database.transaction() as s:
        for i in range(5):
            attempt = check_password_step(s, username="clock-user", password="nope-nope-nope",
                                          client_ip="10.1.1.1", now=start + timedelta(seconds=i))
        assert attempt.locked_until is not None
    with database.transaction() as s:
        during = check_password_step(s, username="clock-user", password=PASSWORD, client_ip="10.1.1.1",
                                     now=start + timedelta(minutes=10))
        assert during.actor is None and during.locked_until is not None
    with database.transaction() as s:
        after = check_password_step(s, username="clock-user", password=PASSWORD, client_ip="10.1.1.1",
                                    now=start + timedelta(seconds=4) + LOCK_DURATION + timedelta(seconds=1))
        assert after.actor is not None


def test_unknown_names_lock_like_real_ones(client: FlaskClient, database: Database) -> None:
    for _ in range(5):
        status, page = _login(client, "nobody-here", "whatever-password")
    assert status == 429 and "locked" in page


def test_twenty_failures_from_one_ip_limit_that_ip_only(client: FlaskClient, database: Database) -> None:
    _user(database, "ip-user")
    attacker = "198.51.100.7"
    with database.transaction() as s:  # four guesses at each of five names: no name is locked
        for n in range(5):
            for _ in range(4):
                check_password_step(s, username=f"victim{n}", password="guess-guess-guess",
                                    client_ip=attacker)
        assert s.scalar(select(func.count()).select_from(LoginLockout)) == 0
    status, page = _login(client, "ip-user", PASSWORD, ip=attacker)
    assert status == 429 and "your network" in page
    # another client is not affected
    assert _login(client, "ip-user", PASSWORD, ip="203.0.113.9")[0] == 302
    events = _lockouts(database)
    assert [e.target for e in events] == [f"client:{attacker}"]
    with database.transaction() as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.action == "account:login",
                                                     AuditEvent.outcome == "failure")).all()
        assert refused[-1].detail["reason"] == "client limited"
