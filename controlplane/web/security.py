"""Security headers on every response: no framing, no sniffing, a strict content policy."""

from __future__ import annotations

from flask import Flask, Response

from controlplane.web.services import services

_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


_ALWAYS = (
    ("Content-Security-Policy", _CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # same-origin, not no-referrer: over HTTPS Flask-WTF refuses a form post without a same-site
    # Referer (its strict check); other sites still learn nothing (verification URLs hold tokens).
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
_HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


def standard_headers(secure_cookies: bool) -> tuple[tuple[str, str], ...]:
    """The headers every response carries (HSTS only where the site is served over HTTPS)."""
    return (*_ALWAYS, _HSTS) if secure_cookies else _ALWAYS


def _add_headers(response: Response) -> Response:
    headers = response.headers
    # One pass over the response's headers instead of a setdefault scan per header (every request,
    # the public verification API's above all); a view's own value still wins.
    present = {key.lower() for key, _ in headers}
    wanted = standard_headers(services().settings.cookies_secure)
    headers.extend([(key, value) for key, value in wanted if key.lower() not in present])
    if response.mimetype == "text/html":
        # Console pages carry tenant data; never let a shared cache keep them.
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_add_headers)
