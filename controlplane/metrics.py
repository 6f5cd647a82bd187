"""Prometheus metrics, named controlplane_<subsystem>_<thing>_<unit>, with bounded labels only."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "controlplane_http_requests_total", "HTTP requests by endpoint, method and status",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "controlplane_http_request_duration_seconds", "HTTP request latency by endpoint",
    ["endpoint"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
)
BACKEND_UP = Gauge(
    "controlplane_backend_up", "1 if the last health check of a dependency passed",
    ["check"], multiprocess_mode="liveall",
)


def render_latest() -> tuple[bytes, str]:
    """The exposition text; aggregates across gunicorn workers when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
