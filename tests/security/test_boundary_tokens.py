"""No operator mints a ministry's token; organisation tokens name a live organisation and always expire
(at most a year); token reads are counted per hour, not audited one by one."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from controlplane.accounts.models import ApiToken, Role
from controlplane.accounts.token_use import use_counts
from controlplane.accounts.tokens import OPERATOR_SCOPES, create_token
from controlplane.audit.models import AuditEvent
from controlplane.errors import InvalidInput, PermissionDenied
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.fixtures.app import csrf_token_from
from tests.integration.api_actors import (
    bearer,
    make_user,
    operator_token,
    org_admin,
    org_token,
    org_token_row,
    sign_in_client,
)

pytestmark = pytest.mark.integration

SECRET_RE = re.compile(r"cpt_[0-9a-f]{8}_[A-Za-z0-9_-]+")
ORG = "t-bnd-health"


@pytest.fixture
def org(database: Database, write_spec: Callable[..., TenantSpec]) -> str:
    register_specs(database, [write_spec(ORG, staging=False)], initiator="test")
    return ORG


def _org_tokens(database: Database) -> int:
    with database.transaction() as s:
        return s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id.is_(None))) or 0


def _events(database: Database, action: str) -> int:
    with database.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def test_an_operator_cannot_mint_an_organisation_token_in_the_console(
    app: Flask, database: Database, org: str
) -> None:
    operator = make_user(database, "bnd-op-console", Role.OPERATOR, with_mfa=True)
    client = sign_in_client(app.test_client(), database, operator)
    page = client.get("/account/tokens").get_data(as_text=True)
    assert 'name="scopes"' not in page  # no organisation-token form for an operator
    response = client.post("/account/tokens", data={
        "csrf_token": csrf_token_from(page), "name": "ministry system", "org": org,
        "scopes": ["documents:issue", "requests:write"], "expires_days": "90"})
    body = response.get_data(as_text=True)
    assert response.status_code == 403 and "operators cannot create organisation tokens" in body
    assert SECRET_RE.search(body) is None and _org_tokens(database) == 0
    with database.transaction() as s, pytest.raises(PermissionDenied, match="own admins"):
        create_token(s, operator, name="x", org=org, scopes=["documents:issue"],
                     expires_at=utcnow() + timedelta(days=30), known_orgs=[org])


def test_an_operator_token_cannot_mint_an_organisation_token_through_the_api(
    app: Flask, database: Database, org: str
) -> None:
    operator = make_user(database, "bnd-op-api", Role.OPERATOR, with_mfa=True)
    secret = operator_token(database, operator, OPERATOR_SCOPES)  # tokens:manage among them
    for org_field in (org, "t-does-not-exist"):
        response = app.test_client().post("/api/v1/tokens", headers=bearer(secret), json={
            "name": "ministry system", "org": org_field, "scopes": ["documents:issue"],
            "expires_in_days": 30})
        assert response.status_code == 403, response.get_json()
        assert "operators cannot create organisation tokens" in response.get_json()["message"]
    assert _org_tokens(database) == 0


def test_an_organisation_token_names_a_live_organisation(database: Database, org: str) -> None:
    ghost_admin = make_user(database, "ghost-admin", Role.ORG_ADMIN, "t-ghost")  # no such tenant
    with database.transaction() as s, pytest.raises(InvalidInput, match="not a registered tenant"):
        create_token(s, ghost_admin, name="x", org="t-ghost", scopes=["tenants:read"],
                     expires_at=utcnow() + timedelta(days=30), known_orgs=registry.live_org_slugs(s))
    admin = org_admin(database, org)
    with database.transaction() as s:
        registry.get_tenant(s, org).phase = "disabled"  # decommissioned: no new token
    with database.transaction() as s, pytest.raises(InvalidInput, match="decommissioned"):
        create_token(s, admin, name="x", org=org, scopes=["tenants:read"],
                     expires_at=utcnow() + timedelta(days=30), known_orgs=registry.live_org_slugs(s))
    assert _org_tokens(database) == 0


def test_an_organisation_token_without_expiry_or_beyond_a_year_is_refused_with_400(
    app: Flask, database: Database, org: str
) -> None:
    admin = org_admin(database, org)
    console = sign_in_client(app.test_client(), database, admin)
    page = console.get("/account/tokens").get_data(as_text=True)
    assert '<option value=""' not in page and '<option value="90"' in page  # no "never" any more
    for days in ("", "3650", "366"):
        response = console.post("/account/tokens", data={
            "csrf_token": csrf_token_from(page), "name": "forever", "org": org,
            "scopes": ["tenants:read"], "expires_days": days})
        assert response.status_code == 400, days
    manager = org_token(database, org, ["tokens:manage", "tenants:read"])
    api = app.test_client()
    for body in ({}, {"expires_in_days": 366}, {"expires_in_days": 3650}, {"expires_in_days": None}):
        response = api.post("/api/v1/tokens", headers=bearer(manager),
                            json={"name": "forever", "scopes": ["tenants:read"], **body})
        assert response.status_code == 400, (body, response.get_json())
    with database.transaction() as s:
        for expires_at in (None, utcnow() + timedelta(days=366)):
            with pytest.raises(InvalidInput, match="365 days"):
                create_token(s, admin, name="forever", org=org, scopes=["tenants:read"],
                             expires_at=expires_at, known_orgs=[org])
    assert _org_tokens(database) == 1  # the manager only
    with database.transaction() as s:
        assert all(t.expires_at is not None for t in s.scalars(select(ApiToken)))


def test_token_reads_are_counted_per_hour_not_audited_one_by_one(
    app: Flask, database: Database, org: str
) -> None:
    token_id, secret = org_token_row(database, org, ["tenants:read", "tokens:manage"])
    api = app.test_client()
    before = _events(database, "api_token:use"), _events(database, "api_token:list")
    with database.transaction() as s:
        total = s.scalar(select(func.count()).select_from(AuditEvent)) or 0
    for _ in range(5):
        assert api.get("/api/v1/whoami", headers=bearer(secret)).status_code == 200
        assert api.get(f"/api/v1/tenants/{org}", headers=bearer(secret)).status_code == 200
    with database.transaction() as s:
        assert (s.scalar(select(func.count()).select_from(AuditEvent)) or 0) == total  # no leaf per read
        counts = use_counts(s, token_id)
    assert _events(database, "api_token:use") == before[0] == 0
    assert sum(counts.values()) == 10 and len(counts) == 1  # one row for this hour, ten uses
    # a sensitive read stays audited: listing the tokens
    assert api.get("/api/v1/tokens", headers=bearer(secret)).status_code == 200
    assert _events(database, "api_token:list") == before[1] + 1
    # a refused use (wrong secret) is still an audit event
    assert api.get("/api/v1/whoami", headers=bearer(secret[:-4] + "AAAA")).status_code == 401
    assert _events(database, "api_token:use") == 1
