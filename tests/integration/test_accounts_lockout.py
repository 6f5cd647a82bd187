"""Login throttling: failures slow one (name, address) with growing delays, 20 limit a client IP; no
name is ever locked; DB-backed, audited."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from controlplane.accounts.lockout import MAX_DELAY, address_key, delay_after
from controlplane.accounts.models import LoginFailure, LoginSession, Role
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


def test_delays_grow_from_nothing_and_are_capped() -> None:
    assert [delay_after(n).total_seconds() for n in range(7)] == [0, 0, 1, 2, 4, 8, 16]
    assert delay_after(12) == delay_after(10_000) == MAX_DELAY


def test_failures_slow_that_address_without_telling_if_the_password_was_right(
        client: FlaskClient, database: Database) -> None:
    _user(database, "slow-user")
    assert _login(client, "slow-user", "wrong-password-123")[0] == 401
    status, page = _login(client, "slow-user", "wrong-password-123")
    assert status == 401 and "Wait 1 seconds" in page
    # within the wait, the right and the wrong password get the very same answer, and no session
    right = _login(client, "slow-user", PASSWORD)
    wrong = _login(client, "slow-user", "wrong-password-123")
    assert right == wrong and right[0] == 429 and "Wait" in right[1]
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(LoginSession)) == 0
    assert _lockouts(database) == []  # a slow-down, not a lock

    # the wait served (stored times moved back), the password works
    with database.transaction() as s:
        s.execute(update(LoginFailure).values(occurred_at=utcnow() - timedelta(minutes=2)))
    status, _page = _login(client, "slow-user", PASSWORD)
    assert status == 302
    with database.transaction() as s:  # a complete sign-in clears that address's failures
        assert s.scalar(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.username == "slow-user")) == 0


def test_the_wait_ends_when_time_passes(database: Database) -> None:
    _user(database, "clock-user")
    start = utcnow()
    with database.transaction() as s:
        for i in range(5):  # each try waits out the delay the previous ones earned
            attempt = check_password_step(s, username="clock-user", password="nope-nope-nope",
                                          client_ip="10.1.1.1", now=start + timedelta(seconds=10 * i))
            assert attempt.actor is None and attempt.locked_until is None
    last = start + timedelta(seconds=40)
    with database.transaction() as s:  # five failures: the next try waits 8 s after the last
        during = check_password_step(s, username="clock-user", password=PASSWORD, client_ip="10.1.1.1",
                                     now=last + timedelta(seconds=7))
        assert during.actor is None and during.locked_until == last + timedelta(seconds=8)
        assert during.retry_after == 1
    with database.transaction() as s:
        after = check_password_step(s, username="clock-user", password=PASSWORD, client_ip="10.1.1.1",
                                    now=last + timedelta(seconds=8, milliseconds=1))
        assert after.actor is not None


def test_unknown_names_are_slowed_like_real_ones(client: FlaskClient, database: Database) -> None:
    for _ in range(2):
        _login(client, "nobody-here", "whatever-password")
    status, page = _login(client, "nobody-here", "whatever-password")
    assert status == 429 and "Wait" in page


def test_twenty_failures_from_one_ip_limit_that_ip_only(client: FlaskClient, database: Database) -> None:
    _user(database, "ip-user")
    attacker = "198.51.100.7"
    with database.transaction() as s:  # one guess at each of twenty names: none is slowed yet
        for n in range(20):
            check_password_step(s, username=f"victim{n}", password="guess-guess-guess",
                                client_ip=attacker)
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


def test_an_ipv6_guesser_cannot_start_afresh_from_the_next_address_of_its_64(
        client: FlaskClient, database: Database) -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2::ffff") == "2001:db8:1:2::/64"
    assert address_key("::ffff:198.51.100.7") == address_key("198.51.100.7") == "198.51.100.7"
    _user(database, "v6-user")
    assert _login(client, "v6-user", "wrong-password-123", ip="2001:db8:1:2::1")[0] == 401
    assert _login(client, "v6-user", "wrong-password-123", ip="2001:db8:1:2::2")[0] == 401
    assert _login(client, "v6-user", PASSWORD, ip="2001:db8:1:2::3")[0] == 429  # same /64: waits
    assert _login(client, "v6-user", PASSWORD, ip="2001:db8:1:3::1")[0] == 302  # another /64 does not
