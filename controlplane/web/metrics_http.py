"""HTTP metrics (every request by endpoint name, method and status class, never by raw path) and the
gauges read from the database at scrape time: drift and failing tenants, and the audit sequencer's
lag, measured here rather than by the sequencer, so a stopped sequencer still shows (and alerts)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from flask import Flask, Response, g, request
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from controlplane.audit.models import AuditEvent
from controlplane.metrics import (
    AUDIT_SEQUENCER_LAG_EVENTS,
    AUDIT_SEQUENCER_LAG_SECONDS,
    DRIFTED_RESOURCES,
    DRIFTED_TENANTS,
    FAILING_TENANTS,
    HTTP_LATENCY,
    HTTP_METHODS,
    HTTP_REQUESTS,
    on_scrape,
    status_class,
)
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.phases import ACTIVE_PHASES
from controlplane.web.services import services

log = logging.getLogger(__name__)


def _start() -> None:
    g.request_started = time.perf_counter()


def _record(response: Response) -> Response:
    endpoint = request.endpoint or "unmatched"  # unknown paths share one label
    # A client may send any method name: only the standard ones get their own label value.
    method = request.method if request.method in HTTP_METHODS else "other"
    started = g.pop("request_started", None)
    if started is not None:
        HTTP_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    HTTP_REQUESTS.labels(endpoint, method, status_class(response.status_code)).inc()
    return response


def refresh_tenant_gauges() -> None:
    """Drift and failures as the tenants table has them: one aggregate query per scrape."""
    active = [p.value for p in ACTIVE_PHASES]
    try:
        with services().database.transaction() as s:
            drifted, resources = s.execute(
                select(func.count(), func.coalesce(func.sum(Tenant.drift_count), 0))
                .where(Tenant.drift_count > 0)
            ).one()
            failing = s.scalar(select(func.count()).select_from(Tenant)
                               .where(Tenant.phase.in_(active), Tenant.last_error != "")) or 0
    except SQLAlchemyError as exc:  # a scrape still answers; the stale values stay
        log.warning("tenant gauges not refreshed: %s", type(exc).__name__)
        return
    DRIFTED_TENANTS.set(drifted)
    DRIFTED_RESOURCES.set(resources)
    FAILING_TENANTS.set(failing)


def refresh_audit_gauges() -> None:
    """Events written but not yet given a Merkle leaf (an indexed NULL lookup), and the oldest one's age."""
    try:
        with services().database.transaction() as s:
            waiting, oldest = s.execute(
                select(func.count(), func.min(AuditEvent.occurred_at)).where(AuditEvent.leaf_index.is_(None))
            ).one()
    except SQLAlchemyError as exc:
        log.warning("audit gauges not refreshed: %s", type(exc).__name__)
        return
    AUDIT_SEQUENCER_LAG_EVENTS.set(waiting)
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    AUDIT_SEQUENCER_LAG_SECONDS.set(max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest else 0)


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_record)
    on_scrape(refresh_tenant_gauges)
    on_scrape(refresh_audit_gauges)
