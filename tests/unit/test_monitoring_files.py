"""The Grafana dashboard and the Prometheus alert rules in playbooks/monitoring/ name only metrics
(and labels) that controlplane/metrics.py defines, and the rules have the fields Prometheus and
the on-call people need."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from controlplane import metrics
from controlplane.settings import REPO_ROOT

MONITORING = REPO_ROOT / "playbooks" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "alerts.yml"
NAME = re.compile(r"\bcontrolplane_[a-z0-9_]+")
SELECTOR = re.compile(r"\b(controlplane_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
DURATION = re.compile(r"^\d+[smhdwy]$")
SEVERITIES = {"info", "warning", "critical"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}


def exported_series() -> dict[str, set[str]]:
    """Every series name the app exports, with the label names each may carry."""
    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if not isinstance(obj, Counter | Gauge | Histogram):
            continue
        labels = set(obj._labelnames) | TARGET_LABELS
        for family in obj.describe():
            if isinstance(obj, Counter):
                names = {family.name + "_total"}
            elif isinstance(obj, Histogram):
                names = {family.name + s for s in ("_bucket", "_sum", "_count")}
                out[family.name + "_bucket"] = labels | {"le"}
                names.discard(family.name + "_bucket")
            else:
                names = {family.name}
            for name in names:
                out[name] = labels
    return out


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard["panels"])
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            yield f"variable {var['name']}", query["query"]


def alert_rules(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for group in doc["groups"]:
        yield from group["rules"]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def alerts() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return loaded


def _check_expr(where: str, expr: str, exported: dict[str, set[str]]) -> None:
    names = NAME.findall(expr)
    assert names, f"{where}: no control-plane metric in {expr!r}"
    for name in names:
        assert name in exported, f"{where}: {name} is not exported by controlplane/metrics.py"
    for name, matchers in SELECTOR.findall(expr):
        for label in MATCHER.findall(matchers):
            assert label in exported[name], f"{where}: {name} has no label {label!r}"


def test_every_metric_the_dashboard_plots_is_exported(dashboard: dict[str, Any]) -> None:
    exported = exported_series()
    exprs = list(dashboard_exprs(dashboard))
    assert len(exprs) >= 15
    for title, expr in exprs:
        _check_expr(f"panel {title!r}", expr, exported)


def test_the_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for subject in ("5xx", "latency", "reconcile", "drift", "signed", "verification", "sequencer lag",
                    "failed sign-in"):
        assert subject in titles, f"the dashboard has no {subject} panel"


def test_every_metric_the_alerts_use_is_exported(alerts: dict[str, Any]) -> None:
    exported = exported_series()
    for rule in alert_rules(alerts):
        _check_expr(f"alert {rule['alert']}", str(rule["expr"]), exported)


def test_alert_rules_have_what_prometheus_and_people_need(alerts: dict[str, Any]) -> None:
    rules = list(alert_rules(alerts))
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
        assert str(rule["expr"]).strip()
        assert DURATION.match(str(rule["for"])), f"{rule['alert']}: for {rule['for']!r}"
        assert rule["labels"]["severity"] in SEVERITIES
        assert rule["annotations"]["summary"].strip()
        assert str(rule["expr"]).count("(") == str(rule["expr"]).count(")"), rule["alert"]
    expressions = {r["alert"]: str(r["expr"]) for r in rules}
    for subject in ("drifted_resources", "sequencer_lag", "sign_failures", "login_failures", "5xx"):
        assert any(subject in e for e in expressions.values()), f"no alert on {subject}"
    drift = next(r for r in rules if "drifted_resources" in str(r["expr"]))
    assert drift["for"] == "30m"


def test_the_files_live_with_the_playbooks() -> None:
    assert Path(DASHBOARD).is_file() and Path(ALERTS).is_file()
