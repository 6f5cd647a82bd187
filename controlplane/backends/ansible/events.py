"""Event translation: ansible-runner's event dicts become RunEvents, host stats and a run summary."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from controlplane.backends.ansible.processes import Stopper
from controlplane.backends.automation import HostStats, RunEvent

# The package's name, as before it was split into modules, so log lines and filters keep theirs.
logger = logging.getLogger(__package__)

MESSAGE_CHARS = 300


class EventCollector:
    """The runner's event handler: turns events into RunEvents, live, and keeps the recap."""

    def __init__(self, scrub: Callable[[str], str], on_event: Callable[[RunEvent], None] | None):
        self.scrub = scrub
        self.on_event = on_event
        self.events: list[RunEvent] = []
        self.stats: dict[str, HostStats] = {}
        self.output: list[str] = []

    def __call__(self, data: dict[str, Any]) -> bool:
        kind = str(data.get("event", ""))
        if kind == "verbose":  # output outside any task, e.g. a syntax error
            self.output.append(str(data.get("stdout", "")))
            return True
        details = data.get("event_data") or {}
        if kind == "playbook_on_stats":
            self.stats = _host_stats(details)
        event = RunEvent(
            counter=int(data.get("counter", 0)),
            event=kind,
            task=str(details.get("task") or ""),
            host=str(details.get("host") or ""),
            changed=bool((details.get("res") or {}).get("changed", False)),
            failed=kind in ("runner_on_failed", "runner_on_unreachable")
            and not details.get("ignore_errors"),
            start=_timestamp(details.get("start")),
            end=_timestamp(details.get("end")),
            duration=float(details["duration"]) if details.get("duration") is not None else None,
            message=self.scrub(_short_message(details.get("res"))),
        )
        self.events.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("on_event callback failed on event %d", event.counter)
        return True  # the runner writes the event to the artifacts only when we say so

    def output_tail(self, lines: int = 10) -> str:
        text = "\n".join(self.output).strip().splitlines()
        return "\n".join(line for line in text[-lines:] if line.strip())


def summary(status: str, collector: EventCollector, stopper: Stopper, timeout: int) -> str:
    """RunResult.summary: why a run did not succeed, in a few lines."""
    if status == "timeout":
        return f"timed out after {timeout}s; {stopper.killed} process(es) killed"
    if status == "canceled":
        return f"canceled; {stopper.killed} process(es) killed"
    if status == "successful":
        return ""
    failed = [e for e in collector.events if e.failed]
    if failed:
        return "\n".join(f"{e.task} on {e.host}: {e.message}" for e in failed)
    return collector.scrub(collector.output_tail())


def _host_stats(details: Mapping[str, Any]) -> dict[str, HostStats]:
    fields = {
        "ok": "ok",
        "changed": "changed",
        "failures": "failed",
        "skipped": "skipped",
        "dark": "unreachable",
    }
    hosts: dict[str, dict[str, int]] = {}
    for source, target in fields.items():
        for host, count in (details.get(source) or {}).items():
            hosts.setdefault(str(host), {})[target] = int(count)
    return {host: HostStats(**counts) for host, counts in sorted(hosts.items())}


def _short_message(res: Any) -> str:
    if not isinstance(res, Mapping):
        return ""
    for key in ("msg", "stderr", "stdout"):
        value = res.get(key)
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            text = " ".join(text.split())
            return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"
    return ""


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
