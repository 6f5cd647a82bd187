"""The whole ministry flow in headless Chromium against the real services: an org admin requests a
quota increase, an operator signs in with TOTP and approves it, the reconciler applies it, and the
org admin sees the new quota read back from OpenStack. Screenshots in Arabic and English."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from controlplane.accounts.models import Role
from controlplane.backends import Backends
from controlplane.requests.desired import sync_outcomes
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.worker import run_pass
from tests.fixtures.browser import ConsoleUser, LiveServer, sign_in
from tests.fixtures.tenancy import Provisioned

pytestmark = [pytest.mark.browser, pytest.mark.integration]

Shoot = Callable[[Page, str], object]


def test_quota_increase_requested_approved_applied_and_seen(
    page: Page,
    new_page: Callable[..., Page],
    live_server: LiveServer,
    database: Database,
    backends: Backends,
    tenancy_settings: Settings,
    provision: Callable[..., Provisioned],
    tenant_slug: str,
    console_user: Callable[..., ConsoleUser],
    screenshot: Shoot,
) -> None:
    project = provision(tenant_slug, staging=False).project
    before = backends.cloud.get_compute_quotas(project.id).cores.limit
    wanted = before + before // 2  # +50 %: one operator's approval is enough

    # 1. the ministry's admin asks for more cores, from the portal, in English
    admin = console_user("flow.admin", Role.ORG_ADMIN, org=tenant_slug)
    sign_in(page, live_server, admin, next_path="/portal")
    page.wait_for_url(re.compile(r"/portal$"))
    page.locator("a", has_text="Request a quota change").first.click()
    page.wait_for_url(re.compile(r"/portal/environments/prod/quota"))
    assert page.locator("tr", has_text="Cores").locator("td.limit").inner_text() == str(before)
    page.fill('[name="q.compute.cores"]', str(wanted))
    page.fill("#comment", "the new hospital information system needs more cores")
    screenshot(page, "1-request-form-en")
    page.click("#submit-request")
    page.wait_for_url(re.compile(r"/portal/requests/\d+$"))
    request_id = int(page.url.rsplit("/", 1)[1])
    assert "submitted" in page.locator("main").inner_text()

    # 2. an operator signs in with password + TOTP, in Arabic, and approves
    operator_page = new_page(locale="ar")
    operator = console_user("flow.operator", Role.OPERATOR)
    sign_in(operator_page, live_server, operator, next_path=f"/requests/{request_id}?lang=ar")
    operator_page.wait_for_url(re.compile(rf"/requests/{request_id}"))
    assert operator_page.locator("html").get_attribute("dir") == "rtl"
    screenshot(operator_page, "2-request-before-approval-ar")
    operator_page.fill("#approve-comment", "approved for the hospital system")
    operator_page.click("#approve")
    operator_page.wait_for_load_state()
    screenshot(operator_page, "3-request-approved-ar")

    # 3. the reconciler's next pass applies the new desired state and settles the request
    [applied] = run_pass(
        db=database, backends=backends, settings=tenancy_settings, concurrency=1, after_pass=sync_outcomes
    )
    assert applied.status == "changed", applied.error
    assert backends.cloud.get_compute_quotas(project.id).cores.limit == wanted

    # 4. the org admin sees the outcome and the new quota, read back from OpenStack
    page.reload()
    assert "applied" in page.locator("main").inner_text()
    screenshot(page, "4-request-applied-en")
    page.goto(live_server.url(f"/tenants/{tenant_slug}?refresh=1"))
    cores = page.locator("table.quota tbody tr", has_text="cores")
    assert cores.locator("td").nth(2).inner_text() == str(wanted)
    screenshot(page, "5-new-quota-en")
    page.goto(live_server.url(f"/tenants/{tenant_slug}?refresh=1&lang=ar"))
    assert page.locator("html").get_attribute("dir") == "rtl"
    screenshot(page, "6-new-quota-ar")
