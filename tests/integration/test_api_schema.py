"""schemathesis over /api/v1/openapi.json: every operation the document lists, with generated input.

The schema is loaded from a real app, so operations added later are covered without editing this
file, and every call goes in-process through the app's WSGI interface against a real database.
Checks (schemathesis' defaults): no 5xx, status codes, content types, headers and bodies as
documented, negative input refused with a 4xx; and without a token, a documented 401 everywhere.
Generation is derandomized and bounded, so the same cases run on every CI run. It runs once with an
organisation token and once with an operator token (approve, reject, reconcile, decommission, tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import Case
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy import select

from controlplane.accounts.models import ApiToken, Role
from controlplane.accounts.tokens import KNOWN_SCOPES, OPERATOR_SCOPES
from controlplane.backends import Backends
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.integration.api_actors import make_user, operator_token, org_token, org_token_row
from tests.integration.schema_checks import DOCUMENT, bounded, call_with_token, failures_of, run_modes

pytestmark = pytest.mark.integration

GENERATION = bounded(max_examples=30)


@pytest.fixture
def seeded(database: Database, tenant_slug: str, write_spec: Callable[..., TenantSpec]) -> dict[str, Any]:
    """An organisation with a registered tenant, a few events and a draft request: path values that
    exist, by the parameter names the document uses."""
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    with database.transaction() as s:
        tenant = registry.get_tenant(s, tenant_slug)  # as if reconciled once, so no field is empty
        tenant.last_reconciled_at, tenant.last_error = utcnow(), "quota: cores above the limit"
        for n in range(3):
            registry.add_event(s, tenant_slug, "action", f"step {n} of the schema test")
        draft = ResourceRequest(org=tenant_slug, kind="quota_change", environment="prod",
                                payload={"quotas": {"compute": {"cores": 40}}}, state="draft",
                                created_by="user:schema-test")
        s.add(draft)
        s.flush()
        s.add(RequestStep(request_id=draft.id, step="created", actor="user:schema-test"))
        draft_id = draft.id
    spare_id, _ = org_token_row(database, tenant_slug, ["tenants:read"], name="to revoke")
    return {"slug": tenant_slug, "request_id": draft_id, "token_id": spare_id}


@pytest.fixture(params=["organisation", "operator"])
def api_token(request: pytest.FixtureRequest, database: Database, seeded: dict[str, Any]) -> str:
    """A token with every scope: of the seeded organisation, or of an operator (enrolled in MFA)."""
    if request.param == "operator":
        operator = make_user(database, "schema-operator", Role.OPERATOR, with_mfa=True)
        return operator_token(database, operator, OPERATOR_SCOPES)
    return org_token(database, seeded["slug"], KNOWN_SCOPES)


def _spare_own_token(case: Case, own_id: int, known: dict[str, Any]) -> None:
    """Generated token ids are small numbers: never let a case revoke the token the run depends on."""
    if case.path_parameters and case.path_parameters.get("token_id") == own_id:
        case.path_parameters = {**case.path_parameters, "token_id": known["token_id"]}


@pytest.fixture
def api_schema(app: Flask) -> OpenApiSchema:
    """The document as the app serves it; calls then go through the app's WSGI interface."""
    return schemathesis.openapi.from_wsgi(DOCUMENT, app)


def _operations(schema: OpenApiSchema) -> list[APIOperation]:
    operations = [result.ok() for result in schema.get_all_operations()]  # .ok() raises on a broken one
    assert operations, "the OpenAPI document lists no operation"
    return operations


def _is_public(operation: APIOperation) -> bool:
    """An operation that overrides the document's security with `security: []`."""
    return operation.definition.raw.get("security") == []


def test_every_operation_conforms_with_a_token(
    api_schema: OpenApiSchema, api_token: str, seeded: dict[str, Any], backends: Backends, database: Database
) -> None:
    """With real backends (devcloud, OpenBao): submitting a request reads usage from OpenStack."""
    auth = {"Authorization": f"Bearer {api_token}"}
    with database.transaction() as s:
        own_id = s.scalar(select(ApiToken.id).where(ApiToken.prefix == api_token.split("_")[1]))

    def check(case: Case) -> None:
        _spare_own_token(case, own_id, seeded)
        call_with_token(case, auth, seeded)

    failures = failures_of(_operations(api_schema), check, GENERATION)
    assert not failures, "\n\n".join(failures)


def test_every_operation_answers_a_documented_401_without_a_token(api_schema: OpenApiSchema) -> None:
    def check(case: Case) -> None:
        if case.headers:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
        response = case.call_and_validate()
        # A malformed path (negative data: `/requests/-1`) matches no route at all: 404 before auth.
        allowed = (401,) if case.meta is None or case.meta.generation.mode.is_positive else (401, 404)
        assert response.status_code in allowed, f"answered {response.status_code} without a token"

    failures: list[str] = []
    for operation in _operations(api_schema):
        if _is_public(operation):
            continue
        if "401" not in operation.definition.raw.get("responses", {}):
            failures.append(f"{operation.label} does not document its 401")
        run_modes(operation, check, failures, GENERATION)
    assert not failures, "\n\n".join(failures)
