"""The public verification page as a phone opens it after scanning the QR: headless Chromium on a
phone-sized screen, in English and Arabic (right to left), the verdict, the masked recipient, and
the optional file check with the right file and a wrong one. Screenshots of each step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, ViewportSize

from controlplane.backends import Backends
from tests.fixtures.browser import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PHONE: ViewportSize = {"width": 390, "height": 844}
Shoot = Callable[[Page, str], object]


def open_on_phone(new_page: Callable[..., Page], locale: str, url: str) -> Page:
    page = new_page(locale=locale)
    page.set_viewport_size(PHONE)
    page.goto(url)
    return page


def check_file(page: Page, path: Path) -> str:
    page.set_input_files("#document-file", str(path))
    page.click("form button[type=submit]")
    page.wait_for_selector("#file-check")
    return page.locator("#file-check").get_attribute("class") or ""


def test_verify_page_on_a_phone_in_english_and_arabic(
    new_page: Callable[..., Page], live_server: LiveServer, backends: Backends, document_org: str,
    api_token_for: Callable[..., str], sample_file: tuple[Path, str], tmp_path: Path, screenshot: Shoot,
) -> None:
    auth = {"Authorization": f"Bearer {api_token_for(document_org)}"}
    right, digest = sample_file
    wrong = tmp_path / "altered.pdf"
    wrong.write_bytes(right.read_bytes()[:-1] + b"!")
    doc = requests.post(live_server.url("/api/v1/documents"), headers=auth, timeout=30, json={
        "doc_type": "birth-certificate", "title": "Birth certificate", "recipient": "Ahmed Karim Salih",
        "sha256": digest, "expires_at": "2099-06-30"}).json()
    url = live_server.url(f"/V/{doc['token']}")  # the path as the QR code spells it

    # English
    page = open_on_phone(new_page, "en", url)
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert page.locator("#verdict").inner_text() == "Valid document"
    facts = page.locator("dl.facts").inner_text()
    assert "A**** K**** S****" in facts and "Ahmed" not in page.content()
    assert f"Test ministry {document_org}" in facts and "birth-certificate" in facts
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
    screenshot(page, "1-valid-en")
    assert "match" in check_file(page, right).split()
    assert "exactly the document that was signed" in page.locator("#file-check").inner_text()
    screenshot(page, "2-file-matches-en")
    assert "mismatch" in check_file(page, wrong).split()
    assert "NOT the document" in page.locator("#file-check").inner_text()
    screenshot(page, "3-file-differs-en")

    # Arabic, right to left
    page_ar = open_on_phone(new_page, "ar", url)
    assert page_ar.locator("html").get_attribute("dir") == "rtl"
    assert page_ar.locator("#verdict").inner_text() == "وثيقة صحيحة"
    assert "المستفيد" in page_ar.locator("dl.facts").inner_text()
    screenshot(page_ar, "4-valid-ar")
    assert "match" in check_file(page_ar, right).split()
    assert "الوثيقة الموقّعة نفسها" in page_ar.locator("#file-check").inner_text()
    screenshot(page_ar, "5-file-matches-ar")
    assert "mismatch" in check_file(page_ar, wrong).split()
    screenshot(page_ar, "6-file-differs-ar")

    # revoked: the verdict and the issuer's reason, in Arabic and in Kurdish
    revoked = requests.post(live_server.url(f"/api/v1/documents/{doc['serial']}/revoke"), headers=auth,
                            json={"reason": "صدرت بالخطأ"}, timeout=30)
    assert revoked.status_code == 200
    page_ar.goto(url)
    assert page_ar.locator("#verdict").inner_text() == "وثيقة ملغاة"
    assert page_ar.locator("#reason").inner_text() == "صدرت بالخطأ"
    screenshot(page_ar, "7-revoked-ar")
    page_ar.goto(url + "?lang=ckb")
    assert page_ar.locator("#verdict").inner_text() == "بەڵگەنامەی هەڵوەشێنراوە"
    screenshot(page_ar, "8-revoked-ckb")

    # a damaged code: a clear verdict, no facts, no upload form
    page.goto(live_server.url(f"/V/{doc['token'][:40]}"))
    assert page.locator("#verdict").inner_text() == "Not a verification code"
    assert page.locator("dl.facts").count() == 0 and page.locator("#document-file").count() == 0
    screenshot(page, "9-malformed-en")
