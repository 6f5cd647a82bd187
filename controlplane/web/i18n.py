"""Languages of the console: Arabic (right to left), Central Kurdish (right to left) and English."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, current_app, g, request
from flask_babel import Babel

from controlplane.settings import REPO_ROOT

LANGUAGES = {"en": "English", "ar": "العربية", "ckb": "کوردی"}
RIGHT_TO_LEFT = frozenset({"ar", "ckb"})
COOKIE = "cp_lang"
TRANSLATIONS = REPO_ROOT / "web" / "translations"


def select_locale() -> str:
    """?lang= (remembered in a cookie), else the cookie, else the browser's preference."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        g.set_lang_cookie = asked
        return asked
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return remembered
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


def _remember(response: Response) -> Response:
    lang = g.pop("set_lang_cookie", None)
    if lang:
        response.set_cookie(COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]))
    return response


def compile_catalogs(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile every messages.po to messages.mo when the .mo is missing or older (install step)."""
    written = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po:
            catalog = read_po(po)
        with mo_path.open("wb") as mo:
            write_mo(mo, catalog)
        written.append(mo_path)
    return written


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)
    app.after_request(_remember)

    @app.context_processor
    def _language() -> dict[str, object]:
        from flask_babel import get_locale

        lang = str(get_locale() or "en")
        return {"lang": lang, "text_dir": "rtl" if lang in RIGHT_TO_LEFT else "ltr", "languages": LANGUAGES,
                "language_url": language_url}


def language_url(code: str) -> str:
    """This page in another language: the query string is kept, so filters survive a switch."""
    if g.get("error_page"):  # an error page echoes nothing of the request it refused
        return "?" + urlencode([("lang", code)])
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return "?" + urlencode([*args, ("lang", code)])
