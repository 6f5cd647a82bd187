"""Every role x every console endpoint x own/other organisation: allowed exactly where intended,
and another organisation's data never appears in a response or an error."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from controlplane.accounts.models import Role
from controlplane.storage import Database
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.integration.api_actors import make_user, sign_in_client

pytestmark = pytest.mark.integration

OWN, OTHER = "t-own-org", "t-other-org"
# who: (role, organisation); "anonymous" has no session at all
WHO = {
    "operator": (Role.OPERATOR, ""),
    "auditor": (Role.AUDITOR, ""),
    "own_admin": (Role.ORG_ADMIN, OWN),
    "own_member": (Role.ORG_MEMBER, OWN),
    "other_admin": (Role.ORG_ADMIN, OTHER),
    "anonymous": None,
}
# (method, path, {who: expected status}); 302 to /login for anonymous everywhere
EXPECTED: list[tuple[str, str, dict[str, int]]] = [
    ("GET", "/", {"operator": 200, "auditor": 200, "own_admin": 302, "own_member": 302, "other_admin": 302}),
    (
        "GET",
        "/status",
        {"operator": 200, "auditor": 200, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "GET",
        "/tenants/",
        {"operator": 200, "auditor": 200, "own_admin": 200, "own_member": 200, "other_admin": 200},
    ),
    (
        "GET",
        f"/tenants/{OWN}",
        {"operator": 200, "auditor": 200, "own_admin": 200, "own_member": 200, "other_admin": 404},
    ),
    (
        "POST",
        f"/tenants/{OWN}/reconcile",
        {"operator": 302, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "POST",
        f"/tenants/{OWN}/decommission",
        {"operator": 400, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "GET",
        "/account/tokens",
        {"operator": 200, "auditor": 403, "own_admin": 200, "own_member": 403, "other_admin": 200},
    ),
    (
        "GET",
        "/account/password",
        {"operator": 200, "auditor": 200, "own_admin": 200, "own_member": 200, "other_admin": 200},
    ),
    # ministry portal: org people only, each sees its own organisation
    (
        "GET",
        "/portal",
        {"operator": 403, "auditor": 403, "own_admin": 200, "own_member": 200, "other_admin": 200},
    ),
    (
        "GET",
        "/portal/environments/prod/quota",
        {"operator": 403, "auditor": 403, "own_admin": 200, "own_member": 200, "other_admin": 200},
    ),
    (
        "GET",
        "/portal/environments/new",
        {"operator": 403, "auditor": 403, "own_admin": 200, "own_member": 200, "other_admin": 200},
    ),
    (
        "POST",
        "/portal/requests",
        {"operator": 403, "auditor": 403, "own_admin": 400, "own_member": 403, "other_admin": 400},
    ),
    (
        "GET",
        "/portal/requests/999999",
        {"operator": 403, "auditor": 403, "own_admin": 404, "own_member": 404, "other_admin": 404},
    ),
    (
        "POST",
        "/portal/requests/999999/submit",
        {"operator": 403, "auditor": 403, "own_admin": 404, "own_member": 404, "other_admin": 404},
    ),
    (
        "POST",
        "/portal/requests/999999/withdraw",
        {"operator": 403, "auditor": 403, "own_admin": 404, "own_member": 404, "other_admin": 404},
    ),
    # operator request pages: staff read, only operators decide
    (
        "GET",
        "/requests/",
        {"operator": 200, "auditor": 200, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "GET",
        "/requests/999999",
        {"operator": 404, "auditor": 404, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "POST",
        "/requests/999999/approve",
        {"operator": 404, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "POST",
        "/requests/999999/reject",
        {"operator": 404, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    # people: operators administer everyone, an org admin only its organisation's people
    (
        "GET",
        "/people/",
        {"operator": 200, "auditor": 403, "own_admin": 200, "own_member": 403, "other_admin": 200},
    ),
    (
        "GET",
        "/people/new",
        {"operator": 200, "auditor": 403, "own_admin": 200, "own_member": 403, "other_admin": 200},
    ),
    (
        "POST",
        "/people/",
        {"operator": 400, "auditor": 403, "own_admin": 400, "own_member": 403, "other_admin": 400},
    ),
    (
        "GET",
        "/people/own-member",
        {"operator": 200, "auditor": 403, "own_admin": 200, "own_member": 403, "other_admin": 404},
    ),
    (
        "GET",
        "/people/operator",
        {"operator": 200, "auditor": 403, "own_admin": 404, "own_member": 403, "other_admin": 404},
    ),
    (
        "POST",
        "/people/own-member/role",
        {"operator": 400, "auditor": 403, "own_admin": 400, "own_member": 403, "other_admin": 404},
    ),
    (
        "POST",
        "/people/own-member/disable",
        {"operator": 400, "auditor": 403, "own_admin": 400, "own_member": 403, "other_admin": 404},
    ),
    (
        "POST",
        "/people/own-member/enable",
        {"operator": 302, "auditor": 403, "own_admin": 302, "own_member": 403, "other_admin": 404},
    ),
    (
        "POST",
        "/people/own-member/reset-password",
        {"operator": 400, "auditor": 403, "own_admin": 400, "own_member": 403, "other_admin": 404},
    ),
    # staff-account changes wait for a second operator; operators invite an organisation's first admin
    (
        "GET",
        "/staff-changes/",
        {"operator": 200, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "POST",
        "/staff-changes/999999/approve",
        {"operator": 404, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "POST",
        "/staff-changes/999999/reject",
        {"operator": 404, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "GET",
        "/invites/new",
        {"operator": 200, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
    (
        "POST",
        "/invites/new",
        {"operator": 400, "auditor": 403, "own_admin": 403, "own_member": 403, "other_admin": 403},
    ),
]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def clients(app: Flask, database: Database, write_spec: Callable[..., TenantSpec]) -> dict[str, FlaskClient]:
    register_specs(
        database, [write_spec(OWN, staging=False), write_spec(OTHER, staging=False)], initiator="test"
    )
    out = {}
    for who, spec in WHO.items():
        client = app.test_client()
        if spec is not None:
            role, org = spec
            sign_in_client(client, database, make_user(database, who.replace("_", "-"), role, org))
        out[who] = client
    return out


@pytest.mark.parametrize(("method", "path", "expected"), EXPECTED, ids=[f"{m} {p}" for m, p, _ in EXPECTED])
def test_access_matrix(
    clients: dict[str, FlaskClient], method: str, path: str, expected: dict[str, int]
) -> None:
    for who, client in clients.items():
        # anonymous: sent to sign in; a POST without a session has no CSRF token and stops there
        want = (302 if method == "GET" else 400) if who == "anonymous" else expected[who]
        if method == "GET":
            response = client.get(path)
        else:
            page = client.get("/account/password").get_data(as_text=True)
            token = CSRF.search(page)
            response = client.post(
                path, data={"csrf_token": token.group(1) if token else "", "confirm": "nope"}
            )
        assert response.status_code == want, f"{who} {method} {path}: {response.status_code}, wanted {want}"
        if who == "anonymous" and method == "GET":
            assert "/login" in response.headers["Location"]
        if who.startswith("own") or who == "other_admin":
            body = response.get_data(as_text=True)
            foreign = OTHER if who.startswith("own") else OWN
            assert foreign not in body, f"{who} sees {foreign} in {method} {path}"
