"""Separation of duties compares the people behind sessions and tokens: nobody approves a request
filed through a token they minted, whatever channel (console session, operator token) they use."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from controlplane.accounts import mfa, staff_changes
from controlplane.accounts.models import ApiToken, Role
from controlplane.accounts.service import Actor
from controlplane.backends import Backends
from controlplane.requests.models import ResourceRequest
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.fixtures.app import csrf_token_from
from tests.integration.api_actors import bearer, make_user, operator_token, org_token_row, sign_in_client

pytestmark = pytest.mark.integration

ORG = "t-bnd-duties"
URL = "/api/v1/requests"


@pytest.fixture
def org(database: Database, write_spec: Callable[..., TenantSpec]) -> str:
    register_specs(database, [write_spec(ORG, staging=False)], initiator="test")
    return ORG


def _file(app: Flask, secret: str, cores: int) -> int:
    response = app.test_client().post(URL, headers=bearer(secret), json={
        "kind": "quota_change", "environment": "prod", "quotas": {"compute": {"cores": cores}}})
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _console_approve(client: FlaskClient, request_id: int) -> tuple[int, str]:
    page = client.get(f"/requests/{request_id}").get_data(as_text=True)
    response = client.post(f"/requests/{request_id}/approve", data={"csrf_token": csrf_token_from(page)})
    return response.status_code, response.get_data(as_text=True)


def _state(database: Database, request_id: int) -> str:
    with database.transaction() as s:
        req = s.get(ResourceRequest, request_id)
        assert req is not None
        return req.state


def _make_operator(database: Database, username: str, *, filer: Actor, approver: Actor) -> Actor:
    """`username` becomes an operator the way the console does it: one operator files, another approves."""
    with database.transaction() as s:
        change = staff_changes.file_change(s, filer, kind="role", username=username,
                                           payload={"role": "operator", "org": ""})
    with database.transaction() as s:
        user = staff_changes.approve_change(s, approver, change.id,
                                            known_orgs=registry.live_org_slugs(s)).user
        mfa.begin_enrolment(s, user.id, mfa.SecretBox(secrets.token_bytes(mfa.KEY_BYTES)))
        mfa.confirm_enrolment(user)
        return Actor(user.id, user.username, Role.OPERATOR, "")


def test_nobody_approves_a_request_filed_through_a_token_they_minted_through_any_channel(
    app: Flask, database: Database, backends: Backends, org: str
) -> None:
    """Sam, the ministry's admin, mints a token and files with it; made an operator later, Sam can
    approve it neither in the console nor with an operator token. Another operator can."""
    sam = make_user(database, "bnd-sam", Role.ORG_ADMIN, org)
    op1 = make_user(database, "bnd-op1", Role.OPERATOR, with_mfa=True)
    op2 = make_user(database, "bnd-op2", Role.OPERATOR, with_mfa=True)
    _token_id, secret = org_token_row(database, org, ["requests:write", "requests:read"], minted_by=sam)
    filed = _file(app, secret, 40)  # 32 -> 40 cores: one approval needed
    with database.transaction() as s:
        req = s.get(ResourceRequest, filed)
        assert req is not None and req.created_by.startswith("token:")
        assert req.created_by_user_id == sam.user_id  # the person behind the token
    sam_op = _make_operator(database, "bnd-sam", filer=op1, approver=op2)

    status, body = _console_approve(sign_in_client(app.test_client(), database, sam_op), filed)
    assert status == 403 and "their own request" in body
    sam_token = bearer(operator_token(database, sam_op, ["requests:approve"]))
    through_api = app.test_client().post(f"{URL}/{filed}/approve", headers=sam_token)
    assert through_api.status_code == 403 and "their own request" in through_api.get_json()["message"]
    rejected = app.test_client().post(f"{URL}/{filed}/reject", json={"comment": "mine"}, headers=sam_token)
    assert rejected.status_code == 403
    assert _state(database, filed) == "submitted"

    status, _body = _console_approve(sign_in_client(app.test_client(), database, op1), filed)
    assert status == 302 and _state(database, filed) == "approved"


def test_an_operator_cannot_approve_a_request_filed_through_a_token_they_minted_before(
    app: Flask, database: Database, backends: Backends, org: str
) -> None:
    """A token minted by an operator before this release (the migration attributes it to them from
    `created_by`) still counts as theirs: its requests are never theirs to approve."""
    op = make_user(database, "bnd-legacy-op", Role.OPERATOR, with_mfa=True)
    other = make_user(database, "bnd-other-op", Role.OPERATOR, with_mfa=True)
    token_id, secret = org_token_row(database, org, ["requests:write", "requests:read"])
    with database.transaction() as s:  # what 0011 leaves for a token an operator once minted
        s.execute(update(ApiToken).where(ApiToken.id == token_id)
                  .values(created_by="user:bnd-legacy-op", created_by_user_id=op.user_id))
    filed = _file(app, secret, 40)
    status, body = _console_approve(sign_in_client(app.test_client(), database, op), filed)
    assert status == 403 and "their own request" in body
    api = app.test_client().post(f"{URL}/{filed}/approve",
                                 headers=bearer(operator_token(database, op, ["requests:approve"])))
    assert api.status_code == 403 and _state(database, filed) == "submitted"
    status, _body = _console_approve(sign_in_client(app.test_client(), database, other), filed)
    assert status == 302 and _state(database, filed) == "approved"


def test_two_approvals_need_two_people_whatever_channel_each_used(
    app: Flask, database: Database, backends: Backends, org: str
) -> None:
    """A large change needs two operators: one person approving in the console and again with an
    operator token counts once."""
    alice = make_user(database, "bnd-alice", Role.OPERATOR, with_mfa=True)
    bob = make_user(database, "bnd-bob", Role.OPERATOR, with_mfa=True)
    _token_id, secret = org_token_row(database, org, ["requests:write", "requests:read"])
    large = _file(app, secret, 96)
    status, _ = _console_approve(sign_in_client(app.test_client(), database, alice), large)
    assert status == 302 and _state(database, large) == "submitted"
    again = app.test_client().post(f"{URL}/{large}/approve",
                                   headers=bearer(operator_token(database, alice, ["requests:approve"])))
    assert again.status_code == 403 and "another operator" in again.get_json()["message"]
    assert _state(database, large) == "submitted"
    done = app.test_client().post(f"{URL}/{large}/approve",
                                  headers=bearer(operator_token(database, bob, ["requests:approve"])))
    assert done.status_code == 200 and done.get_json()["state"] == "approved"
