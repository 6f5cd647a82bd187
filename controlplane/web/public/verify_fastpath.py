"""GET /api/v1/verify/<token> answered in front of Flask: same verdict, body, headers and metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from controlplane.errors import ControlPlaneError
from controlplane.metrics import HTTP_LATENCY, HTTP_REQUESTS, status_class
from controlplane.web.errors import INTERNAL_ERROR
from controlplane.web.public.verify_api import verdict_body
from controlplane.web.public.verify_views import RateLimited, VerificationState
from controlplane.web.security import standard_headers
from controlplane.web.services import services_of

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

PREFIX = "/api/v1/verify/"
_STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in HTTP_STATUS_CODES}


class VerifyApiFastPath:
    """WSGI middleware for the busiest public call: one citizen's phone, one token, one verdict.

    Flask's request machinery (contexts, session and cookie handling, the actor and language hooks,
    URL matching, Response objects) cost more CPU per call than the verification itself, and a
    verdict needs none of it: no session, no actor, no template. So a plain GET of exactly
    /api/v1/verify/<token> is answered here through the same VerificationState.verify (rate limit,
    counts) and verdict_body as the Flask view, with the same security headers and HTTP metrics
    (under the view's endpoint name). Everything else, HEAD included, goes to Flask untouched; a
    test compares both paths' answers for every verdict and error."""

    def __init__(self, app: Flask, inner: WSGIApplication, *, endpoint: str) -> None:
        self.inner = inner
        self.endpoint = endpoint
        held = services_of(app)
        self._state: VerificationState = held.verifier
        self._database = held.database
        settings = held.settings
        self._headers = list(standard_headers(settings.cookies_secure))
        # Flask's jsonify outside debug mode, with its provider's settings: compact separators.
        provider = app.json
        self._encode: Callable[[object], str] = json.JSONEncoder(
            ensure_ascii=getattr(provider, "ensure_ascii", True),
            sort_keys=getattr(provider, "sort_keys", True),
            separators=(",", ":"),
            default=getattr(provider, "default", None),
        ).encode
        self._latency = HTTP_LATENCY.labels(endpoint)
        self._counts: dict[int, Any] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET" or not path.startswith(PREFIX):
            return self.inner(environ, start_response)
        token = path[len(PREFIX):]
        if not token or "/" in token:
            return self.inner(environ, start_response)  # not this route: Flask answers 404 or 308
        if not token.isascii():  # PATH_INFO is latin-1 text of the raw bytes: decode as werkzeug does
            token = token.encode("latin-1").decode("utf-8", "replace")
        started = time.perf_counter()
        status, body, extra = self._answer(token, environ.get("REMOTE_ADDR") or "")
        payload = (self._encode(body) + "\n").encode()  # jsonify ends the body with a newline
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                   *extra, *self._headers]
        start_response(_STATUS_LINES[status], headers)
        self._latency.observe(time.perf_counter() - started)
        self._count(status)
        return [payload]

    def _answer(self, token: str, address: str) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
        try:
            result = self._state.verify(self._database, token, address)
        except RateLimited as exc:
            return exc.status, exc.to_dict(), [("Retry-After", str(exc.retry_after))]
        except ControlPlaneError as exc:  # the registry unreachable: 503, as Flask's handler says it
            if exc.status >= 500:
                log.error("request failed: %s", exc.message)
            return exc.status, exc.to_dict(), []
        except Exception as exc:
            log.error("unexpected error on GET %s", PREFIX + "<token>", exc_info=exc)
            title, message = INTERNAL_ERROR
            return 500, {"error": title, "message": message}, []
        status, body = verdict_body(token, result)
        return status, body, []

    def _count(self, status: int) -> None:
        child = self._counts.get(status)
        if child is None:  # labels() takes a lock and a dict walk: once per status, not per call
            child = self._counts[status] = HTTP_REQUESTS.labels(self.endpoint, "GET", status_class(status))
        child.inc()


def install(app: Flask, *, endpoint: str) -> None:
    """Put the fast path in front of the app's WSGI callable (inside any proxy middleware added later)."""
    app.wsgi_app = VerifyApiFastPath(app, app.wsgi_app, endpoint=endpoint)  # type: ignore[method-assign]
