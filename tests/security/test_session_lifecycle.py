"""Issue 12 items 7 and 8: nobody locks an owner out from elsewhere, a password change ends the other
sessions, a person lists and ends their sessions, sensitive actions need fresh authentication,
and off loopback the session cookie is __Host- and Secure."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import func, select

from controlplane.accounts.models import ApiToken, LoginSession, Role
from controlplane.app import close_app, create_app
from controlplane.audit.models import AuditEvent
from controlplane.errors import InvalidSettings
from controlplane.settings import Settings, load_settings
from controlplane.storage import Database
from tests.fixtures.app import csrf_token_from
from tests.integration.api_actors import ensure_org
from tests.security.session_support import (
    PASSWORD,
    code_at,
    live_sessions,
    make_person,
    make_stale,
    post_login,
    sign_in,
)

NEW_PASSWORD = "another-long-passphrase-42"
HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.transaction() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# ------------------------------------------------------------------------------- throttle
def test_five_failures_from_five_addresses_do_not_lock_the_owner_out(
        app: Flask, database: Database) -> None:
    actor, secret = make_person(app, database, "op-owner")
    attacker = app.test_client()
    for n in range(5):
        guess = post_login(attacker, "op-owner", "wrong-guess-123", ip=f"198.51.100.{n + 1}")
        assert guess.status_code == 401
    # and more from the first address: that address is slowed (429), nobody else is
    post_login(attacker, "op-owner", "wrong-guess-123", ip="198.51.100.1")
    assert post_login(attacker, "op-owner", "wrong-guess-123", ip="198.51.100.1").status_code == 429
    owner = app.test_client()
    sign_in(owner, "op-owner", secret, ip="203.0.113.50")
    assert owner.get("/status").status_code == 200
    assert live_sessions(database, actor.user_id) == 1
    assert _events(database, "account:lockout") == []


# ---------------------------------------------------------------- password change, sessions
def test_a_password_change_ends_the_other_sessions(app: Flask, database: Database) -> None:
    actor, secret = make_person(app, database, "op-two-places")
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, "op-two-places", secret, ip="203.0.113.1")
    # the phone signs in too, with the next step's code (each code works once)
    response = post_login(phone, "op-two-places", ip="203.0.113.2")
    assert response.status_code == 302
    phone_code = phone.post("/login/mfa", data={
        "csrf_token": csrf_token_from(phone.get("/login/mfa").get_data(as_text=True)),
        "code": code_at(secret, 1)})  # type: ignore[arg-type]
    assert phone_code.status_code == 302
    assert phone.get("/status").status_code == 200 and live_sessions(database, actor.user_id) == 2

    page = laptop.get("/account/password").get_data(as_text=True)
    changed = laptop.post("/account/password", data={
        "csrf_token": csrf_token_from(page), "current_password": PASSWORD,
        "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD})
    assert changed.status_code == 302
    assert "Other sessions ended: 1." in laptop.get("/account/sessions").get_data(as_text=True)
    assert laptop.get("/status").status_code == 200  # the session that changed it goes on
    ended = phone.get("/status")
    assert ended.status_code == 302 and ended.headers["Location"].startswith("/login")
    assert live_sessions(database, actor.user_id) == 1
    assert _events(database, "account:password:change")[-1].detail["sessions_ended"] == 1


def test_a_person_lists_and_ends_their_sessions(app: Flask, database: Database) -> None:
    actor, secret = make_person(app, database, "op-many", with_mfa=False, role=Role.ORG_ADMIN,
                                org="health")
    other, _ = make_person(app, database, "op-other", with_mfa=False, role=Role.ORG_ADMIN, org="health")
    assert secret is None
    clients = [app.test_client() for _ in range(3)]
    for i, client in enumerate(clients):
        response = client.post("/login", data={
            "csrf_token": csrf_token_from(client.get("/login").get_data(as_text=True)),
            "username": "op-many", "password": PASSWORD},
            headers={"User-Agent": f"Browser/{i}"}, environ_base={"REMOTE_ADDR": f"203.0.113.{i + 10}"})
        assert response.status_code == 302
    stranger = app.test_client()
    sign_in(stranger, "op-other", None)
    page = clients[0].get("/account/sessions").get_data(as_text=True)
    assert page.count("Browser/") == 3 and "203.0.113.11" in page and "This session" in page
    assert "Browser/0" in page.split("This session")[0].rsplit("<tr", 1)[1]  # the current one, marked
    with database.transaction() as s:
        ids = dict(s.execute(select(LoginSession.user_agent, LoginSession.id_hash).where(
            LoginSession.user_id == actor.user_id)).all())
        ids["stranger"] = s.scalar(select(LoginSession.id_hash).where(LoginSession.user_id == other.user_id))
    csrf = csrf_token_from(page)
    # no CSRF token, nothing ended
    assert clients[0].post(f"/account/sessions/{ids['Browser/1']}/end").status_code == 400
    # another person's session is not one of yours
    theirs = clients[0].post(f"/account/sessions/{ids['stranger']}/end", data={"csrf_token": csrf})
    assert theirs.status_code == 404
    assert clients[0].post(f"/account/sessions/{ids['Browser/1']}/end",
                           data={"csrf_token": csrf}).status_code == 302
    assert clients[1].get("/account/sessions").status_code == 302  # signed out
    assert clients[0].post("/account/sessions/end-others", data={"csrf_token": csrf}).status_code == 302
    assert clients[2].get("/account/sessions").status_code == 302
    assert clients[0].get("/account/sessions").status_code == 200
    assert stranger.get("/account/sessions").status_code == 200  # untouched
    assert live_sessions(database, actor.user_id) == 1
    assert [e.detail["sessions"] for e in _events(database, "account:session:end")] == [1, 1]


# ------------------------------------------------------------------- fresh authentication
SENSITIVE = [
    ("/tenants/health/keys/rotate", {"reason": "scheduled"}),
    ("/tenants/health/decommission", {"confirm": "health"}),
    ("/account/tokens", {"name": "ci", "org": "health", "scopes": "documents:read", "expires_days": "30"}),
    ("/account/tokens/operator", {"op_name": "script", "op_scopes": "tenants:read", "op_hours": "1"}),
    ("/people/", {"username": "new-person", "role": "org_member", "org": "health"}),
    ("/people/op-target/role", {"role": "auditor", "org": ""}),
    ("/people/op-target/disable", {"confirm": "op-target"}),
    ("/people/op-target/enable", {}),
    ("/people/op-target/reset-password", {"confirm": "op-target", "reset_mfa": "1"}),
]


@pytest.mark.parametrize(("path", "form"), SENSITIVE, ids=[p for p, _ in SENSITIVE])
def test_sensitive_actions_without_fresh_authentication_are_reprompted(
        app: Flask, database: Database, path: str, form: dict[str, str]) -> None:
    actor, secret = make_person(app, database, "op-stale")
    make_person(app, database, "op-target", with_mfa=False)
    client = app.test_client()
    sign_in(client, "op-stale", secret)
    make_stale(database, actor.user_id)
    with database.transaction() as s:
        before_events = s.scalar(select(func.count()).select_from(AuditEvent))
        before_tokens = s.scalar(select(func.count()).select_from(ApiToken))
    csrf = csrf_token_from(client.get("/account/sessions").get_data(as_text=True))
    answer = client.post(path, data={"csrf_token": csrf, **form})
    assert answer.status_code == 401
    page = answer.get_data(as_text=True)
    assert "Confirm it is you" in page and 'name="code"' in page and 'name="password"' in page
    assert f'name="next" value="{path}"' in page
    with database.transaction() as s:  # nothing happened, not even an audit event
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before_events
        assert s.scalar(select(func.count()).select_from(ApiToken)) == before_tokens


def test_fresh_authentication_returns_to_the_action(app: Flask, database: Database) -> None:
    ensure_org(database, "health")  # tokens name a live organisation
    actor, secret = make_person(app, database, "health-admin", role=Role.ORG_ADMIN, org="health")
    assert secret is not None
    client = app.test_client()
    sign_in(client, "health-admin", secret)
    make_stale(database, actor.user_id)
    csrf = csrf_token_from(client.get("/account/tokens").get_data(as_text=True))
    form = {"name": "ci", "org": "health", "scopes": "documents:read", "expires_days": "30"}
    prompt = client.post("/account/tokens", data={"csrf_token": csrf, **form}).get_data(as_text=True)
    carried = dict(HIDDEN_RE.findall(prompt))
    assert carried["r:name"] == "ci" and carried["method"] == "POST"
    # the password alone, or a wrong code, is not enough
    wrong = client.post("/account/reauth", data={**carried, "password": PASSWORD, "code": "000000"})
    assert wrong.status_code == 401 and "wrong" in wrong.get_data(as_text=True)
    done = client.post("/account/reauth", data={**carried, "password": PASSWORD,
                                                "code": code_at(secret, 1)})
    assert done.status_code == 200
    again = dict(HIDDEN_RE.findall(done.get_data(as_text=True)))
    assert again["name"] == "ci" and 'action="/account/tokens"' in done.get_data(as_text=True)
    created = client.post("/account/tokens", data=again)
    assert created.status_code == 200 and "cpt_" in created.get_data(as_text=True)
    assert [e.outcome for e in _events(database, "account:reauth")] == ["failure", "success"]


# --------------------------------------------------------------------------------- cookies
@pytest.mark.parametrize(("host", "choice", "secure"), [
    ("0.0.0.0", "auto", True), ("console.gov.example", "auto", True), ("127.0.0.1", "auto", False),
    ("::1", "auto", False), ("localhost", "auto", False), ("127.0.0.1", "true", True),
    ("0.0.0.0", "false", False),
])
def test_cookies_are_host_prefixed_and_secure_when_not_on_loopback(
        settings: Settings, database: Database, host: str, choice: str, secure: bool) -> None:
    app = create_app(settings.replace(host=host, secure_cookies=choice))
    app.config.update(TESTING=True)
    try:
        make_person(app, database, "org-cookie", role=Role.ORG_ADMIN, org="health", with_mfa=False)
        client = app.test_client()
        base = "https://console.gov.example" if secure else "http://localhost"
        token = csrf_token_from(client.get("/login", base_url=base).get_data(as_text=True))
        response = client.post("/login", base_url=base, headers={"Referer": f"{base}/login"}, data={
            "csrf_token": token, "username": "org-cookie", "password": PASSWORD})
        assert response.status_code == 302
        cookie = next(h for h in response.headers.getlist("Set-Cookie") if "session=" in h)
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        if secure:
            assert cookie.startswith("__Host-cp_session=")
            assert "secure" in attributes and "path" in attributes and "domain" not in attributes
            assert "max-age=63072000" in response.headers["Strict-Transport-Security"]
        else:
            assert cookie.startswith("cp_session=") and "secure" not in attributes
            assert "Strict-Transport-Security" not in response.headers
        assert "httponly" in attributes
    finally:
        close_app(app)


def test_secure_cookies_takes_auto_true_or_false_only(settings: Settings) -> None:
    for word, host, expected in (("auto", "10.0.0.5", True), ("yes", "127.0.0.1", True),
                                 ("off", "10.0.0.5", False), ("AUTO", "[::1]", False)):
        assert settings.replace(secure_cookies=word, host=host).cookies_secure is expected
    with pytest.raises(InvalidSettings, match="secure_cookies"):
        load_settings({"instance_path": settings.instance_path, "secure_cookies": "maybe"}, environ={})
    assert load_settings({"instance_path": settings.instance_path}, environ={}).secure_cookies == "auto"
