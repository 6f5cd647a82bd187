"""Prometheus metrics, named controlplane_<subsystem>_<thing>_<unit>, with bounded labels only.

Every metric the app exports is defined here, so the dashboard and alert rules in
playbooks/monitoring/ can be checked against this module (tests/unit/test_monitoring_files.py).
Label values come from closed sets (Flask endpoint names, HTTP methods, status classes, reconcile
outcomes, verdicts, login stages): never a path, a user, a tenant slug or a serial."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)


def _use_cached_pid() -> None:
    """In multiprocess mode (PROMETHEUS_MULTIPROC_DIR), every increment of every metric checks
    os.getpid() to notice a fork: a system call each time, six per public verification. The pid
    is kept here instead and renewed in each child right after a fork (gunicorn forks its
    workers), which is the only way it changes. Must run before the first metric value exists:
    this module defines every metric the app has, below."""
    if not isinstance(values.ValueClass, type) or not getattr(values.ValueClass, "_multiprocess", False):
        return
    pid = [os.getpid()]
    os.register_at_fork(after_in_child=lambda: pid.__setitem__(0, os.getpid()))
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid[0])  # type: ignore[no-untyped-call]


_use_cached_pid()

# ---------------------------------------------------------------------------- HTTP
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_REQUESTS = Counter(
    "controlplane_http_requests_total", "HTTP requests by Flask endpoint, method and status class",
    ["endpoint", "method", "status_class"],
)
HTTP_LATENCY = Histogram(
    "controlplane_http_request_duration_seconds", "HTTP request latency by Flask endpoint",
    ["endpoint"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
)
BACKEND_UP = Gauge(
    "controlplane_backend_up", "1 if the last health check of a dependency passed",
    ["check"], multiprocess_mode="liveall",
)

# ---------------------------------------------------------------------------- tenancy
RECONCILE_OUTCOMES = ("converged", "changed", "refused", "failed", "skipped")
RECONCILES_TOTAL = Counter(
    "controlplane_tenancy_reconciles_total", "Tenant reconciles by outcome", ["outcome"],
)
RECONCILE_SECONDS = Histogram(
    "controlplane_tenancy_reconcile_duration_seconds", "Wall time of one tenant's reconcile by outcome",
    ["outcome"], buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
# Read from the tenants table at scrape time (any worker may have reconciled a tenant): the
# figures of the last pass over each tenant, so they are right however many workers run.
DRIFTED_RESOURCES = Gauge(
    "controlplane_tenancy_drifted_resources",
    "Resources that differed from their spec at each tenant's last reconcile, summed over tenants",
    multiprocess_mode="mostrecent",
)
DRIFTED_TENANTS = Gauge(
    "controlplane_tenancy_drifted_tenants", "Tenants whose last reconcile found drift",
    multiprocess_mode="mostrecent",
)
FAILING_TENANTS = Gauge(
    "controlplane_tenancy_failing_tenants", "Active tenants whose last reconcile failed",
    multiprocess_mode="mostrecent",
)

# ---------------------------------------------------------------------------- accounts
LOGIN_STAGES = ("password", "mfa")
ACCOUNT_LOGIN_FAILURES_TOTAL = Counter(
    "controlplane_accounts_login_failures_total",
    "Sign-in steps refused for a wrong password or authenticator code, by stage", ["stage"],
)

# ---------------------------------------------------------------------------- documents
# Called by controlplane.documents (issuance and verification); see the lead's notes.
DOCUMENTS_SIGNED_TOTAL = Counter(
    "controlplane_documents_signed_total", "Documents signed and registered",
)
DOCUMENT_SIGN_FAILURES_TOTAL = Counter(
    "controlplane_documents_sign_failures_total",
    "Issuance batches that failed to sign (Vault refused or was unreachable); nothing was written",
)
DOCUMENT_SIGN_SECONDS = Histogram(
    "controlplane_documents_sign_duration_seconds", "Time of one batched signing call to Vault",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DOCUMENT_VERDICTS = ("valid", "revoked", "superseded", "expired", "unknown_issuer", "forged",
                     "malformed", "not_found")
DOCUMENT_VERIFICATIONS_TOTAL = Counter(
    "controlplane_documents_verifications_total", "Verifications by verdict", ["verdict"],
)
DOCUMENT_VERIFY_SECONDS = Histogram(
    "controlplane_documents_verify_duration_seconds", "Time to verify one token (signature and registry)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)

# ---------------------------------------------------------------------------- audit
# The lag gauges are read from audit_events at scrape time (controlplane.web.metrics_http), not set
# by the sequencer: a sequencer that stopped cannot report its own lag. The counters are its own.
AUDIT_SEQUENCER_LAG_EVENTS = Gauge(
    "controlplane_audit_sequencer_lag_events", "Audit events written but not yet in the Merkle tree",
    multiprocess_mode="mostrecent",
)
AUDIT_SEQUENCER_LAG_SECONDS = Gauge(
    "controlplane_audit_sequencer_lag_seconds", "Age of the oldest audit event not yet in the Merkle tree",
    multiprocess_mode="mostrecent",
)
AUDIT_SEQUENCED_EVENTS_TOTAL = Counter(
    "controlplane_audit_sequenced_events_total", "Audit events integrated into the Merkle tree",
)
AUDIT_CHECKPOINTS_TOTAL = Counter(
    "controlplane_audit_checkpoints_total", "Signed checkpoints by outcome (success|failure)", ["outcome"],
)
AUDIT_EXPORTS_TOTAL = Counter(
    "controlplane_audit_console_exports_total", "Audit console exports by format (csv|json)", ["format"],
)


class ReconcileResult(Protocol):
    """What a reconcile outcome exposes to metrics (tenancy's Outcome has these fields)."""

    @property
    def status(self) -> str: ...

    @property
    def seconds(self) -> float: ...


def observe_reconciles(outcomes: Iterable[ReconcileResult]) -> None:
    """Count and time each tenant's reconcile of a worker pass."""
    for outcome in outcomes:
        status = outcome.status if outcome.status in RECONCILE_OUTCOMES else "failed"
        RECONCILES_TOTAL.labels(status).inc()
        RECONCILE_SECONDS.labels(status).observe(outcome.seconds)


def status_class(status_code: int) -> str:
    """'2xx', '4xx', ...: five values at most, whatever a handler returns."""
    return f"{min(max(status_code // 100, 1), 5)}xx"


# Callbacks that refresh gauges read from the database, run just before each scrape.
_ON_SCRAPE: list[Callable[[], None]] = []


def on_scrape(callback: Callable[[], None]) -> None:
    if callback not in _ON_SCRAPE:
        _ON_SCRAPE.append(callback)


def render_latest() -> tuple[bytes, str]:
    """The exposition text; aggregates across gunicorn workers when multiprocess mode is on."""
    for callback in _ON_SCRAPE:
        callback()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def start_exporter(
    port: int, *, addr: str = "127.0.0.1", ready: Callable[[], tuple[bool, str]] | None = None
) -> tuple[WSGIServer, threading.Thread]:
    """Serve this process's metrics (a reconciler worker's: it has no web app) on loopback only;
    a scraper elsewhere goes through an agent on the host, as with /metrics without its token.
    With `ready`, /healthz and /readyz too (scripts/run and service managers check them)."""
    if ready is None:
        return start_http_server(port, addr=addr)
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app

    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok, detail = (True, "alive") if path == "/healthz" else ready()
            body = json.dumps({"status": ("ok" if path == "/healthz" else "ready") if ok else "not ready",
                               "detail": detail}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server(addr, port, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True)
    thread.start()
    return server, thread
