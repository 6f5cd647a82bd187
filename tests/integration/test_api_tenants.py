"""The tenants JSON API: what a token reads, and an operator token's reconcile-now and decommission
with its typed confirmation. Who may call what is tests/integration/test_api_matrix.py's table."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from controlplane.accounts.models import Role
from controlplane.accounts.tokens import OPERATOR_SCOPES
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.integration.api_actors import bearer, make_user, operator_token, org_token

pytestmark = pytest.mark.integration


def test_a_tenant_read_through_the_api(
    client: FlaskClient, database: Database, tenant_slug: str, write_spec: Callable[..., TenantSpec]
) -> None:
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    with database.transaction() as s:
        registry.add_event(s, tenant_slug, "action", "created the domain")
    own = bearer(org_token(database, tenant_slug, ["tenants:read"]))

    listed = client.get("/api/v1/tenants", headers=own)
    assert [t["slug"] for t in listed.get_json()["items"]] == [tenant_slug]
    detail = client.get(f"/api/v1/tenants/{tenant_slug}", headers=own).get_json()
    assert detail["phase"] == "pending" and detail["spec"]["organisation"]["slug"] == tenant_slug
    assert detail["environments"] == ["prod"]
    events = client.get(f"/api/v1/tenants/{tenant_slug}/events?limit=5", headers=own).get_json()["items"]
    assert [(e["kind"], e["message"]) for e in events] == [("action", "created the domain")]
    bad = client.get(f"/api/v1/tenants/{tenant_slug}/events?limit=-3", headers=own)
    assert bad.status_code == 400 and "limit" in bad.get_json()["message"]


def test_operator_token_reconciles_now_and_decommissions_with_the_typed_confirmation(
    client: FlaskClient, database: Database, backends: Backends, tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
) -> None:
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    operator = make_user(database, "op-api-tenants", Role.OPERATOR, with_mfa=True)
    headers = bearer(operator_token(database, operator, OPERATOR_SCOPES))
    base = f"/api/v1/tenants/{tenant_slug}"

    queued = client.post(f"{base}/reconcile", headers=headers)
    assert queued.status_code == 202 and queued.get_json() == {"slug": tenant_slug, "queued": True}
    with database.transaction() as s:
        assert registry.get_tenant(s, tenant_slug).next_attempt_at is None
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "tenant:reconcile"))
        assert event is not None and event.initiator == "user:op-api-tenants"  # the operator, not a token

    # the typed confirmation: missing, wrong type or another slug changes nothing
    for body, status in [({}, 400), ({"confirm": 7}, 400), ({"confirm": f"{tenant_slug}x"}, 409),
                         ({"confirm": tenant_slug, "retention_days": -1}, 400), ({"confirm": tenant_slug,
                                                                                  "force": True}, 400)]:
        refused = client.post(f"{base}/decommission", headers=headers, json=body)
        assert refused.status_code == status, (body, refused.get_json())
    with database.transaction() as s:
        assert registry.get_tenant(s, tenant_slug).phase == "pending"

    done = client.post(f"{base}/decommission", headers=headers, json={"confirm": tenant_slug})
    assert done.status_code == 200, done.get_json()
    assert done.get_json() == {"slug": tenant_slug, "stage": "disabled", "phase": "disabled"}
    with database.transaction() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "tenant:decommission:disabled"))
        assert event is not None and event.initiator == "user:op-api-tenants"
        retired = s.scalar(select(AuditEvent).where(AuditEvent.action == "key:retire"))
        assert retired is not None and retired.target == f"key:{tenant_slug}" and retired.org == tenant_slug


def test_openapi_document_describes_the_api(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/whoami", "/api/v1/tenants", "/api/v1/tenants/{slug}", "/api/v1/tenants/{slug}/reconcile",
            "/api/v1/tenants/{slug}/decommission", "/api/v1/tokens"} <= set(doc["paths"])
    assert doc["paths"]["/api/v1/tenants/{slug}/reconcile"]["post"]["responses"]["202"]
    assert "Decommission" in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
