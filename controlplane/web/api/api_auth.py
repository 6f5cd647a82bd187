"""Bearer-token authentication for the JSON API: `current_api_actor()` and `@require_scope(scope)`.

Every /api/v1 view calls one of them; a missing, malformed, wrong, revoked or expired token is a
401 with a JSON message saying which, a token without the scope a 403."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from flask import Blueprint, Response, jsonify

from controlplane.accounts.tokens import ApiActor
from controlplane.errors import NotAuthenticated, PermissionDenied
from controlplane.web.bearer import current_api_actor, has_bearer

P = ParamSpec("P")
R = TypeVar("R")


def require_scope(scope: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Guard an API view: a valid bearer token that carries `scope`."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                actor = current_api_actor()
            except NotAuthenticated as exc:  # answered here, so every guarded view challenges alike
                return cast(R, bearer_challenge(exc))
            if not actor.has_scope(scope):
                raise PermissionDenied(f"this API token lacks the scope {scope!r}",
                                       hint="ask your organisation admin for a token with that scope")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def bearer_challenge(exc: NotAuthenticated) -> tuple[Response, int]:
    """A 401 that says how to authenticate (RFC 6750), beside the JSON message."""
    response = jsonify(exc.to_dict())
    response.headers["WWW-Authenticate"] = 'Bearer realm="controlplane"'
    return response, exc.status


def challenge_on_401(bp: Blueprint) -> None:
    """Every 401 of `bp` carries the challenge, also from views that call current_api_actor()."""
    bp.register_error_handler(NotAuthenticated, bearer_challenge)


__all__ = [
    "ApiActor",
    "NotAuthenticated",
    "bearer_challenge",
    "challenge_on_401",
    "current_api_actor",
    "has_bearer",
    "require_scope",
]
