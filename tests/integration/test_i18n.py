"""The console speaks Arabic and Kurdish right to left, and English, and remembers the choice."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from controlplane.accounts.models import Role
from controlplane.accounts.service import start_session
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.web.console.auth import SESSION_KEY
from tests.integration.api_actors import make_user


def test_arabic_is_right_to_left_and_remembered(client: FlaskClient) -> None:
    page = client.get("/login?lang=ar").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert "<h1>تسجيل الدخول</h1>" in page and "اسم المستخدم" in page
    again = client.get("/login").get_data(as_text=True)  # the cookie keeps the choice
    assert '<html lang="ar" dir="rtl">' in again


def test_kurdish_from_the_browser_preference(client: FlaskClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "ckb, en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ckb" dir="rtl">' in page and "<h1>چوونەژوورەوە</h1>" in page


def test_english_by_default_and_unknown_language_ignored(client: FlaskClient) -> None:
    page = client.get("/login?lang=xx").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in page and "<h1>Sign in</h1>" in page
    assert client.get_cookie("cp_lang") is None
    # every other language is offered in its own name
    assert 'hreflang="ar">العربية</a>' in page and 'hreflang="ckb">کوردی</a>' in page


def test_language_links_keep_the_query_string(client: FlaskClient) -> None:
    page = client.get("/login?next=%2Ftenants%2F&lang=en").get_data(as_text=True)
    assert 'href="?next=%2Ftenants%2F&amp;lang=ar"' in page  # a switch keeps the page's filters


def test_method_not_allowed_keeps_its_allow_header(client: FlaskClient) -> None:
    response = client.delete("/login")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_arabic_console_shows_translated_phases_and_empty_states(
    app: Flask, database: Database, tenant_slug: str, write_spec: Callable[..., TenantSpec]
) -> None:
    operator = make_user(database, "op-arabic", Role.OPERATOR, with_mfa=True)
    with database.transaction() as s:
        session_id = start_session(s, operator)
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = session_id

    empty = client.get("/tenants/?lang=ar").get_data(as_text=True)
    assert "لا يوجد مستأجرون مسجَّلون" in empty and "No tenants registered" not in empty
    register_specs(database, [write_spec(tenant_slug, staging=False)], initiator="test")
    with database.transaction() as s:
        registry.get_tenant(s, tenant_slug).phase = "ready"
    dashboard = client.get("/tenants/").get_data(as_text=True)  # the cookie keeps Arabic
    assert '<span class="badge phase-ready">جاهز</span>' in dashboard
    detail = client.get(f"/tenants/{tenant_slug}").get_data(as_text=True)
    assert "<dt>المرحلة</dt>" in detail and ">جاهز</span>" in detail
    assert "لم يُشغَّل أي دليل تشغيل بعد." in detail
    kurdish = client.get("/account/tokens?lang=ckb").get_data(as_text=True)
    assert "هێشتا هیچ تۆکنێکی API نییە." in kurdish and "تۆکنی ئۆپەرەیتەر" in kurdish
