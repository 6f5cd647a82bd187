"""Per-request state: the request's database session and its signed-in actor (the process's
settings, database, backends and the rest come from web.services.services())."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import Flask, g
from sqlalchemy.orm import Session

from controlplane.web.services import services

if TYPE_CHECKING:  # types only: the public channel imports this module, and no accounts code
    from controlplane.accounts.service import Actor


def db_session() -> Session:
    """The request's session; views commit explicitly through `database().transaction()` or here."""
    if "db_session" not in g:
        g.db_session = services().database.sessionmaker()
    return cast(Session, g.db_session)


def actor() -> Actor | None:
    return cast("Actor | None", g.get("actor"))


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
