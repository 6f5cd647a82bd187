"""Access ends with the people it belongs to: disabling a person revokes the tokens they minted,
decommission's first stage disables the organisation's people and tokens (401 from then on), and an
organisation's first admin is invited, never given a password by an operator."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select

from controlplane.accounts import admin
from controlplane.accounts.admin import close_organisation
from controlplane.accounts.models import OrgInvite, Role, User
from controlplane.accounts.service import check_password_step
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.storage import Database
from controlplane.tenancy import decommission as dec
from controlplane.tenancy import registry
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.fixtures.app import csrf_token_from
from tests.integration.api_actors import PASSWORD, bearer, make_user, org_token, sign_in_client

pytestmark = pytest.mark.integration


def _register(database: Database, write_spec: Callable[..., TenantSpec], slug: str) -> str:
    register_specs(database, [write_spec(slug, staging=False)], initiator="test")
    return slug


def _event(database: Database, action: str) -> AuditEvent:
    with database.transaction() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return event


def test_disabling_a_person_makes_the_tokens_they_minted_401(
    app: Flask, database: Database, write_spec: Callable[..., TenantSpec]
) -> None:
    org = _register(database, write_spec, "t-bnd-leaver")
    leaver = make_user(database, "bnd-leaver", Role.ORG_ADMIN, org)
    colleague = make_user(database, "bnd-colleague", Role.ORG_ADMIN, org)
    minted = org_token(database, org, ["tokens:manage", "tenants:read"], minted_by=leaver)
    api = app.test_client()
    child = api.post("/api/v1/tokens", headers=bearer(minted), json={
        "name": "child", "scopes": ["tenants:read"], "expires_in_days": 7}).get_json()
    assert child["created_by_user_id"] == leaver.user_id  # the root person, through a token
    kept = org_token(database, org, ["tenants:read"], minted_by=colleague)
    for secret in (minted, child["secret"], kept):
        assert api.get("/api/v1/whoami", headers=bearer(secret)).status_code == 200

    with database.transaction() as s:
        admin.disable_person(s, colleague, "bnd-leaver")
    for secret in (minted, child["secret"]):
        response = api.get("/api/v1/whoami", headers=bearer(secret))
        assert response.status_code == 401 and "revoked" in response.get_json()["message"]
    assert api.get("/api/v1/whoami", headers=bearer(kept)).status_code == 200  # others' tokens live on
    assert _event(database, "account:disable").detail["tokens_revoked"] == 2
    with database.transaction() as s:  # re-enabling the person does not bring the tokens back
        admin.enable_person(s, colleague, "bnd-leaver")
    assert api.get("/api/v1/whoami", headers=bearer(minted)).status_code == 401


def test_a_decommissioned_organisations_token_gets_401_and_its_people_cannot_sign_in(
    app: Flask, database: Database, backends: Backends, write_spec: Callable[..., TenantSpec]
) -> None:
    org = _register(database, write_spec, "t-bnd-closed")
    make_user(database, "bnd-closed-admin", Role.ORG_ADMIN, org)
    make_user(database, "bnd-closed-member", Role.ORG_MEMBER, org)
    secret = org_token(database, org, ["documents:revoke", "tenants:read"])
    api = app.test_client()
    assert api.get("/api/v1/whoami", headers=bearer(secret)).status_code == 200

    dec.disable(database, backends, org, initiator="test", close_access=close_organisation)
    response = api.get("/api/v1/whoami", headers=bearer(secret))
    assert response.status_code == 401 and "revoked" in response.get_json()["message"]
    assert api.post("/api/v1/documents/00000000000000000000000000000000/revoke", headers=bearer(secret),
                    json={"reason": "after decommission"}).status_code == 401
    with database.transaction() as s:
        for username in ("bnd-closed-admin", "bnd-closed-member", f"{org}-admin"):
            assert check_password_step(s, username=username, password=PASSWORD).refused, username
        assert registry.get_tenant(s, org).phase == "disabled"
    closed = _event(database, "org:access:close")
    assert closed.detail["people_disabled"] == 3 and closed.detail["tokens_revoked"] == 1
    stage = _event(database, "tenant:decommission:disabled")  # recorded with the stage, same transaction
    assert stage.detail["access_closed"]["tokens_revoked"] == 1


def test_an_operator_bootstraps_a_first_admin_by_a_one_time_invite(
    app: Flask, database: Database, write_spec: Callable[..., TenantSpec]
) -> None:
    org = _register(database, write_spec, "t-bnd-new")
    operator = sign_in_client(app.test_client(), database,
                              make_user(database, "bnd-inviter", Role.OPERATOR, with_mfa=True))
    form = operator.get("/invites/new").get_data(as_text=True)
    made = operator.post("/invites/new", data={"csrf_token": csrf_token_from(form), "org": org,
                                               "username": "bnd-first-admin", "display_name": "Dr Hana"})
    assert made.status_code == 201
    page = made.get_data(as_text=True)
    code = page.split('<code class="secret">')[1].split("</code>")[0]
    with database.transaction() as s:  # only the code's hash is kept, and nobody's password exists yet
        invite = s.scalar(select(OrgInvite))
        assert invite is not None and invite.secret_hash == hashlib.sha256(code.encode()).hexdigest()
        assert s.scalar(select(User).where(User.username == "bnd-first-admin")) is None
    again = operator.post("/invites/new", data={"csrf_token": csrf_token_from(form), "org": org,
                                                "username": "bnd-first-admin", "display_name": ""})
    assert again.status_code == 409  # one open invite per person

    invitee = app.test_client()
    accept = invitee.get("/invite").get_data(as_text=True)
    mine = "my own pass phrase 2026"
    done = invitee.post("/invite", data={"csrf_token": csrf_token_from(accept), "code": code,
                                         "password": mine, "password_again": mine})
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    with database.transaction() as s:
        user = s.scalar(select(User).where(User.username == "bnd-first-admin"))
        assert user is not None and (user.role, user.org) == (Role.ORG_ADMIN.value, org)
        assert not check_password_step(s, username="bnd-first-admin", password=mine).refused
    replay = invitee.post("/invite", data={"csrf_token": csrf_token_from(accept), "code": code,
                                           "password": "another pass phrase", "password_again":
                                           "another pass phrase"})
    assert replay.status_code == 404  # single use
    second = operator.post("/invites/new", data={"csrf_token": csrf_token_from(form), "org": org,
                                                 "username": "bnd-second-admin", "display_name": ""})
    assert second.status_code == 409  # the organisation has its admin: its admins add its people
    accepted = _event(database, "account:invite:accept")
    assert accepted.detail["invited_by"] == "user:bnd-inviter"
