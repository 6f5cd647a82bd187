"""The requests JSON API: a token files and follows its own organisation's requests, with scopes;
another organisation's request does not exist for it; bad input is a clear 400 and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.accounts.tokens import create_token
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.storage import Database
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec

pytestmark = pytest.mark.integration

OPERATOR = Actor(1, "op", Role.OPERATOR, "")
URL = "/api/v1/requests"


def _bearer(database: Database, org: str, scopes: list[str]) -> dict[str, str]:
    with database.transaction() as s:
        secret = create_token(s, OPERATOR, name=f"{org} system", org=org, scopes=scopes).secret
    return {"Authorization": f"Bearer {secret}"}


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


def test_create_list_get_submit_withdraw_with_scopes(
    client: FlaskClient, database: Database, backends: Backends, orgs: tuple[str, str]
) -> None:
    own, other = orgs
    rw = _bearer(database, own, ["requests:read", "requests:write"])
    ro = _bearer(database, own, ["requests:read"])
    stranger = _bearer(database, other, ["requests:read", "requests:write"])

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

    # another organisation: never listed, and the id does not exist for it (same answer as a made-up id)
    assert client.get(URL, headers=stranger).get_json()["items"] == []
    hidden = client.get(f"{URL}/{body['id']}", headers=stranger)
    made_up = client.get(f"{URL}/{body['id'] + 1000}", headers=stranger)
    assert hidden.status_code == made_up.status_code == 404
    assert hidden.get_json()["error"] == made_up.get_json()["error"]
    assert own not in hidden.get_data(as_text=True)
    assert client.post(f"{URL}/{body['id']}/withdraw", headers=stranger).status_code == 404
    assert client.post(f"{URL}/{body['id']}/submit", headers=stranger).status_code == 404
    assert client.get(f"{URL}/99999999999999", headers=rw).status_code == 404

    # scopes and tokens
    assert client.post(URL, headers=ro, json={"kind": "quota_change"}).status_code == 403
    assert client.post(f"{URL}/{body['id']}/withdraw", headers=ro).status_code == 403
    no_token = client.get(URL)
    assert no_token.status_code == 401 and no_token.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post(URL, json={"kind": "quota_change"}).status_code == 401
    mail_only = _bearer(database, own, ["mail:send"])
    assert client.get(URL, headers=mail_only).status_code == 403
    # approving is an operator's console action: there is no API for it
    assert client.post(f"{URL}/{body['id']}/approve", headers=rw).status_code in (404, 405)

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
            f"{URL}/{{request_id}}/withdraw"} <= set(paths)
    create = paths[URL]["post"]
    assert {"201", "400", "401", "403", "404", "409"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("RequestCreate")
    for path in (f"{URL}/{{request_id}}/submit", f"{URL}/{{request_id}}/withdraw"):
        assert {"200", "400", "401", "403", "404", "409"} <= set(paths[path]["post"]["responses"])
    assert "Request" in doc["components"]["schemas"]
