"""Web layer: blueprints, per-request context, error pages, security headers and HTTP metrics."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from controlplane.web import auth, context, errors, i18n, metrics_http, security
from controlplane.web.account_views import bp as account_bp
from controlplane.web.api_requests import bp as api_requests_bp
from controlplane.web.api_tenants import bp as api_tenants_bp
from controlplane.web.api_v1 import bp as api_v1_bp
from controlplane.web.console import bp as console_bp
from controlplane.web.openapi import bp as api_docs_bp
from controlplane.web.portal_views import bp as portal_bp
from controlplane.web.probes import bp as probes_bp
from controlplane.web.request_views import bp as requests_bp
from controlplane.web.tenant_views import bp as tenants_bp

csrf = CSRFProtect()


def init_web(app: Flask) -> None:
    csrf.init_app(app)
    context.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    metrics_http.init_app(app)
    errors.init_app(app)
    app.register_blueprint(probes_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(account_bp)
    csrf.exempt(api_v1_bp)  # bearer calls only: api_v1 checks CSRF itself for cookie requests
    app.register_blueprint(api_v1_bp)
    app.register_blueprint(tenants_bp)
    app.register_blueprint(api_tenants_bp)  # read-only (GET): nothing for CSRF to protect
    app.register_blueprint(portal_bp)
    app.register_blueprint(requests_bp)
    csrf.exempt(api_requests_bp)  # bearer tokens only: a session cookie authenticates nothing there
    app.register_blueprint(api_requests_bp)
    app.register_blueprint(api_docs_bp)
