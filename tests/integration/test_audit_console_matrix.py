"""Every auditor-console endpoint x every role: the auditor reads everything, everyone else is sent
to sign in (anonymous) or refused (403) without seeing a byte of the log, and no endpoint accepts
a write method: nothing changes, whoever asks."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from controlplane.accounts.models import Role
from controlplane.audit import AuditAction, record_event
from controlplane.audit.models import AuditEvent
from controlplane.storage import Database
from tests.integration.api_actors import make_user, sign_in_client

pytestmark = pytest.mark.integration

MARKER_ORG = "t-audited-org"
MARKER_ACTOR = "user:marker-actor"
WHO: dict[str, tuple[Role, str] | None] = {
    "anonymous": None,
    "org_member": (Role.ORG_MEMBER, MARKER_ORG),
    "org_admin": (Role.ORG_ADMIN, MARKER_ORG),
    "operator": (Role.OPERATOR, ""),
    "auditor": (Role.AUDITOR, ""),
}
PATHS = [
    "/audit/",
    "/audit/?org=t-audited-org&outcome=failure",
    "/audit/events/{event_id}",
    "/audit/tenants",
    "/audit/approvals",
    "/audit/keys",
    "/audit/documents",
    "/audit/export.csv",
    "/audit/export.json",
]
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


@pytest.fixture
def marked_event(database: Database) -> int:
    """An event only the auditor may see (its org and actor are looked for in every refusal)."""
    with database.transaction() as s:
        event = record_event(s, action=AuditAction.REQUEST_APPROVE, initiator=MARKER_ACTOR,
                             target="request:7", org=MARKER_ORG, outcome="failure",
                             detail={"comment": "marker"})
        return event.id


@pytest.fixture
def clients(app: Flask, database: Database) -> dict[str, FlaskClient]:
    out = {}
    for who, spec in WHO.items():
        client = app.test_client()
        if spec is not None:
            role, org = spec
            sign_in_client(client, database, make_user(database, f"m-{who.replace('_', '-')}", role, org))
        out[who] = client
    return out


def _snapshot(database: Database) -> tuple[int, int]:
    with database.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)) or 0, s.scalar(
            select(func.max(AuditEvent.id))) or 0


def _exports(database: Database) -> int:
    with database.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.action == AuditAction.AUDIT_CONSOLE_EXPORT)) or 0


@pytest.mark.parametrize("path", PATHS)
def test_only_the_auditor_reads(clients: dict[str, FlaskClient], marked_event: int, database: Database,
                                path: str) -> None:
    url = path.format(event_id=marked_event)
    for who, client in clients.items():
        exports_before = _exports(database)
        response = client.get(url)
        body = response.get_data(as_text=True)
        if who == "auditor":
            assert response.status_code == 200, f"auditor GET {url}: {response.status_code}"
            if "documents" not in url and "keys" not in url and "tenants" not in url:
                assert MARKER_ACTOR in body, f"auditor does not see the event on {url}"
            elif "tenants" in url:
                assert MARKER_ORG in body
            # an export is itself audited; reading a page is not
            assert _exports(database) == exports_before + ("export" in url)
            continue
        want = 302 if who == "anonymous" else 403
        assert response.status_code == want, f"{who} GET {url}: {response.status_code}, wanted {want}"
        if who == "anonymous":
            assert "/login" in response.headers["Location"]
        assert MARKER_ACTOR not in body and MARKER_ORG not in body and "marker" not in body
        assert _exports(database) == exports_before, f"{who} made an export event on {url}"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", WRITE_METHODS)
def test_no_endpoint_accepts_a_write(clients: dict[str, FlaskClient], marked_event: int, database: Database,
                                     method: str, path: str) -> None:
    url = path.format(event_id=marked_event)
    before = _snapshot(database)
    for who, client in clients.items():
        response = client.open(url, method=method, data={"org": "x", "csrf_token": "x"})
        assert response.status_code in (403, 405), f"{who} {method} {url}: {response.status_code}"
        if who == "auditor":
            assert response.status_code == 405  # the route itself refuses: no write path exists
        assert MARKER_ACTOR not in response.get_data(as_text=True)
    assert _snapshot(database) == before, f"{method} {url} changed the audit log"


def test_the_console_is_linked_only_from_its_own_pages(clients: dict[str, FlaskClient]) -> None:
    page = clients["auditor"].get("/audit/").get_data(as_text=True)
    for endpoint in ("/audit/tenants", "/audit/approvals", "/audit/keys", "/audit/documents"):
        assert f'href="{endpoint}"' in page
    assert 'method="post"' not in page.split("<main>")[1]  # no form on the page writes anything
