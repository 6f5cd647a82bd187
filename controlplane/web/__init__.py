"""Web layer: wires the three channels (console/: cookie sessions, api/: bearer tokens, public/:
verification) with the shared per-request context, error pages, security headers and HTTP metrics."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from controlplane.web import context, errors, i18n, metrics_http, security
from controlplane.web.probes import bp as probes_bp
from controlplane.web.public import verify_fastpath, verify_views
from controlplane.web.public.verify_api import verify as public_verify_json
from controlplane.web.services import services_of

csrf = CSRFProtect()


def init_web(app: Flask) -> None:
    csrf.init_app(app)
    context.init_app(app)
    i18n.init_app(app)
    verification_only = services_of(app).settings.role == "verification"
    if not verification_only:
        # No sign-in on the public service: its database role cannot read sessions or people.
        from controlplane.web.console import auth

        auth.init_app(app)
    security.init_app(app)
    metrics_http.init_app(app)
    errors.init_app(app)
    app.register_blueprint(probes_bp)
    verify_views.init_app(app)
    app.register_blueprint(verify_views.bp)
    csrf.exempt(verify_views.verify_page)  # checks CSRF itself after hashing the upload in memory
    if verification_only:
        # The shared-verification tenant's processes: the public page, its JSON twin, the trust
        # list and probes; no console, no operator or issuance API, so nothing there can act on
        # tenants or sign even if the process were taken over.
        app.add_url_rule("/api/v1/verify/<token>", "verify_json", public_verify_json)
        verify_fastpath.install(app, endpoint="verify_json")
        return
    _register_console_and_api(app)
    verify_fastpath.install(app, endpoint="api_documents.verify")


def _register_console_and_api(app: Flask) -> None:
    """The console and the API, imported only here: the verification service never loads their code."""
    from controlplane.web.api.api_audit import bp as api_audit_bp
    from controlplane.web.api.api_documents import bp as api_documents_bp
    from controlplane.web.api.api_requests import bp as api_requests_bp
    from controlplane.web.api.api_tenants import bp as api_tenants_bp
    from controlplane.web.api.api_tokens import bp as api_tokens_bp
    from controlplane.web.api.api_v1 import bp as api_v1_bp
    from controlplane.web.api.openapi import bp as api_docs_bp
    from controlplane.web.console.account_views import bp as account_bp
    from controlplane.web.console.audit_views import bp as audit_bp
    from controlplane.web.console.console import bp as console_bp
    from controlplane.web.console.people_views import bp as people_bp
    from controlplane.web.console.portal_views import bp as portal_bp
    from controlplane.web.console.request_views import bp as requests_bp
    from controlplane.web.console.session_views import bp as sessions_bp
    from controlplane.web.console.staff_views import bp as staff_bp
    from controlplane.web.console.tenant_views import bp as tenants_bp

    app.register_blueprint(console_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(people_bp)
    app.register_blueprint(staff_bp)  # staff changes for a second operator; invites
    csrf.exempt(api_v1_bp)  # bearer calls only: api_v1 checks CSRF itself for cookie requests
    app.register_blueprint(api_v1_bp)
    app.register_blueprint(tenants_bp)
    csrf.exempt(api_tenants_bp)  # bearer tokens only: a session cookie authenticates nothing there
    app.register_blueprint(api_tenants_bp)
    csrf.exempt(api_tokens_bp)  # bearer tokens only, as above
    app.register_blueprint(api_tokens_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(requests_bp)
    csrf.exempt(api_requests_bp)  # bearer tokens only: a session cookie authenticates nothing there
    app.register_blueprint(api_requests_bp)
    app.register_blueprint(api_docs_bp)
    app.register_blueprint(api_audit_bp)  # GET only, bearer tokens with audit:read
    csrf.exempt(api_documents_bp)  # bearer tokens only, and the public verify is a GET
    app.register_blueprint(api_documents_bp)
    app.register_blueprint(audit_bp)  # GET only: auditors read, nothing there changes state
