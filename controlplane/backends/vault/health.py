"""VaultKeys.check: is the server reachable, initialised and unsealed, and is our token usable."""

from __future__ import annotations

import time
from typing import Any

import requests

from controlplane.backends.health import HealthCheck
from controlplane.backends.keys import RETIRED_KEYS_POLICY
from controlplane.backends.vault.client import VaultClient, logger
from controlplane.backends.vault.errors import BACKEND, HINT_START, connection_problem
from controlplane.errors import BackendError

CHECK_TIMEOUT = 3.0  # seconds; check() must answer quickly even when Vault does not


class HealthMixin(VaultClient):
    def check(self) -> list[HealthCheck]:
        try:
            server = self._check_server()
            if not server.ok:
                return [server]
            return [server, self._check_auth()]
        except Exception as exc:  # a health check reports, it never raises
            logger.exception("vault health check failed")
            return [HealthCheck(name=BACKEND, ok=False, detail=f"check failed: {exc}", hint=HINT_START)]

    def _check_server(self) -> HealthCheck:
        started = time.monotonic()
        try:
            response = self._session_client().adapter.get(
                "/v1/sys/health",
                params={"standbyok": "true", "perfstandbyok": "true"},
                raise_exception=False,
                timeout=min(self.timeout, CHECK_TIMEOUT),
            )
        except requests.RequestException as exc:
            return HealthCheck(
                name=BACKEND,
                ok=False,
                detail=f"cannot reach {self.addr}: {connection_problem(exc)}",
                hint=HINT_START,
                elapsed_ms=_ms_since(started),
            )
        body: Any = response if isinstance(response, dict) else _json_or_empty(response)
        version = str(body.get("version", ""))
        if not body.get("initialized", False):
            state, ok, hint = "not initialized", False, "initialise and unseal it (bao operator init)"
        elif body.get("sealed", True):
            state, ok, hint = "sealed", False, "unseal it (bao operator unseal)"
        else:
            role = "standby" if body.get("standby") else "active"
            state, ok, hint = f"initialized, unsealed, {role}", True, ""
        return HealthCheck(
            name=BACKEND,
            ok=ok,
            detail=f"Vault API {version or '?'} at {self.addr}: {state}",
            version=version,
            hint=hint,
            elapsed_ms=_ms_since(started),
        )

    def _check_auth(self) -> HealthCheck:
        started = time.monotonic()
        try:
            data = self._call(
                "look up its own token",
                lambda c: c.adapter.get(
                    "/v1/auth/token/lookup-self", timeout=min(self.timeout, CHECK_TIMEOUT)
                ),
            )["data"]
        except BackendError as exc:
            return HealthCheck(
                name=f"{BACKEND}:auth",
                ok=False,
                detail=exc.message,
                hint="set CONTROLPLANE_VAULT_TOKEN, or CONTROLPLANE_VAULT_ROLE_ID and _SECRET_ID",
                elapsed_ms=_ms_since(started),
            )
        policies = sorted(str(p) for p in data.get("policies") or [])
        how = "AppRole login" if self._role_id else "token"
        if "root" in policies:
            return HealthCheck(
                name=f"{BACKEND}:auth",
                ok=True,
                detail=f"{how}: root token (ACLs bypassed; use a least-privilege token in production)",
                elapsed_ms=_ms_since(started),
            )
        ttl = int(data.get("ttl") or 0)
        detail = f"{how}: policies {', '.join(policies)}; " + (f"ttl {ttl}s" if ttl else "no expiry")
        if RETIRED_KEYS_POLICY not in policies:
            return HealthCheck(
                name=f"{BACKEND}:auth",
                ok=False,
                detail=detail,
                hint=f"the token lacks policy {RETIRED_KEYS_POLICY}, so verify-only keys could still "
                "sign through it; issue one with it",
                elapsed_ms=_ms_since(started),
            )
        return HealthCheck(
            name=f"{BACKEND}:auth", ok=True, detail=detail, elapsed_ms=_ms_since(started)
        )


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
