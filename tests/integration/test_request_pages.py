"""Ministry portal and operator request pages: own organisation only, forms with CSRF, separation of
duties and the two-operator rule shown and enforced, bad input refused with nothing written."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor, create_user, start_session
from controlplane.backends import Backends
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.requests.service import create_request, get_request
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.reconciler import reconcile_tenant
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.web.console.auth import SESSION_KEY
from tests.fixtures.app import csrf_token_from

pytestmark = pytest.mark.integration

OPERATOR = Actor(0, "system-test", Role.OPERATOR, "")
NEW_ENV_DEFAULTS = {
    "compute.cores": "4", "compute.ram_mb": "8192", "compute.instances": "2", "network.networks": "1",
    "network.subnets": "1", "network.ports": "16", "network.routers": "1", "network.floating_ips": "0",
    "network.security_groups": "5", "network.security_group_rules": "50", "volume.gigabytes": "50",
    "volume.volumes": "5", "volume.snapshots": "5",
}


def _signed_in(app: Flask, database: Database, username: str, role: Role, org: str = "") -> FlaskClient:
    with database.transaction() as s:
        user = create_user(s, username=username, password="a-long-test-password-1", role=role, org=org,
                           initiator="test")
        token = start_session(s, Actor(user.id, username, role, org))
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = token
    return client


def _counts(database: Database) -> tuple[int, int]:
    with database.transaction() as s:
        return (s.scalar(select(func.count()).select_from(ResourceRequest)) or 0,
                s.scalar(select(func.count()).select_from(RequestStep)) or 0)


def _state(database: Database, request_id: int) -> str:
    return get_request(database, OPERATOR, request_id).state


def _form(client: FlaskClient, page: str, **fields: str) -> dict[str, str]:
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return {"csrf_token": token, **fields}


def _created_id(response_location: str) -> int:
    match = re.search(r"/portal/requests/(\d+)$", response_location)
    assert match, response_location
    return int(match.group(1))


def test_portal_request_form_and_operator_decisions(
    app: Flask, database: Database, backends: Backends, tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
) -> None:
    other, user = f"o-{tenant_slug[2:]}", f"u{tenant_slug[2:]}"  # neither contains the other slug
    register_specs(database, [write_spec(tenant_slug, staging=False), write_spec(other, staging=False)],
                   initiator="test")
    admin = _signed_in(app, database, f"{user}-admin", Role.ORG_ADMIN, tenant_slug)
    member = _signed_in(app, database, f"{user}-member", Role.ORG_MEMBER, tenant_slug)
    stranger = _signed_in(app, database, f"{user}-stranger", Role.ORG_ADMIN, other)
    op1 = _signed_in(app, database, f"{user}-op1", Role.OPERATOR)
    op2 = _signed_in(app, database, f"{user}-op2", Role.OPERATOR)
    auditor = _signed_in(app, database, f"{user}-aud", Role.AUDITOR)

    # the portal: own organisation only; "/" leads there
    assert admin.get("/").headers["Location"].endswith("/portal")
    portal = admin.get("/portal").get_data(as_text=True)
    assert tenant_slug in portal and other not in portal and "Request a quota change" in portal
    assert tenant_slug not in stranger.get("/portal").get_data(as_text=True)
    assert op1.get("/portal").status_code == 403

    # the form shows each quota's current limit next to its field; a member sees it but cannot submit
    form_page = "/portal/environments/prod/quota"
    page = admin.get(form_page).get_data(as_text=True)
    assert 'name="q.compute.cores"' in page and 'placeholder="32"' in page and 'id="submit-request"' in page
    member_page = member.get(form_page)
    assert member_page.status_code == 200 and 'id="submit-request"' not in member_page.get_data(as_text=True)
    before = _counts(database)
    refused = member.post("/portal/requests", data=_form(member, form_page, kind="quota_change",
                                                          environment="prod", **{"q.compute.cores": "48"}))
    assert refused.status_code == 403

    # stale or missing CSRF token, bad numbers, unknown environment: a clear 4xx, nothing written
    stale = admin.post("/portal/requests", data={"csrf_token": "stale-token", "kind": "quota_change",
                                                 "environment": "prod", "q.compute.cores": "48"})
    assert stale.status_code == 400 and "Nothing was changed" in stale.get_data(as_text=True)
    missing = admin.post("/portal/requests", data={"kind": "quota_change", "environment": "prod",
                                                   "q.compute.cores": "48"})
    assert missing.status_code == 400
    for value, message in (("-4", "quotas.compute.cores: -4 is negative"),
                           ("lots", "expected a whole number"),
                           ("999999", "above the ceiling"),
                           ("32", "changes nothing")):
        bad = admin.post("/portal/requests", data=_form(admin, form_page, kind="quota_change",
                                                        environment="prod", **{"q.compute.cores": value}))
        text = bad.get_data(as_text=True)
        assert bad.status_code == 400 and message in text, (value, text[:300])
        assert f'value="{value}"' in text, "the form comes back with what was typed"
    nowhere = admin.post("/portal/requests", data=_form(admin, form_page, kind="quota_change",
                                                        environment="qa", **{"q.compute.cores": "40"}))
    assert nowhere.status_code == 400 and "has no environment" in nowhere.get_data(as_text=True)
    huge = admin.post("/portal/requests", data=_form(admin, form_page, kind="quota_change",
                                                     environment="prod", comment="x" * 5000,
                                                     **{"q.compute.cores": "48"}))
    assert huge.status_code == 400
    assert _counts(database) == before, "refused forms write nothing"

    # a valid request: submitted, with its history on the portal
    done = admin.post("/portal/requests", data=_form(admin, form_page, kind="quota_change",
                                                     environment="prod", comment="new records service",
                                                     **{"q.compute.cores": "48"}))
    assert done.status_code == 302
    request_id = _created_id(done.headers["Location"])
    detail = admin.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert "new records service" in detail and f"user:{user}-admin" in detail
    assert "0 of 1 approvals" in detail
    assert member.get(f"/portal/requests/{request_id}").status_code == 200
    # another organisation: not there, through every page
    assert stranger.get(f"/portal/requests/{request_id}").status_code == 404
    token = csrf_token_from(stranger.get("/portal").get_data(as_text=True))
    assert stranger.post(f"/portal/requests/{request_id}/withdraw",
                         data={"csrf_token": token}).status_code == 404
    assert admin.get(f"/requests/{request_id}").status_code == 403
    assert admin.get("/requests/").status_code == 403

    # the operator side: queue (pending first), dashboard count, detail
    queue = op1.get("/requests/").get_data(as_text=True)
    assert f'/requests/{request_id}"' in queue and tenant_slug in queue
    assert f'/requests/{request_id}"' in op1.get(f"/requests/?state=submitted&org={tenant_slug}").get_data(
        as_text=True)
    assert f'/requests/{request_id}"' not in op1.get(f"/requests/?org={other}").get_data(as_text=True)
    assert op1.get("/requests/?state=bogus").status_code == 400
    board = op1.get("/tenants/").get_data(as_text=True)
    assert f"/requests/?org={tenant_slug}&amp;state=submitted" in board

    # auditors read, never decide
    audit_page = auditor.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "new records service" in audit_page and 'id="approve"' not in audit_page
    token = csrf_token_from(audit_page)
    assert auditor.post(f"/requests/{request_id}/approve", data={"csrf_token": token}).status_code == 403
    assert auditor.post(f"/requests/{request_id}/reject",
                        data={"csrf_token": token, "comment": "no"}).status_code == 403
    assert _state(database, request_id) == "submitted"

    # reject needs a reason; approve (one operator suffices for a 1.5x change)
    op_page = op1.get(f"/requests/{request_id}").get_data(as_text=True)
    assert 'id="approve"' in op_page and 'id="reject"' in op_page
    token = csrf_token_from(op_page)
    no_reason = op1.post(f"/requests/{request_id}/reject", data={"csrf_token": token, "comment": " "})
    assert no_reason.status_code == 400 and "say why" in no_reason.get_data(as_text=True)
    assert op1.post(f"/requests/{request_id}/approve", data={"comment": "ok"}).status_code == 400  # no CSRF
    assert _state(database, request_id) == "submitted"
    approved = op1.post(f"/requests/{request_id}/approve",
                        data={"csrf_token": token, "comment": "capacity ok"})
    assert approved.status_code == 302
    assert _state(database, request_id) == "approved"
    assert "1 of 1 approvals" in op1.get(f"/requests/{request_id}").get_data(as_text=True)

    # a new environment needs two different operators; the page says how many are in
    new_page = "/portal/environments/new"
    assert 'name="q.volume.snapshots"' in admin.get(new_page).get_data(as_text=True)
    created = admin.post("/portal/requests", data=_form(admin, new_page, kind="new_environment",
                                                        environment="dev", description="sandbox",
                                                        **{f"q.{k}": v for k, v in NEW_ENV_DEFAULTS.items()}))
    assert created.status_code == 302, created.get_data(as_text=True)[:500]
    env_id = _created_id(created.headers["Location"])
    token = csrf_token_from(op1.get(f"/requests/{env_id}").get_data(as_text=True))
    assert op1.post(f"/requests/{env_id}/approve", data={"csrf_token": token}).status_code == 302
    first = op1.get(f"/requests/{env_id}").get_data(as_text=True)
    assert "1 of 2 approvals" in first and 'id="approve"' not in first
    twice = op1.post(f"/requests/{env_id}/approve", data={"csrf_token": token})
    assert twice.status_code == 403 and "another operator must approve" in twice.get_data(as_text=True)
    assert _state(database, env_id) == "submitted"
    token = csrf_token_from(op2.get(f"/requests/{env_id}").get_data(as_text=True))
    assert op2.post(f"/requests/{env_id}/approve", data={"csrf_token": token}).status_code == 302
    assert _state(database, env_id) == "approved"
    assert "2 of 2 approvals" in admin.get(f"/portal/requests/{env_id}").get_data(as_text=True)


def test_nobody_approves_their_own_request_in_the_page(
    app: Flask, database: Database, backends: Backends, tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
) -> None:
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    # the same person made the request as an org admin and is an operator now
    username = f"{tenant_slug}-dual"
    asked = create_request(database, backends, Actor(7, username, Role.ORG_ADMIN, tenant_slug),
                           org=tenant_slug, kind="quota_change", environment="prod",
                           quotas={"compute": {"cores": 40}}, submit=True)
    operator = _signed_in(app, database, username, Role.OPERATOR)
    page = operator.get(f"/requests/{asked.id}").get_data(as_text=True)
    assert "separation of duties" in page and 'id="approve"' not in page
    token = csrf_token_from(page)
    refused = operator.post(f"/requests/{asked.id}/approve", data={"csrf_token": token})
    assert refused.status_code == 403 and "their own request" in refused.get_data(as_text=True)
    assert _state(database, asked.id) == "submitted"


def test_draft_submit_and_withdraw_from_the_portal(
    app: Flask, database: Database, backends: Backends, tenant_slug: str,
    write_spec: Callable[..., TenantSpec],
) -> None:
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    admin = _signed_in(app, database, f"{tenant_slug}-admin", Role.ORG_ADMIN, tenant_slug)
    page = "/portal/environments/prod/quota"
    draft = admin.post("/portal/requests", data=_form(admin, page, kind="quota_change", environment="prod",
                                                      submit="draft", **{"q.volume.volumes": "30"}))
    request_id = _created_id(draft.headers["Location"])
    assert _state(database, request_id) == "draft"
    detail = admin.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert 'id="submit-draft"' in detail
    token = csrf_token_from(detail)
    form = {"csrf_token": token}
    assert admin.post(f"/portal/requests/{request_id}/submit", data=form).status_code == 302
    assert _state(database, request_id) == "submitted"
    assert admin.post(f"/portal/requests/{request_id}/withdraw", data=form).status_code == 302
    assert _state(database, request_id) == "withdrawn"
    again = admin.post(f"/portal/requests/{request_id}/withdraw", data={"csrf_token": token})
    assert again.status_code == 409 and "cannot become" in again.get_data(as_text=True)


def test_portal_shows_usage_read_from_openstack_in_arabic_too(
    app: Flask, database: Database, backends: Backends, tenancy_settings: Settings, tenant_slug: str,
    write_spec: Callable[..., TenantSpec], purge: Callable[[str], None],
) -> None:
    purge(tenant_slug)
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    outcome = reconcile_tenant(tenant_slug, db=database, backends=backends, settings=tenancy_settings,
                               owner="test:1", run_baseline_playbook=False)
    assert outcome.status == "changed", outcome.error
    admin = _signed_in(app, database, f"{tenant_slug}-admin", Role.ORG_ADMIN, tenant_slug)
    portal = admin.get("/portal").get_data(as_text=True)
    assert "not provisioned yet" not in portal and "<meter" in portal
    # one network in use of the spec's limit: read live from Neutron
    form = admin.get("/portal/environments/prod/quota").get_data(as_text=True)
    networks = form[form.index('for="q.network.networks"'):]
    assert re.search(r'class="in-use">1 <meter', networks), networks[:400]
    arabic = admin.get("/portal?lang=ar").get_data(as_text=True)
    assert 'dir="rtl"' in arabic and "بوابة الوزارة" in arabic and "الشبكات" in arabic
