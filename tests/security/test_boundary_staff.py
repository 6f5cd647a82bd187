"""Staff-account changes need two operators: filed by one, they stay pending; the filer cannot
approve them; a second operator can, and only they see a new one-time password. The host CLI may
still bootstrap the first operator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from controlplane.accounts import admin, staff_changes
from controlplane.accounts.models import Role, StaffChange, User
from controlplane.accounts.service import check_password_step
from controlplane.audit.models import AuditEvent
from controlplane.errors import Conflict, PermissionDenied
from controlplane.storage import Database, utcnow
from tests.fixtures.app import csrf_token_from
from tests.integration.api_actors import PASSWORD, make_user, sign_in_client

pytestmark = pytest.mark.integration


def _post(client: FlaskClient, page: str, path: str, **form: str) -> tuple[int, str]:
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, **form})
    return response.status_code, response.get_data(as_text=True)


def _user(database: Database, username: str) -> User | None:
    with database.transaction() as s:
        return s.scalar(select(User).where(User.username == username))


def _pending(database: Database) -> list[StaffChange]:
    with database.transaction() as s:
        return list(s.scalars(select(StaffChange).where(StaffChange.state == "pending")))


def _actions(database: Database) -> list[str]:
    with database.transaction() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("staff_change:%"))
                              .order_by(AuditEvent.id)))


def test_a_new_operator_filed_by_one_operator_stays_pending_until_a_second_approves(
    app: Flask, database: Database
) -> None:
    op1 = make_user(database, "bnd-staff-op1", Role.OPERATOR, with_mfa=True)
    op2 = make_user(database, "bnd-staff-op2", Role.OPERATOR, with_mfa=True)
    first = sign_in_client(app.test_client(), database, op1)
    status, body = _post(first, "/people/new", "/people/", username="bnd-newop", role="operator",
                         display_name="New operator")
    assert status == 202 and "second operator" in body and "one-time password" not in body
    assert _user(database, "bnd-newop") is None
    [change] = _pending(database)
    assert (change.kind, change.filed_by_user_id) == ("create", op1.user_id)
    status, body = _post(first, "/staff-changes/", f"/staff-changes/{change.id}/approve")
    assert status == 403 and "cannot approve" in body
    assert _user(database, "bnd-newop") is None and len(_pending(database)) == 1
    with database.transaction() as s, pytest.raises(PermissionDenied):  # nor through the use-case
        staff_changes.approve_change(s, op1, change.id, known_orgs=())

    second = sign_in_client(app.test_client(), database, op2)
    assert f"/staff-changes/{change.id}/approve" in second.get("/staff-changes/").get_data(as_text=True)
    assert "<h1>تغييرات حسابات الموظفين</h1>" in second.get("/staff-changes/?lang=ar").get_data(as_text=True)
    second.get("/staff-changes/?lang=en")
    status, body = _post(second, "/staff-changes/", f"/staff-changes/{change.id}/approve")
    assert status == 200 and "shown only now" in body  # the password goes to the approver
    new = _user(database, "bnd-newop")
    assert new is not None and new.role == "operator" and new.must_change_password
    assert _pending(database) == []
    assert _actions(database) == ["staff_change:file", "staff_change:approve"]


def test_a_staff_password_reset_and_a_promotion_wait_for_a_second_operator(
    app: Flask, database: Database
) -> None:
    op1 = make_user(database, "bnd-reset-op1", Role.OPERATOR, with_mfa=True)
    op2 = make_user(database, "bnd-reset-op2", Role.OPERATOR, with_mfa=True)
    make_user(database, "bnd-aud", Role.AUDITOR, with_mfa=True)
    first = sign_in_client(app.test_client(), database, op1)
    status, body = _post(first, "/people/bnd-aud", "/people/bnd-aud/reset-password", confirm="bnd-aud",
                         reset_mfa="1")
    assert status == 202 and "shown only now" not in body
    with database.transaction() as s:  # nothing changed yet: the old password still works
        assert not check_password_step(s, username="bnd-aud", password=PASSWORD).refused
    with pytest.raises(PermissionDenied, match="second operator"), database.transaction() as s:
        admin.reset_password(s, op1, "bnd-aud")  # the use-case refuses it alone as well
    [change] = _pending(database)
    with database.transaction() as s:
        done = staff_changes.approve_change(s, op2, change.id, known_orgs=())
        password = done.one_time_password
    with database.transaction() as s:
        assert check_password_step(s, username="bnd-aud", password=PASSWORD).refused
        assert not check_password_step(s, username="bnd-aud", password=password).refused
    aud = _user(database, "bnd-aud")
    assert aud is not None and aud.mfa_enrolled_at is None  # MFA reset as filed

    make_user(database, "bnd-clerk", Role.ORG_MEMBER, "t-bnd-any")
    with database.transaction() as s:
        promotion = staff_changes.file_change(s, op1, kind="role", username="bnd-clerk",
                                              payload={"role": "auditor", "org": ""})
    with pytest.raises(PermissionDenied), database.transaction() as s:
        admin.change_role(s, op1, "bnd-clerk", role="auditor", known_orgs=())
    with database.transaction() as s:
        staff_changes.reject_change(s, op2, promotion.id, comment="not agreed")
    clerk = _user(database, "bnd-clerk")
    assert clerk is not None and clerk.role == "org_member"
    assert _actions(database) == ["staff_change:file", "staff_change:approve", "staff_change:file",
                                  "staff_change:reject"]


def test_a_stale_staff_change_expires_and_cannot_be_approved(database: Database) -> None:
    op1 = make_user(database, "bnd-old-op1", Role.OPERATOR, with_mfa=True)
    op2 = make_user(database, "bnd-old-op2", Role.OPERATOR, with_mfa=True)
    with database.transaction() as s:
        change = staff_changes.file_change(s, op1, kind="create", username="bnd-late",
                                           payload={"role": "auditor"},
                                           now=utcnow() - staff_changes.LIFETIME - timedelta(minutes=1))
    with pytest.raises(Conflict, match="expired"), database.transaction() as s:
        staff_changes.approve_change(s, op2, change.id, known_orgs=())
    with database.transaction() as s:
        assert staff_changes.list_changes(s, op2) == []
    assert _user(database, "bnd-late") is None
    assert _actions(database) == ["staff_change:file", "staff_change:expire"]


def test_the_host_cli_bootstraps_the_first_operators_but_not_a_third_alone(database: Database) -> None:
    with database.transaction() as s:
        admin.create_person(s, admin.CLI_ACTOR, username="bnd-first", role="operator", known_orgs=())
    with database.transaction() as s:  # no second operator to ask yet: the host may add one
        admin.create_person(s, admin.CLI_ACTOR, username="bnd-second", role="operator", known_orgs=())
    with pytest.raises(PermissionDenied, match="second operator"), database.transaction() as s:
        admin.create_person(s, admin.CLI_ACTOR, username="bnd-third", role="auditor", known_orgs=())
    assert _user(database, "bnd-third") is None
