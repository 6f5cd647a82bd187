"""Geometry of the auditor console's stacked bar charts, drawn as inline SVG (no script, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controlplane.audit.queries import Timeline

WIDTH, HEIGHT = 960, 220
LEFT, BOTTOM, TOP = 48, 28, 10
MAX_TICKS = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    bucket: str
    count: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_bottom: int
    left: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (x, label) along the time axis
    ymax: int
    series: tuple[str, ...]
    totals: dict[str, int]  # per series over the whole window
    unit: str


def bucket_labels(t: Timeline) -> list[str]:
    """Every bucket of the window, empty ones too, labelled as the SQL labels them."""
    step = timedelta(hours=1) if t.unit == "hour" else timedelta(days=1)
    at = t.start.replace(minute=0, second=0, microsecond=0)
    if t.unit == "day":
        at = at.replace(hour=0)
    labels = []
    while at < t.end:
        labels.append(at.strftime("%Y-%m-%d %H:00"))
        at += step
    return labels


def _tick_label(label: str, unit: str) -> str:
    when = datetime.strptime(label, "%Y-%m-%d %H:00")
    return when.strftime("%m-%d %H:00" if unit == "hour" else "%Y-%m-%d")


def build_chart(t: Timeline) -> Chart:
    labels = bucket_labels(t)
    stacks = [sum(t.counts.get(b, {}).values()) for b in labels]
    ymax = max(stacks, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.8, 1.0)
    bars: list[Bar] = []
    totals = dict.fromkeys(t.series, 0)
    for i, bucket in enumerate(labels):
        base = float(HEIGHT - BOTTOM)
        for series in t.series:
            n = t.counts.get(bucket, {}).get(series, 0)
            totals[series] += n
            if not n:
                continue
            h = plot_h * n / ymax
            base -= h
            bars.append(Bar(round(LEFT + i * slot, 2), round(base, 2), round(bar_w, 2), round(h, 2),
                            series, bucket, n))
    every = max(1, -(-len(labels) // MAX_TICKS))
    ticks = [(round(LEFT + i * slot, 2), _tick_label(b, t.unit)) for i, b in enumerate(labels)
             if i % every == 0]
    return Chart(WIDTH, HEIGHT, HEIGHT - BOTTOM, LEFT, bars, ticks, max(stacks, default=0),
                 t.series, totals, t.unit)
