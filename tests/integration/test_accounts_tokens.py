"""Scoped API tokens: created once in the console by the organisation's admin, hashed at rest, bearer
auth on /api/v1, revocable; operator tokens made only in the console after MFA, short-lived, bound to
their operator."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from controlplane.accounts.models import ApiToken, Role, User
from controlplane.accounts.service import Actor, create_user, start_session
from controlplane.accounts.token_use import use_counts
from controlplane.accounts.tokens import (
    authenticate_bearer,
    create_operator_token,
    create_token,
    list_tokens,
    revoke_token,
)
from controlplane.audit.models import AuditEvent
from controlplane.errors import InvalidInput, NotFound, PermissionDenied
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tenancy.registry import live_org_slugs
from controlplane.web.api.api_auth import require_scope
from controlplane.web.console.auth import SESSION_KEY
from tests.fixtures.app import csrf_token_from
from tests.integration.api_actors import ensure_org, make_user, org_admin

IN_30_DAYS = timedelta(days=30)

SECRET_RE = re.compile(r"cpt_[0-9a-f]{8}_[A-Za-z0-9_-]+")


def _actor(database: Database, username: str, role: Role, org: str = "") -> Actor:
    if org:
        ensure_org(database, org)
    with database.transaction() as s:
        user = create_user(s, username=username, password="a-long-test-password-1", role=role, org=org,
                           initiator="test")
        return Actor(user.id, username, role, org)


def _signed_in(app: Flask, database: Database, actor: Actor) -> FlaskClient:
    """A client with a live session (sign-in and MFA have their own tests)."""
    with database.transaction() as s:
        token = start_session(s, actor)
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = token
    return client


def _create_in_console(client: FlaskClient, **form: object) -> tuple[int, str]:
    page = client.get("/account/tokens")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token_from(page.get_data(as_text=True)), "expires_days": "90", **form}
    response = client.post("/account/tokens", data=data)
    return response.status_code, response.get_data(as_text=True)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _actions(database: Database) -> list[tuple[str, str]]:
    with database.transaction() as s:
        return [(e.action, e.outcome) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action.like("api_token:%")).order_by(AuditEvent.id))]


def test_create_in_console_then_whoami_with_the_bearer_token(app: Flask, database: Database) -> None:
    maker = _actor(database, "health-tokens", Role.ORG_ADMIN, "health")
    operator = _signed_in(app, database, maker)  # the organisation's admin: only they grant its scopes
    status, page = _create_in_console(operator, name="health records system", org="health",
                                      scopes=["documents:issue", "tenants:read"])
    assert status == 200
    secret = SECRET_RE.search(page)
    assert secret is not None
    secret_value = secret.group(0)

    api = app.test_client()
    response = api.get("/api/v1/whoami", headers=_bearer(secret_value))
    assert response.status_code == 200
    body = response.get_json()
    assert body["org"] == "health" and body["scopes"] == ["documents:issue", "tenants:read"]

    with database.transaction() as s:  # only the SHA-256 is stored; last use is recorded
        row = s.scalar(select(ApiToken))
        assert row is not None
        assert row.secret_hash == hashlib.sha256(secret_value.encode()).hexdigest()
        stored = [str(getattr(row, c.key)) for c in ApiToken.__table__.columns]
        assert not any(secret_value in value or secret_value.split("_", 2)[2] in value for value in stored)
        assert secret_value.startswith(f"cpt_{row.prefix}_")
        assert row.last_used_at is not None and row.created_by == "user:health-tokens"
        assert row.created_by_user_id == maker.user_id
        assert sum(use_counts(s, row.id).values()) == 1  # the use is counted, not audited
    # the list never shows the secret again
    listing = operator.get("/account/tokens").get_data(as_text=True)
    assert secret_value not in listing and f"cpt_{row.prefix}_" in listing
    assert _actions(database) == [("api_token:create", "success")]


def test_wrong_revoked_and_expired_tokens_get_a_clear_401(app: Flask, database: Database) -> None:
    operator_actor = _actor(database, "interior-revoke", Role.ORG_ADMIN, "interior")
    with database.transaction() as s:
        created = create_token(s, operator_actor, name="mail gateway", org="interior",
                               scopes=["mail:send"], expires_at=utcnow() + IN_30_DAYS,
                               known_orgs=["interior"])
        token_id, secret = created.token.id, created.secret
    api = app.test_client()
    cases = {
        "missing": ({}, "Authorization: Bearer"),
        "malformed": (_bearer("not-a-token"), "malformed"),
        "wrong": (_bearer(secret[:-4] + "AAAA"), "not valid"),
    }
    for headers, message in cases.values():
        response = api.get("/api/v1/whoami", headers=headers)
        assert response.status_code == 401 and message in response.get_json()["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    operator = _signed_in(app, database, operator_actor)
    page = operator.get("/account/tokens").get_data(as_text=True)
    revoked = operator.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token_from(page)})
    assert revoked.status_code == 302
    response = api.get("/api/v1/whoami", headers=_bearer(secret))
    assert response.status_code == 401 and response.get_json()["message"] == "the API token was revoked"

    with database.transaction() as s:
        expiring = create_token(s, operator_actor, name="old system", org="interior", scopes=["mail:send"],
                                expires_at=utcnow() + timedelta(days=1), known_orgs=["interior"])
    assert api.get("/api/v1/whoami", headers=_bearer(expiring.secret)).status_code == 200
    with database.transaction() as s:
        s.execute(update(ApiToken).where(ApiToken.id == expiring.token.id)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    response = api.get("/api/v1/whoami", headers=_bearer(expiring.secret))
    assert response.status_code == 401 and response.get_json()["message"] == "the API token has expired"

    assert ("api_token:revoke", "success") in _actions(database)
    failures = [a for a in _actions(database) if a == ("api_token:use", "failure")]
    assert len(failures) == 3  # wrong secret, revoked, expired (of known tokens)


def test_org_admins_manage_only_their_own_organisation(app: Flask, database: Database) -> None:
    health_admin = _actor(database, "health-admin", Role.ORG_ADMIN, "health")
    finance_admin = _actor(database, "finance-admin", Role.ORG_ADMIN, "finance")
    member = _actor(database, "health-member", Role.ORG_MEMBER, "health")
    client = _signed_in(app, database, health_admin)

    status, _page = _create_in_console(client, name="other org", org="finance", scopes=["tenants:read"])
    assert status == 403
    status, page = _create_in_console(client, name="own org", org="health", scopes=["tenants:read"])
    assert status == 200 and SECRET_RE.search(page)
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 1
        with pytest.raises(PermissionDenied):
            create_token(s, health_admin, name="x", org="finance", scopes=["tenants:read"],
                         expires_at=utcnow() + IN_30_DAYS, known_orgs=live_org_slugs(s))
        with pytest.raises(PermissionDenied):
            create_token(s, member, name="x", org="health", scopes=["tenants:read"],
                         expires_at=utcnow() + IN_30_DAYS, known_orgs=live_org_slugs(s))
        own = s.scalar(select(ApiToken.id))
        assert own is not None
        assert list_tokens(s, finance_admin) == []
        with pytest.raises(NotFound):  # another organisation's token does not exist for them
            revoke_token(s, finance_admin, own)
    assert _signed_in(app, database, member).get("/account/tokens").status_code == 403
    finance = _signed_in(app, database, finance_admin)
    csrf = csrf_token_from(finance.get("/account/tokens").get_data(as_text=True))
    assert finance.post(f"/account/tokens/{own}/revoke", data={"csrf_token": csrf}).status_code == 404
    assert "own org" not in finance.get("/account/tokens").get_data(as_text=True)


def test_bad_token_input_is_refused_and_changes_nothing(app: Flask, database: Database) -> None:
    operator = _signed_in(app, database, _actor(database, "health-bad", Role.ORG_ADMIN, "health"))
    for form in ({"name": "", "org": "health", "scopes": ["tenants:read"]},
                 {"name": "x", "org": "health", "scopes": ["root:everything"]},
                 {"name": "x", "org": "health", "scopes": []},
                 {"name": "x", "org": "health", "scopes": ["tenants:read"], "expires_days": "-5"},
                 {"name": "x", "org": "health", "scopes": ["tenants:read"], "expires_days": ""}):
        status, _page = _create_in_console(operator, **form)
        assert status == 400
    page = operator.get("/account/tokens").get_data(as_text=True)
    no_csrf = operator.post("/account/tokens",
                            data={"name": "x", "org": "health", "scopes": ["tenants:read"]})
    assert no_csrf.status_code == 400 and "csrf_token" in page
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_last_used_is_touched_at_most_once_a_minute(database: Database) -> None:
    operator = _actor(database, "health-touch", Role.ORG_ADMIN, "health")
    with database.transaction() as s:
        created = create_token(s, operator, name="batch signer", org="health", scopes=["documents:issue"],
                               expires_at=utcnow() + IN_30_DAYS, known_orgs=["health"])
    header = f"Bearer {created.secret}"
    t0 = utcnow()
    with database.transaction() as s:
        actor = authenticate_bearer(s, header, now=t0)
        assert actor.org == "health" and actor.has_scope("documents:issue")
    with database.transaction() as s:
        authenticate_bearer(s, header, now=t0 + timedelta(seconds=30))
        row = s.get(ApiToken, created.token.id)
        assert row is not None and row.last_used_at is not None and as_utc(row.last_used_at) == t0
    with database.transaction() as s:
        authenticate_bearer(s, header, now=t0 + timedelta(seconds=61))
        row = s.get(ApiToken, created.token.id)
        assert row is not None and row.last_used_at is not None
        assert as_utc(row.last_used_at) == t0 + timedelta(seconds=61)
    assert _actions(database).count(("api_token:use", "success")) == 0  # counted per hour instead
    with database.transaction() as s:
        assert sum(use_counts(s, created.token.id).values()) == 3


def test_require_scope_refuses_a_token_without_the_scope(app: Flask, database: Database) -> None:
    @require_scope("documents:issue")
    def issue() -> object:
        return jsonify(issued=True)

    app.add_url_rule("/api/v1/test-issue", "test_issue", issue)
    operator = org_admin(database, "health")
    with database.transaction() as s:
        reader = create_token(s, operator, name="reader", org="health", scopes=["tenants:read"],
                              expires_at=utcnow() + IN_30_DAYS, known_orgs=["health"]).secret
        issuer = create_token(s, operator, name="issuer", org="health", scopes=["documents:issue"],
                              expires_at=utcnow() + IN_30_DAYS, known_orgs=["health"]).secret
    api = app.test_client()
    refused = api.get("/api/v1/test-issue", headers=_bearer(reader))
    assert refused.status_code == 403 and "documents:issue" in refused.get_json()["message"]
    assert api.get("/api/v1/test-issue", headers=_bearer(issuer)).get_json() == {"issued": True}
    assert api.get("/api/v1/test-issue").status_code == 401


# ------------------------------------------------------------------------------ operator tokens
def test_operator_token_is_made_in_the_console_and_acts_as_its_operator(
    app: Flask, database: Database
) -> None:
    alice = make_user(database, "alice-console", Role.OPERATOR, with_mfa=True)
    console = _signed_in(app, database, alice)
    page = console.get("/account/tokens").get_data(as_text=True)
    assert 'name="op_scopes"' in page
    made = console.post("/account/tokens/operator", data={
        "csrf_token": csrf_token_from(page), "op_name": "queue script", "op_hours": "12",
        "op_scopes": ["requests:approve", "requests:read"]})
    assert made.status_code == 200
    secret = SECRET_RE.search(made.get_data(as_text=True))
    assert secret is not None
    whoami = app.test_client().get("/api/v1/whoami", headers=_bearer(secret.group(0))).get_json()
    assert whoami["operator"] == "alice-console" and whoami["org"] is None
    assert whoami["scopes"] == ["requests:approve", "requests:read"]
    with database.transaction() as s:
        row = s.scalar(select(ApiToken))
        assert row is not None and row.user_id == alice.user_id and row.org == ""
        assert row.expires_at is not None
        assert timedelta(hours=11, minutes=59) < as_utc(row.expires_at) - utcnow() <= timedelta(hours=12)
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "api_token:create"))
        assert event is not None and event.initiator == "user:alice-console"
        assert event.detail["operator_token"] is True

    for form in ({"op_hours": "13"}, {"op_hours": "12", "op_scopes": ["requests:write"]}, {"op_hours": "1"}):
        data = {"csrf_token": csrf_token_from(page), "op_name": "x", "op_scopes": ["tenants:read"], **form}
        if form.get("op_hours") == "1":
            data["op_scopes"] = []
        assert console.post("/account/tokens/operator", data=data).status_code == 400, form
    admin = _signed_in(app, database, make_user(database, "health-adm", Role.ORG_ADMIN, "health"))
    admin_page = admin.get("/account/tokens").get_data(as_text=True)
    assert 'name="op_scopes"' not in admin_page
    refused = admin.post("/account/tokens/operator", data={
        "csrf_token": csrf_token_from(admin_page), "op_name": "x", "op_hours": "1",
        "op_scopes": ["tenants:read"]})
    assert refused.status_code == 403
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 1


def test_operator_tokens_need_mfa_stay_short_and_die_with_the_operator(
    app: Flask, database: Database
) -> None:
    bob = make_user(database, "bob-ops", Role.OPERATOR, with_mfa=True)
    no_mfa = make_user(database, "carol-ops", Role.OPERATOR)
    soon = utcnow() + timedelta(hours=1)
    with database.transaction() as s:
        with pytest.raises(PermissionDenied, match="MFA"):
            create_operator_token(s, no_mfa, name="x", scopes=["tenants:read"], expires_at=soon)
        with pytest.raises(InvalidInput, match="within 12 hours"):
            create_operator_token(s, bob, name="x", scopes=["tenants:read"],
                                  expires_at=utcnow() + timedelta(hours=13))
        with pytest.raises(InvalidInput, match="not operator scope"):
            create_operator_token(s, bob, name="x", scopes=["documents:issue"], expires_at=soon)
        secret = create_operator_token(s, bob, name="x", scopes=["tokens:manage", "tenants:read"],
                                       expires_at=soon).secret
    api = app.test_client()
    with database.transaction() as s:  # an operator token cannot mint another
        actor = authenticate_bearer(s, f"Bearer {secret}").as_actor()
        assert actor.audit_name == "user:bob-ops" and actor.role is Role.OPERATOR
        with pytest.raises(PermissionDenied):
            create_operator_token(s, actor, name="y", scopes=["tenants:read"], expires_at=soon)
    minted = api.post("/api/v1/tokens", headers=_bearer(secret), json={
        "name": "y", "org": "health", "scopes": ["requests:approve"], "expires_in_days": 1})
    assert minted.status_code == 403  # an operator never mints an organisation's token
    assert "operators cannot create organisation tokens" in minted.get_json()["message"]

    assert api.get("/api/v1/whoami", headers=_bearer(secret)).status_code == 200
    with database.transaction() as s:
        s.execute(update(User).where(User.id == bob.user_id).values(disabled=True))
    gone = api.get("/api/v1/whoami", headers=_bearer(secret))
    assert gone.status_code == 401 and "can no longer use it" in gone.get_json()["message"]


def test_a_token_made_through_the_api_is_no_stronger_than_its_maker(app: Flask, database: Database) -> None:
    operator = org_admin(database, "health")
    with database.transaction() as s:
        maker = create_token(s, operator, name="health admin system", org="health",
                             scopes=["tokens:manage", "tenants:read"],
                             expires_at=utcnow() + timedelta(days=30), known_orgs=["health"]).secret
    api = app.test_client()

    def make(**body: object) -> tuple[int, dict[str, object]]:
        response = api.post("/api/v1/tokens", headers=_bearer(maker), json={
            "name": "child", "org": "health", "scopes": ["tenants:read"], "expires_in_days": 7, **body})
        return response.status_code, response.get_json()

    assert make(scopes=["requests:write"])[0] == 403
    assert make(expires_in_days=60)[0] == 403
    assert make(org="finance")[0] == 403
    assert make(expires_in_days=0)[0] == 400
    assert make(expires_in_days=None)[0] == 400
    status, child = make()
    assert status == 201 and child["org"] == "health" and child["created_by"].startswith("token:")
    assert child["created_by_user_id"] == operator.user_id  # the root person of the chain
    assert api.get("/api/v1/whoami", headers=_bearer(str(child["secret"]))).status_code == 200
    listed = api.get("/api/v1/tokens", headers=_bearer(maker)).get_json()["items"]
    assert "secret" not in listed[0] and {t["name"] for t in listed} == {"health admin system", "child"}
    revoked = api.post(f"/api/v1/tokens/{child['id']}/revoke", headers=_bearer(maker))
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
    assert api.get("/api/v1/whoami", headers=_bearer(str(child["secret"]))).status_code == 401
