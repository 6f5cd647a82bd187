"""create_app: the one place where settings, storage, backends and the web layer are wired together."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from controlplane.backends import Backends, load_backends
from controlplane.backends.keys import KeyBackend
from controlplane.logging_setup import configure_logging
from controlplane.settings import REPO_ROOT, Settings, load_settings
from controlplane.storage import Database
from controlplane.web import init_web
from controlplane.web.services import Services, services_of
from controlplane.web.services import install as install_services

if TYPE_CHECKING:
    from controlplane.accounts.mfa import SecretBox
    from controlplane.documents.signer import OrgSigner

log = logging.getLogger(__name__)

WEB_DIR = REPO_ROOT / "web"
SESSION_COOKIE = "cp_session"
SECURE_SESSION_COOKIE = "__Host-cp_session"


def load_or_create_secret_key(settings: Settings) -> str:
    """The session-signing key: from settings, else a random one kept 0600 in the instance folder."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.instance_path) / "secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two workers starting together must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    return key


def _org_signer(keys: KeyBackend, database: Database) -> OrgSigner:
    # Imported when first needed: the verification role never signs and never loads this code.
    from controlplane.documents.signer import OrgSigner

    return OrgSigner(keys, database)


def _mfa_box(settings: Settings, secret_key: str) -> SecretBox:
    """Keyed by the MFA key file; SECRET_KEY only opens secrets of earlier releases to re-seal them."""
    from controlplane.accounts.mfa import SecretBox

    return SecretBox.from_key_file(settings.effective_mfa_key_file, legacy_secret_key=secret_key)


def create_app(settings: Settings | None = None, *, backends: Backends | None = None) -> Flask:
    """Build the Flask app. Tests pass their own settings and backends; nothing here calls a backend."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask(
        __name__,
        instance_path=str(Path(settings.instance_path).resolve()),
        template_folder=str(WEB_DIR / "templates"),
        static_folder=str(WEB_DIR / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    secure = settings.cookies_secure
    app.config.update(
        SECRET_KEY=load_or_create_secret_key(settings),
        # __Host-: the browser keeps it only if Secure, for this exact host and path /, so a
        # sibling subdomain or a plain-HTTP page cannot plant or overwrite the session cookie.
        SESSION_COOKIE_NAME=SECURE_SESSION_COOKIE if secure else SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_absolute_hours),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the session bounds the token's life; a timer only annoys
        JSON_SORT_KEYS=False,
    )
    secret_key = app.config["SECRET_KEY"]
    # Backends, signer and MFA cipher are built on first use, so an app can start while OpenStack
    # or Vault is down and report that on /readyz instead of failing to boot.
    install_services(app, Services(
        settings=settings,
        database=Database(settings.effective_database_url),
        backends_factory=lambda: load_backends(settings),
        signer_factory=_org_signer,
        mfa_box_factory=lambda: _mfa_box(settings, secret_key),
        built_backends=backends,
    ))
    init_web(app)
    if settings.proxy_hops:
        # Outermost, so the verification fast path, rate limits and audit all see the real client.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
            x_host=settings.proxy_hops,
        )
    return app


def close_app(app: Flask) -> None:
    """Shut the app down: stop its background work (writing what it holds), then its database pool."""
    built = services_of(app)
    for close in reversed(built.closers):
        close()
    built.database.dispose()
