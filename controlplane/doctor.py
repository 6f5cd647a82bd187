"""Health of everything the control plane depends on: database, OpenStack services, Vault, Ansible,
and the audit log's independent witness."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from controlplane.backends import Backends
from controlplane.backends.health import HealthCheck
from controlplane.errors import ControlPlaneError
from controlplane.migrations import current_revision, head_revision
from controlplane.storage import Database


def check_database(database: Database) -> HealthCheck:
    started = time.perf_counter()
    try:
        database.ping()
        current, head = current_revision(database), head_revision(database)
    except ControlPlaneError as exc:
        return HealthCheck("database", False, exc.message, hint=exc.hint or "",
                           elapsed_ms=_ms(started))
    except Exception as exc:
        return HealthCheck("database", False, f"{database.display_url}: {exc}",
                           elapsed_ms=_ms(started))
    dialect = database.engine.dialect
    version = ".".join(str(p) for p in (dialect.server_version_info or ()))
    if current != head:
        return HealthCheck(
            "database", False, f"schema at revision {current or 'none'}, code expects {head}",
            version=f"{dialect.name} {version}".strip(), hint="run: controlplane db upgrade",
            elapsed_ms=_ms(started),
        )
    return HealthCheck("database", True, f"{database.display_url}, schema at {head}",
                       version=f"{dialect.name} {version}".strip(), elapsed_ms=_ms(started))


def check_witness(database: Database, witness_url: str) -> HealthCheck:
    """Is there a witness, does it answer, did it co-sign the latest checkpoint? No witness is
    reported as such (not a failure, so a laptop without one still serves), never as co-signed."""
    from controlplane.audit.witness_health import witness_health

    if not witness_url:
        return HealthCheck("witness", True, "NO WITNESS configured: audit checkpoints are not co-signed",
                           hint="set witness_url and witness_vkey (scripts/run starts a local witness)")
    started = time.perf_counter()
    ok, detail = witness_health(database, witness_url)
    return HealthCheck("witness", ok, detail, elapsed_ms=_ms(started),
                       hint="" if ok else "the worker log names the witness's reason")


def _safe(name: str, probe: Callable[[], list[HealthCheck]]) -> list[HealthCheck]:
    try:
        return probe()
    except Exception as exc:
        return [HealthCheck(name, False, f"health check crashed: {exc}")]


def check_everything(
    database: Database, backends: Backends | None,
    backends_error: ControlPlaneError | None = None, *, witness_url: str | None = None,
) -> list[HealthCheck]:
    """All checks, the backends' in parallel (each has short timeouts), in a stable order; the
    witness too when `witness_url` is given ("" = none configured)."""
    results = [check_database(database)]
    if witness_url is not None:
        results.append(_safe("witness", lambda: [check_witness(database, witness_url)])[0])
    if backends is None:
        message = backends_error.message if backends_error else "backends not configured"
        hint = backends_error.hint if backends_error and backends_error.hint else ""
        return [*results, HealthCheck("backends", False, message, hint=hint)]
    probes = {"openstack": backends.cloud.check, "vault": backends.keys.check,
              "ansible": backends.automation.check}
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = [pool.submit(_safe, name, probe) for name, probe in probes.items()]
        for future in futures:
            results.extend(future.result())
    return results


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
