"""Who a bearer token says the caller is, once per request: the API's guard and /readyz's staff check."""

from __future__ import annotations

from typing import cast

from flask import g, request

from controlplane.accounts.tokens import ApiActor, authenticate_bearer
from controlplane.errors import NotAuthenticated
from controlplane.web.services import services


def has_bearer() -> bool:
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


def current_api_actor() -> ApiActor:
    """The token actor of this request (checked once per request), or NotAuthenticated."""
    if "api_actor" in g:
        return cast(ApiActor, g.api_actor)
    with services().database.sessionmaker() as db:
        try:
            actor = authenticate_bearer(db, request.headers.get("Authorization"))
        except NotAuthenticated:
            db.commit()  # refusals of a known token are audited: keep that record though we raise
            raise
        db.commit()
    g.api_actor = actor
    return actor
