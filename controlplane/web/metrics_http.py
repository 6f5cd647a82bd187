"""Counts and times every HTTP request by endpoint name (bounded), never by raw path."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from controlplane.metrics import HTTP_LATENCY, HTTP_REQUESTS


def _start() -> None:
    g.request_started = time.perf_counter()


def _record(response: Response) -> Response:
    endpoint = request.endpoint or "unmatched"  # unknown paths share one label
    started = g.pop("request_started", None)
    if started is not None:
        HTTP_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    HTTP_REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_record)
