"""Web layer: blueprints, per-request context, error pages, security headers and HTTP metrics."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from controlplane.web import auth, context, errors, metrics_http, security
from controlplane.web.console import bp as console_bp
from controlplane.web.probes import bp as probes_bp
from controlplane.web.tenant_views import bp as tenants_bp

csrf = CSRFProtect()


def init_web(app: Flask) -> None:
    csrf.init_app(app)
    context.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    metrics_http.init_app(app)
    errors.init_app(app)
    app.register_blueprint(probes_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(tenants_bp)
