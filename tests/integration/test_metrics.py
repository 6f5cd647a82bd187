"""/metrics after real requests, sign-ins and a worker pass: the series exist with bounded labels
(endpoint names, method, status class; never a path or a name), the drift gauges read the tenants
table, and the endpoint is refused to remote scrapers without the bearer token."""

from __future__ import annotations

import secrets
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from controlplane import metrics
from controlplane.app import create_app
from controlplane.audit import record_event
from controlplane.audit.sequencer import integrate_pending
from controlplane.settings import Settings, load_settings
from controlplane.storage import Database
from controlplane.tenancy.leases import acquire_lease
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.tenancy.worker import run_pass
from controlplane.web.services import services_of
from tests.fixtures.app import csrf_token_from

pytestmark = pytest.mark.integration

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


def scrape(client: FlaskClient, **environ: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", environ_base=environ or LOOPBACK)
    assert response.status_code == 200, response.get_data(as_text=True)
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_http_requests_by_endpoint_method_and_status_class(client: FlaskClient) -> None:
    before = scrape(client)
    client.get("/healthz")
    client.get("/login")
    client.get("/tenants/")  # not signed in: a redirect
    for _ in range(3):
        client.get(f"/no-such-page-{secrets.token_hex(4)}")  # three paths, one label value
    client.open("/healthz", method="BREW")  # any method name a client invents
    after = scrape(client)

    def grew(endpoint: str, method: str, klass: str) -> float:
        labels = {"endpoint": endpoint, "method": method, "status_class": klass}
        return value(after, "controlplane_http_requests_total", **labels) - value(
            before, "controlplane_http_requests_total", **labels)

    assert grew("probes.healthz", "GET", "2xx") == 1
    assert grew("console.login", "GET", "2xx") == 1
    assert grew("tenants.dashboard", "GET", "3xx") == 1
    assert grew("unmatched", "GET", "4xx") == 3
    assert grew("unmatched", "other", "4xx") == 1
    assert value(after, "controlplane_http_request_duration_seconds_count", endpoint="probes.healthz") >= 1
    assert ("controlplane_http_request_duration_seconds_bucket",
            frozenset({("endpoint", "console.login"), ("le", "0.005")})) in after
    for (name, labels), _ in after.items():  # bounded: no raw path, no made-up method, no full status
        assert not any("no-such-page" in v or v == "BREW" for _, v in labels), (name, labels)
        assert "status" not in dict(labels)


def test_failed_sign_ins_are_counted_by_stage(client: FlaskClient) -> None:
    before = value(scrape(client), "controlplane_accounts_login_failures_total", stage="password")
    for _ in range(2):
        token = csrf_token_from(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"csrf_token": token, "username": "nobody",
                                                "password": "wrong-password-123"})
        assert response.status_code == 401
    after = value(scrape(client), "controlplane_accounts_login_failures_total", stage="password")
    assert after - before == 2


def test_drift_gauges_read_the_tenants_table(client: FlaskClient, database: Database,
                                             write_spec: Callable[..., TenantSpec]) -> None:
    register_specs(database, [write_spec("t-drift-a"), write_spec("t-drift-b"), write_spec("t-calm")],
                   initiator="test")
    with database.transaction() as s:
        s.get_one(Tenant, "t-drift-a").drift_count = 3
        s.get_one(Tenant, "t-drift-b").drift_count = 2
        failing = s.get_one(Tenant, "t-calm")
        failing.phase, failing.last_error = "failed", "keystone said no"
    samples = scrape(client)
    assert value(samples, "controlplane_tenancy_drifted_resources") == 5
    assert value(samples, "controlplane_tenancy_drifted_tenants") == 2
    assert value(samples, "controlplane_tenancy_failing_tenants") == 1
    with database.transaction() as s:
        s.get_one(Tenant, "t-drift-a").drift_count = 0  # the next pass found none
    assert value(scrape(client), "controlplane_tenancy_drifted_resources") == 2


def test_a_worker_pass_counts_and_times_each_reconcile(client: FlaskClient, database: Database,
                                                       settings: Settings,
                                                       write_spec: Callable[..., TenantSpec]) -> None:
    register_specs(database, [write_spec("t-leased")], initiator="test")
    with database.transaction() as s:
        assert acquire_lease(s, "t-leased", owner="another-worker")  # so this pass skips it
    before = scrape(client)
    outcomes = run_pass(db=database, backends=None, settings=settings, concurrency=1)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["skipped"]  # a held lease: no backend is called
    after = scrape(client)
    for name in ("controlplane_tenancy_reconciles_total",
                 "controlplane_tenancy_reconcile_duration_seconds_count"):
        assert value(after, name, outcome="skipped") - value(before, name, outcome="skipped") == 1


def test_a_worker_serves_its_own_metrics_on_loopback(database: Database, settings: Settings,
                                                     write_spec: Callable[..., TenantSpec]) -> None:
    """The worker is its own process: `metrics.start_exporter` is what it scrapes through."""
    register_specs(database, [write_spec("t-exported")], initiator="test")
    with database.transaction() as s:
        assert acquire_lease(s, "t-exported", owner="another-worker")
    server, thread = metrics.start_exporter(0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        run_pass(db=database, backends=None, settings=settings, concurrency=1)  # type: ignore[arg-type]
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert 'controlplane_tenancy_reconciles_total{outcome="skipped"}' in body


def test_sequencer_lag_is_read_from_the_log(client: FlaskClient, database: Database) -> None:
    """Measured at scrape time, so a sequencer that stopped still shows its lag."""
    with database.transaction() as s:
        for n in range(3):
            event = record_event(s, action="tenant:apply", initiator="system:test", target=f"tenant:t{n}")
            event.occurred_at = datetime.now(UTC) - timedelta(minutes=10)
    samples = scrape(client)
    assert value(samples, "controlplane_audit_sequencer_lag_events") == 3
    assert 600 <= value(samples, "controlplane_audit_sequencer_lag_seconds") < 700
    assert integrate_pending(database).added == 3  # the sequencer catches up (no Vault needed)
    samples = scrape(client)
    assert value(samples, "controlplane_audit_sequencer_lag_events") == 0
    assert value(samples, "controlplane_audit_sequencer_lag_seconds") == 0


def test_every_defined_metric_is_exported(client: FlaskClient) -> None:
    """Documents and audit metrics are defined here for their callers: they show even before use."""
    body = client.get("/metrics", environ_base=LOOPBACK).get_data(as_text=True)
    for name in ("controlplane_documents_signed_total", "controlplane_documents_sign_failures_total",
                 "controlplane_documents_verifications_total",
                 "controlplane_documents_verify_duration_seconds",
                 "controlplane_documents_sign_duration_seconds", "controlplane_audit_sequencer_lag_events",
                 "controlplane_audit_sequencer_lag_seconds", "controlplane_audit_checkpoints_total"):
        assert f"# HELP {name} " in body, name
    metrics.DOCUMENT_VERIFICATIONS_TOTAL.labels("forged").inc()
    samples = scrape(client)
    assert value(samples, "controlplane_documents_verifications_total", verdict="forged") >= 1


def test_refused_to_remote_scrapers_without_the_token(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_base=REMOTE)
    assert response.status_code == 403
    assert "controlplane_" not in response.get_data(as_text=True)


@pytest.fixture
def token_app(database: Database, settings: Settings) -> Iterator[Flask]:
    tokened = load_settings({"instance_path": settings.instance_path, "database_url": settings.database_url,
                             "metrics_token": "scrape-" + secrets.token_hex(16)}, environ={})
    app = create_app(tokened)
    app.config.update(TESTING=True)
    yield app
    services_of(app).database.dispose()


def test_bearer_token_admits_a_remote_scraper(token_app: Flask) -> None:
    client = token_app.test_client()
    token = services_of(token_app).settings.metrics_token
    ok = client.get("/metrics", environ_base=REMOTE, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and "controlplane_http_requests_total" in ok.get_data(as_text=True)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        assert client.get("/metrics", environ_base=REMOTE, headers=headers).status_code == 403
    # once a token is configured, loopback needs it too (a proxy on the same host is not a scraper)
    assert client.get("/metrics", environ_base=LOOPBACK).status_code == 403
