"""The auditor console in a real headless Chromium: an auditor signs in with TOTP, filters the log,
reads the timeline, downloads a CSV export, and reads the same page in Arabic (right to left).

Fixtures and helpers: tests/fixtures/browser.py."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page

from controlplane.accounts.models import Role
from controlplane.audit import record_event
from controlplane.storage import Database
from tests.fixtures.browser import ConsoleUser, LiveServer, sign_in

pytestmark = pytest.mark.browser

Shoot = Callable[[Page, str], Path]


def _seed(database: Database) -> None:
    """A day of activity: two ministries, a few failed sign-ins, an hour ago and five hours ago."""
    now = datetime.now(UTC)
    with database.transaction() as s:
        for hours, org, outcome, n in ((5, "t-health", "success", 12), (1, "t-health", "failure", 4),
                                       (1, "t-finance", "success", 7), (3, "t-finance", "failure", 2)):
            for i in range(n):
                event = record_event(s, action="tenant:apply" if outcome == "success" else "account:login",
                                     initiator=f"user:clerk-{i % 3}", target=f"tenant:{org}", org=org,
                                     outcome=outcome)
                event.occurred_at = now - timedelta(hours=hours)


def test_auditor_filters_reads_the_timeline_and_downloads_csv(
        page: Page, live_server: LiveServer, database: Database,
        console_user: Callable[..., ConsoleUser], screenshot: Shoot) -> None:
    _seed(database)
    auditor = console_user("aud.browser", Role.AUDITOR)
    sign_in(page, live_server, auditor, next_path="/audit/")  # password, then the TOTP code
    page.wait_for_url(live_server.url("/audit/"))
    assert page.locator("main h1").inner_text() == "Audit events"
    assert page.locator("svg.timeline rect.bar").count() >= 4  # two outcomes in three hours at least
    screenshot(page, "events-en")

    page.fill("#org", "t-health")
    page.select_option("#outcome", "failure")
    page.click("form.audit-filters button[type=submit]")
    page.wait_for_url(re.compile(r"/audit/\?.*org=t-health.*outcome=failure"))
    rows = page.locator("table.audit-events tbody tr")
    assert rows.count() == 4
    assert all("t-health" in t for t in rows.all_inner_texts())
    bars = page.locator("svg.timeline rect.bar")
    assert bars.count() == 1 and bars.first.get_attribute("data-series") == "failure"
    assert bars.first.get_attribute("data-count") == "4"
    assert page.locator("ul.legend", has_text="failure: 4").is_visible()
    screenshot(page, "events-filtered-en")

    with page.expect_download() as download:
        page.click("a.export-csv")
    path = download.value.path()
    assert download.value.suggested_filename.startswith("audit-events-")
    exported = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    assert len(exported) == 4 and {(r["org"], r["outcome"]) for r in exported} == {("t-health", "failure")}

    # the export itself is in the log, under the auditor's name
    page.goto(live_server.url("/audit/?action=audit:console:export"))
    assert page.locator("table.audit-events tbody tr", has_text="user:aud.browser").count() == 1

    page.goto(live_server.url("/audit/tenants"))
    activity = page.locator("table.audit-activity tbody").inner_text()
    assert "t-health" in activity and "t-finance" in activity
    screenshot(page, "activity-en")

    page.goto(live_server.url("/audit/"))
    page.click("header a[hreflang=ar]")
    page.wait_for_url(re.compile(r"lang=ar"))
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("main h1").inner_text() == "أحداث التدقيق"
    page.fill("#org", "t-finance")
    page.click("form.audit-filters button[type=submit]")
    page.wait_for_url(re.compile(r"org=t-finance"))
    assert page.locator("html").get_attribute("dir") == "rtl"  # the cookie keeps Arabic
    assert page.locator("table.audit-events tbody tr").count() == 9
    assert page.locator("ul.legend", has_text="نجاح").is_visible()
    assert page.locator("svg.timeline").get_attribute("dir") == "ltr"  # time runs left to right
    screenshot(page, "events-ar")

    page.goto(live_server.url("/audit/documents"))
    assert page.locator("main h1").inner_text() == "عمليات التحقق من الوثائق"
    screenshot(page, "documents-ar")
