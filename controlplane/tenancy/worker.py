"""The reconciler worker: every pass converges due tenants and detects and repairs drift.
Any number of workers may run; the per-tenant lease keeps them off each other's tenants."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from sqlalchemy import or_, select

from controlplane.backends import Backends, stopping
from controlplane.metrics import observe_reconciles
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.phases import ACTIVE_PHASES
from controlplane.tenancy.reconciler import Outcome
from controlplane.tenancy.service import reconcile_many

log = logging.getLogger(__name__)

# After SIGTERM, in-flight backend calls get this long to end (retries and backoff sleeps end at
# once, automation runs are cancelled); a call still blocked on a silent server is then abandoned:
# the process leaves, its leases are freed by the next worker on this host, the next pass redoes it.
STOP_GRACE = 3.0
# /readyz of the worker (metrics.start_exporter): its loop runs, and no pass has been stuck this long.
STUCK_PASS_SECONDS = 3600.0


@dataclass
class _Loop:
    started_at: float | None = None  # monotonic start of the pass in progress, or of the last one
    ended_at: float | None = None


_loop = _Loop()


def readiness(interval: int) -> tuple[bool, str]:
    """Whether this worker's loop is alive: a pass started, none stuck, none overdue."""
    now = time.monotonic()
    if stopping.stopping():
        return False, "stopping"
    if _loop.started_at is None:
        return False, "starting: no pass begun yet"
    if _loop.ended_at is None or _loop.ended_at < _loop.started_at:
        running = now - _loop.started_at
        return running < STUCK_PASS_SECONDS, f"a pass has been running for {running:.0f} s"
    idle = now - _loop.ended_at
    return idle < 3 * interval + 60, f"last pass ended {idle:.0f} s ago"


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
    if after_pass is not None and not stopping.stopping():
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
        if stop.is_set():
            log.warning("signal %d again: leaving now", signum)
            _leave()
        log.info("signal %d: ending the current pass (retries and sleeps end now), then stopping", signum)
        stop.set()
        stopping.request_stop()
        threading.Thread(target=_leave_after_grace, name="stop-grace", daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop.is_set():
        _loop.started_at = time.monotonic()
        outcomes = run_pass(
            db=db,
            backends=backends,
            settings=settings,
            concurrency=concurrency,
            progress=progress,
            after_pass=after_pass,
        )
        _loop.ended_at = time.monotonic()
        log.info("pass done: %d tenant(s)", len(outcomes))
        if once:
            return
        stop.wait(interval)


def _leave_after_grace() -> None:
    time.sleep(STOP_GRACE)
    log.warning("in-flight backend calls did not end within %.0f s of the signal: leaving them", STOP_GRACE)
    _leave()


def _leave() -> None:
    logging.shutdown()
    os._exit(0)  # threads blocked on a silent server cannot be joined; the database rolls back
