"""The operator console's tenant pages: who sees what, reconcile now, typed decommission confirmation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor, create_user, start_session
from controlplane.audit.models import AuditEvent
from controlplane.storage import Database
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.web.console.auth import SESSION_KEY
from tests.fixtures.app import csrf_token_from

pytestmark = pytest.mark.integration


def _signed_in(app: Flask, database: Database, username: str, role: Role, org: str = "") -> FlaskClient:
    """A client with a live server-side session for a new user (the sign-in pages have their own tests)."""
    with database.transaction() as s:
        user = create_user(s, username=username, password="a-long-test-password-1", role=role, org=org,
                           initiator="test")
        token = start_session(s, Actor(user.id, username, role, org))
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = token
    return client


def test_tenant_pages_by_role(app: Flask, database: Database, tenant_slug: str,
                              write_spec: Callable[..., TenantSpec]) -> None:
    spec = write_spec(tenant_slug, staging=False)
    register_specs(database, [spec], initiator="test")
    operator = _signed_in(app, database, "op1", Role.OPERATOR)
    auditor = _signed_in(app, database, "aud1", Role.AUDITOR)
    own_admin = _signed_in(app, database, "own1", Role.ORG_ADMIN, org=tenant_slug)
    other_admin = _signed_in(app, database, "other1", Role.ORG_ADMIN, org="someone-else")

    board = operator.get("/tenants/").get_data(as_text=True)
    assert tenant_slug in board and "pending" in board
    page = operator.get(f"/tenants/{tenant_slug}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert spec.names["ar"] in text and "not provisioned yet" in text and "Reconcile now" in text

    assert auditor.get(f"/tenants/{tenant_slug}").status_code == 200
    assert "Reconcile now" not in auditor.get(f"/tenants/{tenant_slug}").get_data(as_text=True)
    assert own_admin.get(f"/tenants/{tenant_slug}").status_code == 200
    # another organisation's tenant is simply not there, and never listed
    assert other_admin.get(f"/tenants/{tenant_slug}").status_code == 404
    assert tenant_slug not in other_admin.get("/tenants/").get_data(as_text=True)

    # reconcile now: operators only, audited
    token = csrf_token_from(auditor.get(f"/tenants/{tenant_slug}").get_data(as_text=True))
    assert auditor.post(f"/tenants/{tenant_slug}/reconcile", data={"csrf_token": token}).status_code == 403
    token = csrf_token_from(text)
    done = operator.post(f"/tenants/{tenant_slug}/reconcile", data={"csrf_token": token})
    assert done.status_code == 302
    with database.transaction() as s:
        audited = s.scalar(select(AuditEvent).where(AuditEvent.action == "tenant:reconcile",
                                                    AuditEvent.org == tenant_slug))
        assert audited is not None and audited.initiator == "user:op1"


def test_decommission_needs_the_typed_name_and_changes_nothing_otherwise(
        app: Flask, database: Database, tenant_slug: str, write_spec: Callable[..., TenantSpec]) -> None:
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    operator = _signed_in(app, database, "op2", Role.OPERATOR)
    token = csrf_token_from(operator.get(f"/tenants/{tenant_slug}").get_data(as_text=True))
    wrong = operator.post(f"/tenants/{tenant_slug}/decommission",
                          data={"csrf_token": token, "confirm": "not-the-name"})
    assert wrong.status_code == 400
    assert "type the tenant&#39;s name" in wrong.get_data(as_text=True)
    with database.transaction() as s:
        tenant = s.get(Tenant, tenant_slug)
        assert tenant is not None and tenant.phase == "pending"
    stale = operator.post(f"/tenants/{tenant_slug}/decommission", data={"confirm": tenant_slug})
    assert stale.status_code == 400  # no CSRF token: refused before anything happens
