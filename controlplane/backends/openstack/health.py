"""check(): is each OpenStack service reachable, does it accept our token, which version is it.

Runs on its own connection with short timeouts and no connect retries; the five service probes
run in parallel once Keystone has issued a token, so a full check costs about one round trip
per service.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from controlplane.backends.health import HealthCheck
from controlplane.backends.openstack.connection import ConnectionHolder
from controlplane.backends.openstack.errors import (
    TRANSLATED_TYPES,
    raise_for_response,
    translate_error,
)
from controlplane.errors import BackendError

HINT_DOWN = "start it: scripts/devcloud up (see scripts/devcloud status)"


@dataclass(frozen=True)
class _Probe:
    name: str  # our service name, as in CLOUD_SERVICES
    proxy: str  # openstacksdk Connection attribute
    path: str  # a cheap GET that needs a valid token


_PROBES = (
    _Probe("neutron", "network", "/networks?limit=1&fields=id"),
    _Probe("nova", "compute", "/flavors?limit=1"),
    _Probe("placement", "placement", "/resource_providers?name=controlplane-health-check"),
    _Probe("glance", "image", "/images?limit=1"),
    _Probe("cinder", "block_storage", "/types"),
)
#: The services in the order check() reports them.
SERVICES = ("keystone", *(p.name for p in _PROBES))


def version_of(endpoint: Any) -> str:
    """'2.100' for a microversioned API (its maximum), else 'v3.14' / 'v2.0'."""
    if endpoint is None:
        return ""
    if endpoint.max_microversion:
        return ".".join(str(part) for part in endpoint.max_microversion)
    if endpoint.api_version:
        return "v" + ".".join(str(part) for part in endpoint.api_version)
    return ""


def _failed(name: str, exc: BaseException, started: float, *, what: str) -> HealthCheck:
    if isinstance(exc, BackendError):
        error: BaseException = exc
    elif isinstance(exc, TRANSLATED_TYPES):
        error = translate_error(exc, action=what)
    else:
        error = exc
    hint = getattr(error, "hint", None) or HINT_DOWN
    return HealthCheck(
        name=f"openstack:{name}",
        ok=False,
        detail=str(error),
        hint=hint,
        elapsed_ms=(time.monotonic() - started) * 1000,
    )


class HealthMixin(ConnectionHolder):
    def check(self) -> list[HealthCheck]:
        started = time.monotonic()
        try:
            conn = self._health_conn()
            keystone = self._check_keystone(conn, started)
        except Exception as exc:  # check() never raises: the failure is the result
            keystone = _failed("keystone", exc, started, what="authenticate with keystone")
            conn = None
        if conn is None or not keystone.ok:
            skipped = [
                HealthCheck(
                    name=f"openstack:{p.name}",
                    ok=False,
                    detail="not checked: no token from keystone",
                    hint=keystone.hint or HINT_DOWN,
                )
                for p in _PROBES
            ]
            return [keystone, *skipped]
        with ThreadPoolExecutor(max_workers=len(_PROBES)) as pool:
            others = list(pool.map(lambda probe: self._check_service(conn, probe), _PROBES))
        return [keystone, *others]

    def _check_keystone(self, conn: Any, started: float) -> HealthCheck:
        identity = conn.identity
        endpoint = identity.get_endpoint_data()  # authenticates once: token + catalog
        # Token and discovery are cached after the first check: ask Keystone every time.
        raise_for_response(identity.get("/auth/projects"), action="check keystone")
        scope = f"project {conn.current_project_id}" if conn.current_project_id else "unscoped"
        return HealthCheck(
            name="openstack:keystone",
            ok=True,
            detail=f"token issued ({scope}); identity at {endpoint.url}",
            version=version_of(endpoint),
            elapsed_ms=(time.monotonic() - started) * 1000,
        )

    def _check_service(self, conn: Any, probe: _Probe) -> HealthCheck:
        started = time.monotonic()
        what = f"check {probe.name}"
        try:
            adapter = getattr(conn, probe.proxy)
            endpoint = adapter.get_endpoint_data()
            if endpoint is None:
                raise RuntimeError(f"{probe.name} is not in the service catalog")
            response = adapter.get(probe.path)
            raise_for_response(response, action=what)
        except Exception as exc:  # never raise from check()
            return _failed(probe.name, exc, started, what=what)
        return HealthCheck(
            name=f"openstack:{probe.name}",
            ok=True,
            detail=f"token accepted at {endpoint.url}",
            version=version_of(endpoint),
            elapsed_ms=(time.monotonic() - started) * 1000,
        )
