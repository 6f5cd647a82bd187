"""The console in a real headless Chromium: operator sign-in with TOTP, Arabic and English, and an org
admin's own tenant with live quota.

Fixtures and helpers: tests/fixtures/browser.py (its docstring says how to reuse them)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from controlplane.accounts.models import Role
from controlplane.accounts.service import ensure_bootstrap_operator
from controlplane.backends import Backends
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.reconciler import reconcile_tenant
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from tests.fixtures.browser import ConsoleUser, LiveServer, fresh_totp, sign_in, sign_out

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a-long-new-passphrase-42"
Shoot = Callable[[Page, str], Path]


def test_bootstrap_operator_signs_in_enrols_totp_and_signs_in_again(
        page: Page, live_server: LiveServer, database: Database, screenshot: Shoot) -> None:
    with database.transaction() as s:
        one_time = ensure_bootstrap_operator(s)
    assert one_time

    page.goto(live_server.url("/"))
    page.wait_for_url(re.compile(r"/login\?next=/$"))
    page.fill("#username", "admin")
    page.fill("#password", one_time)
    page.click("form[action='/login'] button[type=submit]")

    # an operator sets up an authenticator first: read the text key as a person would
    page.wait_for_url(re.compile(r"/login/mfa/enrol$"))
    assert page.locator("img.qr").is_visible()
    secret = page.locator("code.secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    screenshot(page, "01-mfa-enrol")
    code, enrol_step = fresh_totp(secret, None)
    page.fill("#code", code)
    page.click("form[action='/login/mfa/enrol'] button[type=submit]")

    page.locator("h1", has_text="Your recovery codes").wait_for()
    codes = page.locator("ul.recovery-codes li code").all_inner_texts()
    assert len(codes) >= 8 and len(set(codes)) == len(codes)
    screenshot(page, "02-recovery-codes")
    page.locator("a.button", has_text="I have saved them, continue").click()

    # the one-time password must go before anything else
    page.wait_for_url(re.compile(r"/account/password$"))
    assert page.locator("p.notice", has_text="one-time password").is_visible()
    page.goto(live_server.url("/tenants/"))  # nothing else is reachable yet
    page.wait_for_url(re.compile(r"/account/password$"))
    page.fill("#current_password", one_time)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#repeat_password", NEW_PASSWORD)
    screenshot(page, "03-change-password")
    page.click("form[action='/account/password'] button[type=submit]")

    page.wait_for_url(live_server.url("/"))
    assert page.locator("p.flash", has_text="Your password was changed.").is_visible()
    assert page.locator("main h1").inner_text() == "Overview"
    assert page.locator("main h2", has_text="Platform health").is_visible()
    screenshot(page, "04-overview")

    page.locator("header nav a", has_text="Tenants").click()
    page.wait_for_url(live_server.url("/tenants/"))
    assert page.locator("main h1").inner_text() == "Tenants"
    assert page.locator("table.checks tbody", has_text="No tenants registered").is_visible()
    screenshot(page, "05-tenants")

    sign_out(page)
    assert page.locator("p.flash", has_text="You are signed out.").is_visible()
    page.goto(live_server.url("/tenants/"))  # the old session is gone server-side
    page.wait_for_url(re.compile(r"/login\?next=/tenants/$"))

    # the second sign-in: new password, then a code of a later step than the enrolment's
    user = ConsoleUser("admin", NEW_PASSWORD, Role.OPERATOR, totp_secret=secret, last_step=enrol_step)
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(r"/login/mfa$"))
    page.fill("#code", code)  # the enrolment code again: a replay is refused
    page.click("form[action='/login/mfa'] button[type=submit]")
    assert page.locator("p.error[role=alert]").is_visible()
    page.fill("#code", user.next_code())
    screenshot(page, "06-mfa-code")
    page.click("form[action='/login/mfa'] button[type=submit]")
    page.wait_for_url(live_server.url("/tenants/"))  # back where the sign-in started
    assert page.locator("header nav button", has_text="admin").is_visible()
    screenshot(page, "07-signed-in-again")


def _heading(page: Page) -> dict[str, float]:
    """Where the main heading's text is drawn, and its block's edges (the block spans its container)."""
    box: dict[str, float] = page.evaluate(
        """() => { const h = document.querySelector('main h1'); const r = document.createRange();
                   r.selectNodeContents(h);
                   const t = r.getBoundingClientRect(), b = h.getBoundingClientRect();
                   return {left: t.left, right: t.right, block_left: b.left, block_right: b.right}; }""")
    return box


def _right_aligned(h: dict[str, float]) -> bool:
    return abs(h["right"] - h["block_right"]) < 2 and h["left"] - h["block_left"] > 20


def _left_aligned(h: dict[str, float]) -> bool:
    return abs(h["left"] - h["block_left"]) < 2 and h["block_right"] - h["right"] > 20


def test_console_in_arabic_and_english(page: Page, live_server: LiveServer,
                                       console_user: Callable[..., ConsoleUser], screenshot: Shoot) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 1280

    page.goto(live_server.url("/login"))
    assert page.locator("html").get_attribute("dir") == "ltr"
    page.click("header a[hreflang=ar]")
    page.wait_for_url(re.compile(r"\?lang=ar$"))
    assert page.locator("html").get_attribute("lang") == "ar"
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("main h1").inner_text() == "تسجيل الدخول"
    heading = _heading(page)
    assert _right_aligned(heading), heading  # in the centred sign-in card: flush with its right edge
    screenshot(page, "login-ar")

    operator = console_user("op.lang", Role.OPERATOR)
    sign_in(page, live_server, operator)  # the language cookie survives the sign-in
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("main h1").inner_text() == "نظرة عامة"
    heading = _heading(page)
    assert _right_aligned(heading) and heading["left"] > width / 2, heading  # on the page's right side
    screenshot(page, "overview-ar")

    page.click("header nav a[href='/tenants/']")
    assert page.locator("main h1").inner_text() == "المستأجرون"
    assert page.locator("html").get_attribute("dir") == "rtl"
    screenshot(page, "tenants-ar")

    page.click("header a[hreflang=en]")
    page.wait_for_url(re.compile(r"/tenants/\?lang=en$"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert page.locator("main h1").inner_text() == "Tenants"
    heading = _heading(page)
    assert _left_aligned(heading) and heading["right"] < width / 2, heading  # and back on the left
    screenshot(page, "tenants-en")

    page.locator("header nav a", has_text="Overview").click()
    assert page.locator("main h1").inner_text() == "Overview"  # English is remembered
    screenshot(page, "overview-en")


@pytest.mark.integration
def test_org_admin_sees_live_quota_of_own_tenant_only(
        page: Page, live_server: LiveServer, database: Database, backends: Backends,
        tenancy_settings: Settings, write_spec: Callable[..., TenantSpec], tenant_slug: str,
        purge: Callable[[str], None], console_user: Callable[..., ConsoleUser], screenshot: Shoot) -> None:
    other_slug = f"t-o{secrets.token_hex(3)}"
    purge(tenant_slug)
    spec, other = write_spec(tenant_slug, staging=False), write_spec(other_slug, staging=False)
    register_specs(database, [spec, other], initiator="test")  # the other one stays registered only
    outcome = reconcile_tenant(tenant_slug, db=database, backends=backends, settings=tenancy_settings,
                               owner="test:browser", run_baseline_playbook=False)
    assert outcome.status == "changed", outcome.error

    domain = backends.cloud.find_domain(tenant_slug)
    assert domain is not None
    project = backends.cloud.find_project(f"{tenant_slug}-prod", domain_id=domain.id)
    assert project is not None
    cores = backends.cloud.get_compute_quotas(project.id).cores
    assert cores.limit == spec.environments[0].quotas.compute.cores

    admin = console_user("own.admin", Role.ORG_ADMIN, org=tenant_slug)
    sign_in(page, live_server, admin, next_path=f"/tenants/{tenant_slug}")
    page.wait_for_url(live_server.url(f"/tenants/{tenant_slug}"))
    assert spec.names["en"] in page.locator("main h1").inner_text()
    quota = page.locator("table.quota")
    assert quota.count() == 1
    row = quota.locator("tbody tr", has_text="cores")
    assert row.locator("td").nth(1).inner_text() == str(cores.in_use)
    assert row.locator("td").nth(2).inner_text() == str(cores.limit)
    networks = backends.cloud.get_network_quotas(project.id).networks
    assert networks.in_use and networks.in_use >= 1  # the reconciler's network, counted by Neutron
    row = quota.locator("tbody tr", has_text="networks")
    assert row.locator("td").nth(1).inner_text() == str(networks.in_use)
    assert not page.locator("text=Reconcile now").count()  # operators only
    assert not page.locator("text=Decommission").count()
    screenshot(page, "own-tenant")

    # live: a change made in OpenStack shows on the next load, not a copy kept by the console
    backends.cloud.set_compute_quotas(project.id, cores=cores.limit + 4)
    page.locator("a", has_text="Read again now").click()  # pages may show figures up to 10 s old
    row = page.locator("table.quota tbody tr", has_text="cores")
    assert row.locator("td").nth(2).inner_text() == str(cores.limit + 4)
    screenshot(page, "own-tenant-after-cloud-change")

    page.locator("header nav a", has_text="Tenants").click()
    listed = page.locator("main table.checks tbody").inner_text()
    assert tenant_slug in listed and other_slug not in listed

    response = page.goto(live_server.url(f"/tenants/{other_slug}"))
    assert response is not None and response.status == 404
    assert page.locator("main h1").inner_text().startswith("404")
    body = page.locator("body").inner_text()
    assert other_slug not in body and other.names["en"] not in body
    screenshot(page, "other-tenant-404")
