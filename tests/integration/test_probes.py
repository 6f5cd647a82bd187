"""Probes: /healthz always answers, /metrics only to loopback or with the token."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_healthz_answers_without_touching_dependencies(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_metrics_served_to_loopback_with_request_counts(client: FlaskClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    series = 'controlplane_http_requests_total{endpoint="probes.healthz",method="GET",status_class="2xx"}'
    assert series in body


def test_metrics_refused_to_remote_scrapers_without_token(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 403
    assert response.get_json()["error"] == "Forbidden"


def test_unknown_api_path_gets_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.is_json
