"""Per-request access to settings, the database session, the backends and the signed-in actor."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from controlplane.errors import ControlPlaneError
from controlplane.settings import Settings
from controlplane.storage import Database

if TYPE_CHECKING:  # types only: the public channel imports this module, and no accounts or Vault code
    from controlplane.accounts.service import Actor
    from controlplane.backends import Backends

_backends_lock = threading.Lock()


def settings() -> Settings:
    return cast(Settings, current_app.extensions["controlplane.settings"])


def database() -> Database:
    return cast(Database, current_app.extensions["controlplane.db"])


def db_session() -> Session:
    """The request's session; views commit explicitly through `database().transaction()` or here."""
    if "db_session" not in g:
        g.db_session = database().sessionmaker()
    return cast(Session, g.db_session)


def backends() -> tuple[Backends | None, ControlPlaneError | None]:
    """The app's backends, built on first use; a configuration error is returned, not raised."""
    ext = current_app.extensions
    if ext.get("controlplane.backends") is None:
        with _backends_lock:
            if ext.get("controlplane.backends") is None:
                try:
                    ext["controlplane.backends"] = ext["controlplane.backends_factory"]()
                except ControlPlaneError as exc:
                    return None, exc
    return cast("Backends", ext["controlplane.backends"]), None


def actor() -> Actor | None:
    return cast("Actor | None", g.get("actor"))


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
