"""People administration: who may create, change, disable and reset whom; audit in the same
transaction; disabling revokes sessions and bound tokens; the last operator kept; console and CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from controlplane.accounts import admin, mfa
from controlplane.accounts.models import MfaRecoveryCode, Role, User
from controlplane.accounts.service import check_password_step, resume_session, start_session
from controlplane.accounts.tokens import authenticate_bearer
from controlplane.audit.models import AuditEvent
from controlplane.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from controlplane.storage import Database
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.fixtures.app import csrf_token_from, run_controlplane
from tests.integration.api_actors import bearer, make_user, operator_token, sign_in_client

pytestmark = pytest.mark.integration

OWN, OTHER = "t-people-own", "t-people-other"
ORGS = (OWN, OTHER)
IDLE, ABSOLUTE = timedelta(minutes=30), timedelta(hours=12)


@pytest.fixture
def orgs(database: Database, write_spec: Callable[..., TenantSpec]) -> tuple[str, str]:
    register_specs(database, [write_spec(OWN, staging=False), write_spec(OTHER, staging=False)],
                   initiator="test")
    return ORGS


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.transaction() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _count_users(database: Database) -> int:
    with database.transaction() as s:
        return s.scalar(select(func.count(User.id))) or 0


def _user(database: Database, username: str) -> User:
    with database.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        return user


def test_host_cli_creates_a_person_with_a_one_time_password(database: Database) -> None:
    op = make_user(database, "op-one", Role.OPERATOR)
    with pytest.raises(PermissionDenied, match="invite"), database.transaction() as s:
        # an operator never knows an organisation person's password: they invite its first admin
        admin.create_person(s, op, username="mona", role="org_member", org=OWN, known_orgs=ORGS)
    with database.transaction() as s:
        created = admin.create_person(s, admin.CLI_ACTOR, username="mona", role="org_member", org=OWN,
                                      known_orgs=ORGS)
    assert len(created.one_time_password) >= 20
    mona = _user(database, "mona")
    assert mona.must_change_password and mona.role == "org_member" and mona.org == OWN
    with database.transaction() as s:
        attempt = check_password_step(s, username="mona", password=created.one_time_password)
    assert attempt.actor is not None and attempt.actor.must_change_password
    [event] = [e for e in _events(database, "account:create") if e.detail["username"] == "mona"]
    assert event.initiator == "cli:users" and event.org == OWN
    with database.transaction() as s:  # the secret is in no audit event at all
        details = [json.dumps(e.detail) for e in s.scalars(select(AuditEvent))]
    assert not any(created.one_time_password in d for d in details)


@pytest.mark.parametrize(("role", "org", "message"), [
    ("org_member", "", "must belong to an organisation"),
    ("org_admin", "t-nowhere", "not a registered tenant"),
    ("operator", OWN, "belong to no organisation"),
    ("superuser", "", "role: expected one of"),
])
def test_bad_input_is_refused_and_nothing_written(database: Database, role: str, org: str,
                                                  message: str) -> None:
    op = make_user(database, "op-one", Role.OPERATOR)
    users, events = _count_users(database), len(_events(database, "account:create"))
    with pytest.raises(InvalidInput, match=message), database.transaction() as s:
        admin.create_person(s, op, username="nobody", role=role, org=org, known_orgs=ORGS)
    assert _count_users(database) == users
    assert len(_events(database, "account:create")) == events


def test_org_admin_is_confined_to_their_own_organisation(database: Database) -> None:
    boss = make_user(database, "boss", Role.ORG_ADMIN, OWN)
    make_user(database, "stranger", Role.ORG_MEMBER, OTHER)
    make_user(database, "op-one", Role.OPERATOR)
    make_user(database, "aud", Role.AUDITOR)
    with database.transaction() as s:
        created = admin.create_person(s, boss, username="clerk", role="org_member", known_orgs=ORGS)
        assert created.user.org == OWN  # the organisation defaults to the admin's own
    for role, org in (("operator", ""), ("auditor", ""), ("org_member", OTHER)):
        with pytest.raises(PermissionDenied), database.transaction() as s:
            admin.create_person(s, boss, username="sneaky", role=role, org=org, known_orgs=ORGS)
    with database.transaction() as s:
        assert [u.username for u in admin.list_people(s, boss)] == ["boss", "clerk"]
    for name in ("stranger", "op-one", "aud"):  # not theirs: "not found", whatever the action
        for act in (admin.disable_person, admin.enable_person, admin.get_person):
            with pytest.raises(NotFound), database.transaction() as s:
                act(s, boss, name)
        with pytest.raises(NotFound), database.transaction() as s:
            admin.reset_password(s, boss, name)
    with pytest.raises(PermissionDenied), database.transaction() as s:
        admin.change_role(s, boss, "clerk", role="operator", known_orgs=ORGS)
    with database.transaction() as s:
        admin.change_role(s, boss, "clerk", role="org_admin", known_orgs=ORGS)
    assert _user(database, "clerk").role == "org_admin"
    member = make_user(database, "member", Role.ORG_MEMBER, OWN)
    with pytest.raises(PermissionDenied), database.transaction() as s:
        admin.list_people(s, member)
    assert not _events(database, "account:disable") and not _events(database, "account:password:reset")


def test_disable_revokes_sessions_and_bound_tokens_and_enable_restores_sign_in(database: Database) -> None:
    first = make_user(database, "op-one", Role.OPERATOR, with_mfa=True)
    second = make_user(database, "op-two", Role.OPERATOR, with_mfa=True)
    with database.transaction() as s:
        session_id = start_session(s, second)
    secret = operator_token(database, second, ["tenants:read"])
    with database.transaction() as s:
        admin.disable_person(s, first, "op-two")
    with database.transaction() as s:
        assert resume_session(s, session_id, idle=IDLE, absolute=ABSOLUTE) is None
    with pytest.raises(NotAuthenticated, match="revoked"), database.transaction() as s:
        authenticate_bearer(s, bearer(secret)["Authorization"])
    [event] = _events(database, "account:disable")
    assert event.initiator == "user:op-one"
    assert event.detail["sessions_revoked"] == 1 and event.detail["tokens_revoked"] == 1
    with database.transaction() as s:
        assert check_password_step(s, username="op-two", password="a-long-test-password-1").refused
        admin.enable_person(s, first, "op-two")
    with database.transaction() as s:
        assert not check_password_step(s, username="op-two", password="a-long-test-password-1").refused
    assert len(_events(database, "account:enable")) == 1


def test_the_last_operator_and_oneself_are_protected(database: Database) -> None:
    only = make_user(database, "op-one", Role.OPERATOR)
    for act in (lambda s: admin.disable_person(s, admin.CLI_ACTOR, "op-one"),
                lambda s: admin.change_role(s, admin.CLI_ACTOR, "op-one", role="auditor", known_orgs=ORGS)):
        with pytest.raises(Conflict, match="last enabled operator"), database.transaction() as s:
            act(s)
    make_user(database, "op-two", Role.OPERATOR)
    with pytest.raises(PermissionDenied, match="yourself"), database.transaction() as s:
        admin.disable_person(s, only, "op-one")
    with pytest.raises(PermissionDenied, match="own role"), database.transaction() as s:
        admin.change_role(s, only, "op-one", role="auditor", known_orgs=ORGS)
    with pytest.raises(PermissionDenied, match="second operator"), database.transaction() as s:
        admin.change_role(s, admin.CLI_ACTOR, "op-one", role="auditor", known_orgs=ORGS)
    with database.transaction() as s:  # with a second operator, the first may be demoted (approved)
        admin.change_role(s, admin.CLI_ACTOR, "op-one", role="auditor", known_orgs=ORGS, approved=True)
    [event] = _events(database, "account:role:change")
    assert event.initiator == "cli:users"
    assert event.detail["from"]["role"] == "operator" and event.detail["to"]["role"] == "auditor"
    with pytest.raises(Conflict), database.transaction() as s:
        admin.disable_person(s, admin.CLI_ACTOR, "op-two")
    assert not _user(database, "op-two").disabled


def test_reset_password_ends_sessions_and_keeps_mfa_unless_asked(database: Database) -> None:
    op = make_user(database, "op-one", Role.OPERATOR)
    target = make_user(database, "aud", Role.AUDITOR, with_mfa=True)
    with database.transaction() as s:
        session_id = start_session(s, target)
        mfa.replace_recovery_codes(s, target.user_id)
        with pytest.raises(PermissionDenied, match="second operator"):
            admin.reset_password(s, op, "aud")  # alone: filed instead (tests/security/test_boundary_staff)
        done = admin.reset_password(s, op, "aud", approved=True)
    with database.transaction() as s:
        assert resume_session(s, session_id, idle=IDLE, absolute=ABSOLUTE) is None
        assert check_password_step(s, username="aud", password="a-long-test-password-1").refused
        assert not check_password_step(s, username="aud", password=done.one_time_password).refused
    user = _user(database, "aud")
    assert user.must_change_password and user.mfa_enrolled_at is not None
    with database.transaction() as s:
        admin.reset_password(s, op, "aud", reset_mfa=True, approved=True)
    user = _user(database, "aud")
    assert user.mfa_enrolled_at is None and user.mfa_secret_encrypted is None
    with database.transaction() as s:
        assert s.scalar(select(func.count(MfaRecoveryCode.id))) == 0
    events = _events(database, "account:password:reset")
    assert [e.detail["mfa_reset"] for e in events] == [False, True]
    assert done.one_time_password not in json.dumps([e.detail for e in events])


# ------------------------------------------------------------------------------ console
def _post(client: FlaskClient, page: str, path: str, **form: str) -> tuple[int, str]:
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, **form})
    return response.status_code, response.get_data(as_text=True)


def test_console_operator_creates_disables_and_resets(app: Flask, database: Database,
                                                      orgs: tuple[str, str]) -> None:
    client = sign_in_client(app.test_client(), database, make_user(database, "op-one", Role.OPERATOR))
    assert 'href="/people/"' in client.get("/").get_data(as_text=True)  # the nav link
    status, body = _post(client, "/people/new", "/people/", username="nadia", role="org_admin", org=OWN)
    assert status == 403 and "invite" in body  # an operator never holds a ministry person's password
    make_user(database, "nadia", Role.ORG_ADMIN, OWN)
    status, body = _post(client, "/people/new", "/people/", username="nadia2", role="org_admin",
                         org="t-nowhere")
    assert status == 400 and "not a registered tenant" in body
    listing = client.get("/people/?org=" + OWN).get_data(as_text=True)
    assert "/people/nadia" in listing and "/people/op-one" not in listing
    status, body = _post(client, "/people/nadia", "/people/nadia/disable", confirm="nadja")
    assert status == 400 and not _user(database, "nadia").disabled
    status, _ = _post(client, "/people/nadia", "/people/nadia/disable", confirm="nadia")
    assert status == 302 and _user(database, "nadia").disabled
    status, _ = _post(client, "/people/nadia", "/people/nadia/enable")
    assert status == 302 and not _user(database, "nadia").disabled
    status, body = _post(client, "/people/nadia", "/people/nadia/reset-password", confirm="nadia")
    assert status == 403 and "shown only now" not in body
    status, body = _post(client, "/people/op-one", "/people/op-one/disable", confirm="op-one")
    assert status == 403 and _user(database, "op-one").disabled is False
    status, _ = _post(client, "/people/nadia", "/people/nadia/role", role="org_member", org=OWN)
    assert status == 302 and _user(database, "nadia").role == "org_member"
    # a staff role from the detail page, whose organisation select still shows the old one
    # (a staff role waits for a second operator: tests/security/test_boundary_staff.py)
    status, body = _post(client, "/people/nadia", "/people/nadia/role", role="auditor", org=OWN)
    nadia = _user(database, "nadia")
    assert status == 202 and (nadia.role, nadia.org) == ("org_member", OWN) and "second operator" in body


def test_console_org_admin_sees_and_changes_only_their_organisation(
    app: Flask, database: Database, orgs: tuple[str, str]
) -> None:
    make_user(database, "stranger", Role.ORG_MEMBER, OTHER)
    client = sign_in_client(app.test_client(), database, make_user(database, "boss", Role.ORG_ADMIN, OWN))
    page = client.get("/people/new").get_data(as_text=True)
    assert OTHER not in page and 'value="operator"' not in page
    status, _ = _post(client, "/people/new", "/people/", username="clerk", role="org_member", org=OWN)
    assert status == 201 and _user(database, "clerk").org == OWN
    users = _count_users(database)
    status, body = _post(client, "/people/new", "/people/", username="spy", role="org_member", org=OTHER)
    assert status == 403 and _count_users(database) == users and "an organisation admin" in body
    assert client.get("/people/stranger").status_code == 404
    listing = client.get("/people/").get_data(as_text=True)
    assert "clerk" in listing and "stranger" not in listing and OTHER not in listing
    member = sign_in_client(app.test_client(), database, make_user(database, "mem", Role.ORG_MEMBER, OWN))
    assert 'href="/people/"' not in member.get("/tenants/").get_data(as_text=True)


def test_console_people_pages_in_arabic_and_kurdish(app: Flask, database: Database,
                                                    orgs: tuple[str, str]) -> None:
    client = sign_in_client(app.test_client(), database, make_user(database, "boss", Role.ORG_ADMIN, OWN))
    arabic = client.get("/people/?lang=ar").get_data(as_text=True)
    assert "<h1>الأشخاص</h1>" in arabic and "مسؤول الجهة" in arabic
    kurdish = client.get("/people/boss?lang=ckb").get_data(as_text=True)
    assert "ڕۆڵ" in kurdish and "بەڕێوەبەری دامەزراوە" in kurdish


# ---------------------------------------------------------------------------------- CLI
def test_cli_users_commands(settings: object, database: Database, orgs: tuple[str, str]) -> None:
    env = {"CONTROLPLANE_INSTANCE_PATH": settings.instance_path,  # type: ignore[attr-defined]
           "CONTROLPLANE_DATABASE_URL": settings.effective_database_url}  # type: ignore[attr-defined]
    make_user(database, "op-one", Role.OPERATOR)
    done = run_controlplane("users", "create", "amal", "--role", "org_admin", "--org", OWN, env=env)
    assert done.returncode == 0, done.stderr
    password = done.stdout.split("one-time password: ")[1].split()[0]
    with database.transaction() as s:
        assert not check_password_step(s, username="amal", password=password).refused
    bad = run_controlplane("users", "create", "ghost", "--role", "org_member", "--org", "t-nowhere", env=env)
    assert bad.returncode == 1 and "not a registered tenant" in bad.stderr
    listed = run_controlplane("users", "list", "--org", OWN, env=env)
    assert "amal" in listed.stdout and "op-one" not in listed.stdout and "ghost" not in listed.stdout
    assert run_controlplane("users", "set-role", "amal", "--role", "org_member", "--org", OWN,
                            env=env).returncode == 0
    assert run_controlplane("users", "disable", "amal", env=env).returncode == 0
    assert _user(database, "amal").disabled and _user(database, "amal").role == "org_member"
    last = run_controlplane("users", "disable", "op-one", env=env)
    assert last.returncode == 1 and "last enabled operator" in last.stderr
    assert run_controlplane("users", "enable", "amal", env=env).returncode == 0
    reset = run_controlplane("users", "reset-password", "amal", env=env)
    assert reset.returncode == 0 and "one-time password: " in reset.stdout
    initiators = {e.initiator for a in ("account:create", "account:disable", "account:password:reset")
                  for e in _events(database, a) if e.detail.get("username") == "amal"}
    assert initiators == {"cli:users"}
