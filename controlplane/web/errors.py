"""Error mapping: ControlPlaneError and HTTP errors become JSON for API/probes, a page for the console."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from controlplane.errors import ControlPlaneError

log = logging.getLogger(__name__)

INTERNAL_ERROR = ("Internal error", "Something went wrong on our side; it was logged.")


def _wants_json() -> bool:
    # A verification-only process (settings.role) has no console for the error page to link to.
    return request.path.startswith(("/api/", "/healthz", "/readyz", "/metrics")) or (
        request.accept_mimetypes.best == "application/json" or "console" not in current_app.blueprints
    )


def _render(status: int, title: str, message: str, hint: str | None = None) -> tuple[Response, int]:
    if _wants_json():
        body: dict[str, object] = {"error": title, "message": message}
        if hint:
            body["hint"] = hint
        return jsonify(body), status
    g.error_page = True
    html = render_template("error.html", status=status, title=title, message=message, hint=hint)
    return Response(html, mimetype="text/html"), status


def init_app(app: Flask) -> None:
    @app.errorhandler(ControlPlaneError)
    def _domain_error(exc: ControlPlaneError) -> tuple[Response, int]:
        if exc.status >= 500:
            log.error("request failed: %s", exc.message)
        return _render(exc.status, exc.title, exc.message, exc.hint)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> tuple[Response, int]:
        return _render(400, "Form expired", "The form was stale or not sent from this site; "
                       "reload the page and try again. Nothing was changed.")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        response, status = _render(exc.code or 500, exc.name, exc.description or exc.name)
        # Keep what the exception says beside its body: Allow on a 405, Retry-After on a 429/503.
        for name, value in exc.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.error("unexpected error on %s %s", request.method, request.path, exc_info=exc)
        return _render(500, *INTERNAL_ERROR)
