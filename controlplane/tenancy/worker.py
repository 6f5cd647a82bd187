"""The reconciler worker: every pass converges due tenants and detects and repairs drift.
Any number of workers may run; the per-tenant lease keeps them off each other's tenants."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from sqlalchemy import or_, select

from controlplane.backends import Backends
from controlplane.metrics import observe_reconciles
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.phases import ACTIVE_PHASES
from controlplane.tenancy.reconciler import Outcome
from controlplane.tenancy.service import reconcile_many

log = logging.getLogger(__name__)


def due_tenants(db: Database) -> list[str]:
    """Tenants in an active phase whose backoff (if any) has passed."""
    now = utcnow()
    with db.transaction() as s:
        return list(
            s.scalars(
                select(Tenant.slug)
                .where(Tenant.phase.in_([p.value for p in ACTIVE_PHASES]))
                .where(or_(Tenant.next_attempt_at.is_(None), Tenant.next_attempt_at <= now))
                .order_by(Tenant.slug)
            )
        )


def run_pass(
    *,
    db: Database,
    backends: Backends,
    settings: Settings,
    concurrency: int,
    progress: Callable[[str, str], None] | None = None,
    after_pass: Callable[[Database], object] | None = None,
) -> list[Outcome]:
    """Converge every due tenant, then let `after_pass` (wired by the caller, e.g. the requests
    capability's outcome sync) see the result: tenancy itself knows nothing above it."""
    slugs = due_tenants(db)
    outcomes = reconcile_many(
        slugs, db=db, backends=backends, settings=settings, concurrency=concurrency, progress=progress
    )
    observe_reconciles(outcomes)
    if after_pass is not None:
        after_pass(db)  # e.g. requests learn whether their generation converged
    for o in outcomes:
        if o.status in ("failed", "refused"):
            log.warning("tenant %s %s: %s", o.slug, o.status, o.error)
        elif o.drift:
            log.warning("tenant %s: repaired %d drifted resource(s)", o.slug, o.drift)
    return outcomes


def run_worker(
    *,
    db: Database,
    backends: Backends,
    settings: Settings,
    once: bool,
    interval: int,
    concurrency: int,
    progress: Callable[[str, str], None] | None = None,
    after_pass: Callable[[Database], object] | None = None,
) -> None:
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current pass, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop.is_set():
        outcomes = run_pass(
            db=db,
            backends=backends,
            settings=settings,
            concurrency=concurrency,
            progress=progress,
            after_pass=after_pass,
        )
        log.info("pass done: %d tenant(s)", len(outcomes))
        if once:
            return
        stop.wait(interval)
