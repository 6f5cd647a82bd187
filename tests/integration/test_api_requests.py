"""The requests JSON API: an organisation token files and follows its requests, operator tokens approve
and reject them as their operators; bad input is a clear 400 and writes nothing. Who may call what,
and that another organisation's request does not exist for a token, is test_api_matrix.py's table."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from controlplane.accounts.models import Role
from controlplane.app import create_app
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.web.services import services_of
from tests.integration.api_actors import bearer, make_user, operator_token, org_token

pytestmark = pytest.mark.integration

URL = "/api/v1/requests"


def _bearer(database: Database, org: str, scopes: list[str]) -> dict[str, str]:
    return bearer(org_token(database, org, scopes))


def _counts(database: Database) -> tuple[int, int]:
    with database.transaction() as s:
        return (s.scalar(select(func.count()).select_from(ResourceRequest)) or 0,
                s.scalar(select(func.count()).select_from(RequestStep)) or 0)


@pytest.fixture
def orgs(database: Database, tenant_slug: str, write_spec: Callable[..., TenantSpec]) -> tuple[str, str]:
    other = f"o-{tenant_slug[2:]}"
    register_specs(database, [write_spec(tenant_slug, staging=False), write_spec(other, staging=False)],
                   initiator="test")
    return tenant_slug, other


def test_create_list_get_submit_withdraw(
    client: FlaskClient, database: Database, backends: Backends, orgs: tuple[str, str]
) -> None:
    own, _other = orgs
    rw = _bearer(database, own, ["requests:read", "requests:write"])
    ro = _bearer(database, own, ["requests:read"])

    created = client.post(URL, headers=rw, json={"kind": "quota_change", "environment": "prod",
                                                 "quotas": {"compute": {"cores": 48}},
                                                 "comment": "records service"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["state"] == "submitted" and body["org"] == own and body["required_approvals"] == 1
    assert created.headers["Location"] == f"{URL}/{body['id']}"
    assert [s["step"] for s in body["steps"]] == ["created", "submitted"]
    assert body["created_by"].startswith("token:") and body["steps"][0]["comment"] == "records service"
    with database.transaction() as s:
        audited = s.scalar(select(AuditEvent).where(AuditEvent.action == "request:create",
                                                    AuditEvent.target == f"request:{body['id']}"))
        assert audited is not None and audited.initiator == body["created_by"]

    listed = client.get(URL, headers=ro).get_json()["items"]
    assert [r["id"] for r in listed] == [body["id"]]
    assert client.get(f"{URL}?state=draft", headers=ro).get_json()["items"] == []
    assert client.get(f"{URL}/{body['id']}", headers=ro).get_json()["environment"] == "prod"

    # a draft, submitted, then withdrawn; a final state refuses more with 409
    draft = client.post(URL, headers=rw, json={"kind": "quota_change", "environment": "prod",
                                               "quotas": {"volume": {"volumes": 30}}, "submit": False})
    assert draft.status_code == 201 and draft.get_json()["state"] == "draft"
    draft_id = draft.get_json()["id"]
    submitted = client.post(f"{URL}/{draft_id}/submit", headers=rw, json={"comment": "now"})
    assert submitted.status_code == 200 and submitted.get_json()["state"] == "submitted"
    withdrawn = client.post(f"{URL}/{draft_id}/withdraw", headers=rw)
    assert withdrawn.status_code == 200 and withdrawn.get_json()["state"] == "withdrawn"
    again = client.post(f"{URL}/{draft_id}/withdraw", headers=rw)
    assert again.status_code == 409 and "cannot become" in again.get_json()["message"]


def test_operator_tokens_approve_and_reject_as_their_operators(
    client: FlaskClient, database: Database, backends: Backends, orgs: tuple[str, str]
) -> None:
    """Separation of duties holds through the API: an approval counts as the token's operator, so one
    person never gives both approvals of a large change, whichever of their tokens they use."""
    own, _other = orgs
    rw = _bearer(database, own, ["requests:read", "requests:write"])
    alice = make_user(database, "alice-op", Role.OPERATOR, with_mfa=True)
    bob = make_user(database, "bob-op", Role.OPERATOR, with_mfa=True)
    alice_1, alice_2 = (bearer(operator_token(database, alice, ["requests:approve"])) for _ in range(2))
    bob_token = bearer(operator_token(database, bob, ["requests:approve", "requests:read"]))

    large = client.post(URL, headers=rw, json={"kind": "quota_change", "environment": "prod",
                                               "quotas": {"compute": {"cores": 96}}}).get_json()
    assert large["required_approvals"] == 2, "32 -> 96 cores is more than double: two operators"
    first = client.post(f"{URL}/{large['id']}/approve", headers=alice_1, json={"comment": "capacity ok"})
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["state"] == "submitted" and first.get_json()["approvals"] == ["user:alice-op"]
    twice = client.post(f"{URL}/{large['id']}/approve", headers=alice_2)
    assert twice.status_code == 403 and "another operator" in twice.get_json()["message"]
    second = client.post(f"{URL}/{large['id']}/approve", headers=bob_token)
    assert second.status_code == 200 and second.get_json()["state"] == "approved"
    assert second.get_json()["approvals"] == ["user:alice-op", "user:bob-op"]
    assert second.get_json()["applied_generation"] is not None  # now the tenant's desired state
    with database.transaction() as s:
        initiators = list(s.scalars(select(AuditEvent.initiator).where(
            AuditEvent.action == "request:approve", AuditEvent.target == f"request:{large['id']}")))
    assert initiators == ["user:alice-op", "user:bob-op"]
    late = client.post(f"{URL}/{large['id']}/reject", headers=bob_token, json={"comment": "too late"})
    assert late.status_code == 409

    small = client.post(URL, headers=rw, json={"kind": "quota_change", "environment": "prod",
                                               "quotas": {"compute": {"cores": 100}}}).get_json()
    assert small["state"] == "submitted", small
    assert client.post(f"{URL}/{small['id']}/reject", headers=bob_token).status_code == 400
    blank = client.post(f"{URL}/{small['id']}/reject", headers=bob_token, json={"comment": "  "})
    assert blank.status_code == 400 and "say why" in blank.get_json()["message"]
    rejected = client.post(f"{URL}/{small['id']}/reject", headers=bob_token, json={"comment": "not needed"})
    assert rejected.status_code == 200 and rejected.get_json()["state"] == "rejected"
    assert rejected.get_json()["outcome"] == "rejected by user:bob-op: not needed"


def test_the_deployments_rule_settings_decide_through_the_api(
    settings: Settings, database: Database, backends: Backends, orgs: tuple[str, str]
) -> None:
    """RequestRules come from settings in the web layer: three operators for a large change here."""
    app = create_app(settings.replace(request_large_change_approvals=3, request_large_change_factor=1.2),
                     backends=backends)
    rw = _bearer(database, orgs[0], ["requests:read", "requests:write"])
    try:
        created = app.test_client().post(URL, headers=rw, json={
            "kind": "quota_change", "environment": "prod", "quotas": {"compute": {"cores": 40}}})
    finally:
        services_of(app).database.dispose()
    assert created.status_code == 201 and created.get_json()["required_approvals"] == 3


def test_bad_input_is_a_clear_400_and_writes_nothing(
    client: FlaskClient, database: Database, backends: Backends, orgs: tuple[str, str]
) -> None:
    own, _other = orgs
    rw = _bearer(database, own, ["requests:read", "requests:write"])
    good: dict[str, Any] = {"kind": "quota_change", "environment": "prod",
                            "quotas": {"compute": {"cores": 48}}}
    cases: list[tuple[Any, str]] = [
        ({**good, "comment": "x" * 20000}, "at most 16384"),
        ({**good, "quotas": {"compute": {"cores": -4}}}, "quotas.compute.cores: -4 is negative"),
        ({**good, "quotas": {"compute": {"cores": "48"}}}, "expected a whole number"),
        ({**good, "quotas": {"compute": {"cores": 4.5}}}, "expected a whole number"),
        ({**good, "quotas": {"compute": {"cores": True}}}, "expected a whole number"),
        ({**good, "quotas": {"compute": {"cores": 10**9}}}, "above the ceiling"),
        ({**good, "quotas": {"compute": {"gpus": 2}}}, "unknown quota"),
        ({**good, "quotas": "lots"}, "quotas: expected an object"),
        ({**good, "quotas": {}}, "quotas: expected a mapping"),
        ({**good, "kind": 5}, "kind: expected"),
        ({**good, "kind": "delete_everything"}, "kind: expected"),
        ({**good, "environment": 7}, "environment: expected"),
        ({**good, "environment": "x" * 40}, "environment: at most 16"),
        ({**good, "submit": "yes"}, "submit: expected true or false"),
        ({**good, "comment": 12}, "comment: expected a string"),
        ({**good, "comment": "nul\u0000byte"}, "control characters"),
        ({**good, "owner": "someone"}, "unknown field(s): owner"),
        ({**good, "quotas": {"compute": {}}}, "name at least one quota"),
        ({**good, "environment": "prod\n"}, "environment names are"),
        ({**good, "kind": "new_environment", "environment": "Bad Name!"}, "environment name"),
        ({**good, "kind": "new_environment", "environment": "dev"}, "quotas.volume.snapshots: missing"),
        ([good], "expected a JSON object, got list"),
        ("just text", "expected a JSON object, got str"),
    ]
    before = _counts(database)
    for payload, message in cases:
        response = client.post(URL, headers=rw, json=payload)
        assert response.status_code == 400, (payload, response.get_json())
        assert message in response.get_json()["message"], (message, response.get_json())
    raw_cases: list[tuple[str, str, str]] = [
        ('{"kind": "quota_change", "environment": "prod", "quotas": {', "application/json", "not valid JSON"),
        ('{"kind": "quota_change", "environment": "prod", "quotas": {"compute": {"cores": NaN}}}',
         "application/json", "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "application/json", "not valid JSON"),
        (json.dumps(good), "text/plain", "expected Content-Type application/json"),
        ("", "application/json", "send a JSON object"),
        ("\xff\xfe", "application/json", "not valid JSON"),
    ]
    for data, mimetype, message in raw_cases:
        response = client.post(URL, headers=rw, data=data.encode("latin-1") if data.startswith("\xff")
                               else data, content_type=mimetype)
        assert response.status_code == 400, (data[:60], response.get_json())
        assert message in response.get_json()["message"], (message, response.get_json())
    # well formed, but in conflict with the tenant as it is: 409, and nothing written either
    for payload, message in [
        ({**good, "environment": "qa"}, "has no environment 'qa'"),
        ({**good, "quotas": {"compute": {"cores": 32}}}, "changes nothing"),
    ]:
        response = client.post(URL, headers=rw, json=payload)
        assert response.status_code == 409, (payload, response.get_json())
        assert message in response.get_json()["message"], (message, response.get_json())
    # list filters
    assert client.get(f"{URL}?state=bogus", headers=rw).status_code == 400
    assert client.get(f"{URL}?limit=-1", headers=rw).status_code == 400
    assert client.get(f"{URL}?limit=100000", headers=rw).status_code == 400
    assert _counts(database) == before, "refused input writes nothing"


def test_openapi_documents_the_requests_api(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    assert {f"{URL}", f"{URL}/{{request_id}}", f"{URL}/{{request_id}}/submit",
            f"{URL}/{{request_id}}/withdraw", f"{URL}/{{request_id}}/approve",
            f"{URL}/{{request_id}}/reject"} <= set(paths)
    create = paths[URL]["post"]
    assert {"201", "400", "401", "403", "404", "409"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("RequestCreate")
    for path in (f"{URL}/{{request_id}}/submit", f"{URL}/{{request_id}}/withdraw",
                 f"{URL}/{{request_id}}/approve", f"{URL}/{{request_id}}/reject"):
        assert {"200", "400", "401", "403", "404", "409"} <= set(paths[path]["post"]["responses"])
    assert "Request" in doc["components"]["schemas"]
