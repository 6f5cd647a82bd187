"""HealthCheck: one line of `controlplane doctor`, /readyz and the status page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthCheck:
    """The outcome of checking one dependency: reachable, authenticated, which version."""

    name: str  # e.g. "openstack:keystone", "vault", "ansible", "database"
    ok: bool
    detail: str  # what was seen, e.g. "v3.14 at http://127.0.0.1:5000/v3, token issued"
    version: str = ""
    hint: str = ""  # how to fix it when not ok, e.g. "run scripts/devcloud up"
    elapsed_ms: float = 0.0
