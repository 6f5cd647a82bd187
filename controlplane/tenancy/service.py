"""Tenancy use-cases shared by the CLI, the worker and (later) the console: register, apply, import."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from controlplane.audit import record_event
from controlplane.backends import Backends, stopping
from controlplane.errors import InvalidInput, NotFound
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.reconciler import Outcome, reconcile_tenant
from controlplane.tenancy.spec import TenantSpec


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def register_specs(
    db: Database, specs: Sequence[TenantSpec], *, initiator: str, force: bool = False
) -> list[registry.Registration]:
    """Accept all specs in one transaction: either every one is stored or none is."""
    with db.transaction() as s:
        return [registry.register_spec(s, spec, initiator=initiator, force=force) for spec in specs]


def reconcile_many(
    slugs: Sequence[str],
    *,
    db: Database,
    backends: Backends,
    settings: Settings,
    concurrency: int = 4,
    initiator: str = "system:reconciler",
    progress: Callable[[str, str], None] | None = None,
    run_baseline_playbook: bool = True,
) -> list[Outcome]:
    """Reconcile tenants in parallel; one tenant's failure never stops the others.
    At most `concurrency` tenants (so at most that many API calls) are in flight at once."""
    owner = worker_identity()

    def one(slug: str) -> Outcome:
        if stopping.stopping():  # SIGTERM: tenants not started yet wait for the next pass
            return Outcome(slug, "skipped", error="the worker is stopping")
        try:
            return reconcile_tenant(
                slug,
                db=db,
                backends=backends,
                settings=settings,
                owner=owner,
                initiator=initiator,
                progress=progress,
                run_baseline_playbook=run_baseline_playbook,
            )
        except InvalidInput as exc:
            return Outcome(slug, "refused", error=exc.message)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="reconcile") as pool:
        return list(pool.map(one, slugs))


def mark_imported(db: Database, backends: Backends, spec: TenantSpec, *, initiator: str) -> None:
    """Adopt an existing domain (and its projects) named like the spec: the next apply tags them."""
    if backends.cloud.find_domain(spec.domain_name) is None:
        raise NotFound(
            f"there is no Keystone domain named {spec.domain_name!r} to import",
            hint="apply the spec instead to create it",
        )
    from controlplane.audit import record_event

    with db.transaction() as s:
        registry.register_spec(s, spec, initiator=initiator)
        tenant = registry.get_tenant(s, spec.slug)
        tenant.imported = True
        record_event(
            s,
            action="tenant:import",
            initiator=initiator,
            target=f"tenant:{spec.slug}",
            org=spec.slug,
            detail={"domain": spec.domain_name},
        )


def queue_reconcile(db: Database, slug: str, *, initiator: str) -> None:
    """Make a tenant due now, so the worker's next pass takes it first (the console's and the
    API's "reconcile now"); audited. The worker reconciles; nothing here calls a backend."""
    with db.transaction() as s:
        tenant = registry.get_tenant(s, slug)
        tenant.next_attempt_at = None
        registry.add_event(s, slug, "phase", f"reconcile requested by {initiator}")
        record_event(s, action="tenant:reconcile", initiator=initiator, target=f"tenant:{slug}", org=slug)
