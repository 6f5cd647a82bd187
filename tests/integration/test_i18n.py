"""The console speaks Arabic and Kurdish right to left, and English, and remembers the choice."""

from __future__ import annotations

from flask.testing import FlaskClient


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
