"""The tenants JSON API: a token sees its own organisation's tenant, nothing of any other."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.accounts.tokens import create_token
from controlplane.storage import Database
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec

pytestmark = pytest.mark.integration

OPERATOR = Actor(1, "op", Role.OPERATOR, "")


def _token(database: Database, org: str, scopes: list[str]) -> str:
    with database.transaction() as s:
        return create_token(s, OPERATOR, name=f"{org} system", org=org, scopes=scopes).secret


def test_tenant_api_is_scoped_to_the_tokens_organisation(
    client: FlaskClient, database: Database, tenant_slug: str, write_spec: Callable[..., TenantSpec]
) -> None:
    other = f"{tenant_slug}-b"
    register_specs(
        database, [write_spec(tenant_slug, staging=False), write_spec(other, staging=False)], initiator="test"
    )
    own = {"Authorization": f"Bearer {_token(database, tenant_slug, ['tenants:read'])}"}

    listed = client.get("/api/v1/tenants", headers=own)
    assert listed.status_code == 200
    assert [t["slug"] for t in listed.get_json()["items"]] == [tenant_slug]
    detail = client.get(f"/api/v1/tenants/{tenant_slug}", headers=own).get_json()
    assert detail["phase"] == "pending" and detail["spec"]["organisation"]["slug"] == tenant_slug
    assert client.get(f"/api/v1/tenants/{tenant_slug}/events?limit=5", headers=own).status_code == 200

    # another organisation's tenant: not found, and the answer does not leak that it exists
    hidden = client.get(f"/api/v1/tenants/{other}", headers=own)
    assert hidden.status_code == 404 and other in hidden.get_json()["message"]
    nowhere = client.get("/api/v1/tenants/no-such-tenant", headers=own)
    assert hidden.get_json()["error"] == nowhere.get_json()["error"]

    # wrong scope, no token, bad input
    mail_only = {"Authorization": f"Bearer {_token(database, tenant_slug, ['mail:send'])}"}
    assert client.get("/api/v1/tenants", headers=mail_only).status_code == 403
    assert client.get("/api/v1/tenants").status_code == 401
    bad = client.get(f"/api/v1/tenants/{tenant_slug}/events?limit=-3", headers=own)
    assert bad.status_code == 400 and "limit" in bad.get_json()["message"]


def test_openapi_document_describes_the_api(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/whoami", "/api/v1/tenants", "/api/v1/tenants/{slug}"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
