"""The auditor console's queries through its pages: filters, keyset pages, the timeline counted by
the database, per-organisation activity, exports (CSV and JSON, streamed, audited) and the document
statistics page with and without its table."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor, create_user, start_session
from controlplane.audit import AuditAction, record_event
from controlplane.documents.models import VerificationCount
from controlplane.storage import Database
from controlplane.web.console.auth import SESSION_KEY

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def _add(database: Database, n: int, *, org: str, outcome: str = "success", action: str = "tenant:apply",
         initiator: str = "system:reconciler", at: datetime | None = None) -> None:
    with database.transaction() as s:
        for _ in range(n):
            event = record_event(s, action=action, initiator=initiator, target=f"tenant:{org}", org=org,
                                 outcome=outcome)
            if at is not None:
                event.occurred_at = at


@pytest.fixture
def auditor(app: Flask, database: Database) -> FlaskClient:
    client = app.test_client()
    with database.transaction() as s:
        user = create_user(s, username="aud-1", password="a-long-test-password-1", role=Role.AUDITOR,
                           initiator="test")
        token = start_session(s, Actor(user.id, user.username, Role.AUDITOR, ""))
    with client.session_transaction() as session:
        session[SESSION_KEY] = token
    return client


def _ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'href="/audit/events/(\d+)"', html)]


def test_filters_narrow_and_pages_walk_back_without_gaps(auditor: FlaskClient, database: Database) -> None:
    _add(database, 70, org="t-health")
    _add(database, 5, org="t-health", outcome="failure", initiator="user:mallory")
    _add(database, 8, org="t-finance", action="request:approve", initiator="user:op1")

    page = auditor.get("/audit/?org=t-health&outcome=failure").get_data(as_text=True)
    assert len(_ids(page)) == 5 and "user:mallory" in page and "t-finance" not in page.split("<tbody>")[1]
    page = auditor.get("/audit/?actor=user:op1").get_data(as_text=True)
    assert len(_ids(page)) == 8
    page = auditor.get("/audit/?action=request:").get_data(as_text=True)  # a prefix
    assert len(_ids(page)) == 8

    seen: list[int] = []
    url = "/audit/?org=t-health"
    while url:
        html = auditor.get(url).get_data(as_text=True)
        seen += _ids(html)
        older = re.search(r'rel="next" href="([^"]+)"', html)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert len(seen) == 75 and seen == sorted(seen, reverse=True) and len(set(seen)) == 75


@pytest.mark.parametrize("query", ["org=Not%20A%20Slug", "outcome=maybe", "since=yesterday",
                                   "since=2026-11-02&until=2026-11-01", "before=-3", "action=DROP%20TABLE"])
def test_bad_filters_are_a_clear_400(auditor: FlaskClient, query: str) -> None:
    response = auditor.get(f"/audit/?{query}")
    assert response.status_code == 400
    assert "expected" in response.get_data(as_text=True) or "before" in response.get_data(as_text=True)


def test_timeline_counts_by_hour_and_outcome(auditor: FlaskClient, database: Database) -> None:
    two_hours_ago = NOW - timedelta(hours=2)
    _add(database, 4, org="t-a", at=two_hours_ago)
    _add(database, 3, org="t-a", outcome="failure", at=two_hours_ago)
    _add(database, 2, org="t-a", at=NOW - timedelta(days=30))  # outside the default 7 days
    html = auditor.get("/audit/").get_data(as_text=True)
    bucket = two_hours_ago.strftime("%Y-%m-%d %H:00")
    assert f'data-bucket="{bucket}" data-series="success" data-count="4"' in html
    assert f'data-bucket="{bucket}" data-series="failure" data-count="3"' in html
    assert "per hour" in html
    wide = auditor.get(f"/audit/?since={(NOW - timedelta(days=60)).date()}").get_data(as_text=True)
    assert "per day" in wide
    day = (NOW - timedelta(days=30)).strftime("%Y-%m-%d 00:00")
    assert f'data-bucket="{day}" data-series="success" data-count="2"' in wide


def test_activity_by_organisation(auditor: FlaskClient, database: Database) -> None:
    _add(database, 6, org="t-busy")
    _add(database, 2, org="t-busy", outcome="failure", initiator="user:x")
    _add(database, 1, org="t-quiet")
    html = auditor.get("/audit/tenants").get_data(as_text=True)
    rows = re.findall(r"<tr>\s*<td><a[^>]*>([^<]+)</a></td>\s*<td>(\d+)</td>\s*<td[^>]*>(\d+)</td>\s*"
                      r"<td>(\d+)</td>", html)
    got = {org: (int(n), int(f), int(a)) for org, n, f, a in rows}
    assert got["t-busy"] == (8, 2, 2) and got["t-quiet"] == (1, 0, 1)
    assert list(got).index("t-busy") < list(got).index("t-quiet")  # busiest first


def test_csv_and_json_exports_stream_the_filtered_events_and_are_audited(
        auditor: FlaskClient, database: Database) -> None:
    _add(database, 1203, org="t-big")  # more than one export batch
    _add(database, 3, org="t-small", initiator="=HYPERLINK(\"http://evil\")")
    response = auditor.get("/audit/export.csv?org=t-big")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-events-')
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1203 and {r["org"] for r in rows} == {"t-big"}
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)

    small = auditor.get("/audit/export.csv?org=t-small").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(small)))
    assert rows and all(r["initiator"].startswith("'=") for r in rows)  # never a live formula

    body = json.loads(auditor.get("/audit/export.json?org=t-small").get_data(as_text=True))
    assert body["filter"] == {"org": "t-small"} and len(body["events"]) == 3
    assert {e["initiator"] for e in body["events"]} == {"=HYPERLINK(\"http://evil\")"}  # JSON is exact
    assert all(e["event_uuid"] and e["occurred_at"].endswith("+00:00") for e in body["events"])

    html = auditor.get("/audit/?action=audit:console:export").get_data(as_text=True)
    assert len(_ids(html)) == 3 and "user:aud-1" in html  # who exported, each time


def test_approval_history_lists_decisions_with_their_operators(auditor: FlaskClient,
                                                               database: Database) -> None:
    _add(database, 2, org="t-x", action=AuditAction.REQUEST_APPROVE, initiator="user:op-a")
    _add(database, 1, org="t-x", action=AuditAction.REQUEST_REJECT, initiator="user:op-b")
    _add(database, 5, org="t-x", action=AuditAction.REQUEST_CREATE, initiator="user:minister")
    html = auditor.get("/audit/approvals").get_data(as_text=True)
    assert len(_ids(html)) == 3 and "user:op-a" in html and "user:op-b" in html
    assert "user:minister" not in html


def test_document_statistics_and_an_empty_period(auditor: FlaskClient, database: Database) -> None:
    hour = NOW.replace(minute=0) - timedelta(hours=3)
    with database.transaction() as s:
        s.execute(insert(VerificationCount), [
            {"hour": hour, "issuer": "t-health", "verdict": "valid", "count": 40},
            {"hour": hour, "issuer": "t-health", "verdict": "forged", "count": 2},
            {"hour": hour, "issuer": "", "verdict": "unknown_issuer", "count": 5},
        ])
    html = auditor.get("/audit/documents").get_data(as_text=True)
    assert f'data-bucket="{hour.strftime("%Y-%m-%d %H:00")}" data-series="valid" data-count="40"' in html
    assert re.search(r"<td>t-health</td>\s*<td>40</td>", html)

    # a period with no verifications says so rather than drawing an empty chart as data
    since, until = ((hour - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M") for d in (30, 29))
    response = auditor.get(f"/audit/documents?since={since}&until={until}")
    assert response.status_code == 200
    assert "No verifications in this period." in response.get_data(as_text=True)


@pytest.mark.parametrize(("lang", "heading"), [("ar", "أحداث التدقيق"), ("ckb", "ڕووداوەکانی وردبینی")])
def test_every_page_speaks_arabic_and_kurdish(auditor: FlaskClient, lang: str, heading: str) -> None:
    page = auditor.get(f"/audit/?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}" dir="rtl">' in page and f"<h1>{heading}</h1>" in page
    for path in ("/audit/tenants", "/audit/approvals", "/audit/keys", "/audit/documents"):
        response = auditor.get(path)  # the language cookie carries over
        assert response.status_code == 200
        assert f'<html lang="{lang}" dir="rtl">' in response.get_data(as_text=True)
