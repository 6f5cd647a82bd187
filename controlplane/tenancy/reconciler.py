"""Reconcile one tenant: lease, observe, plan, apply, baseline playbook, record. Never a DB
transaction open across a backend call: record intent, call, record outcome."""

from __future__ import annotations

import hashlib
import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from controlplane.audit import record_event
from controlplane.backends import Backends
from controlplane.backends.keys import signing_key_name, tenant_policy_hcl
from controlplane.errors import ControlPlaneError, InvalidInput, TemporaryError
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.addressing import allocate_subnet, preview_allocations
from controlplane.tenancy.apply import ApplyContext, execute
from controlplane.tenancy.baseline import run_baseline
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.leases import acquire_lease, release_lease, renew_lease
from controlplane.tenancy.observe import observe_tenant
from controlplane.tenancy.phases import ACTIVE_PHASES, Phase, check_transition
from controlplane.tenancy.plan import Plan, plan_tenant
from controlplane.tenancy.spec import TenantSpec

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]  # (tenant slug, message)

# Fault injection for the crash-at-every-step tests: the worker SIGKILLs itself right after the
# N-th action's backend call returned, before recording it. Not a setting; never set in production.
FAULT_KILL_ENV = "CONTROLPLANE_FAULT_KILL_AFTER_ACTION"


@dataclass
class Outcome:
    slug: str
    status: str  # converged | changed | refused | failed | skipped
    actions: int = 0
    drift: int = 0
    seconds: float = 0.0
    error: str = ""
    plan: Plan | None = None
    notes: list[str] = field(default_factory=list)


def _policy_for(settings: Settings, slug: str) -> str:
    return tenant_policy_hcl(slug, transit_mount=settings.vault_transit_mount, kv_mount=settings.vault_kv_mount)


def _backoff(attempts: int) -> timedelta:
    base = min(600.0, 5.0 * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto


def baseline_digest(spec: TenantSpec, settings: Settings) -> str:
    playbook = Path(settings.playbooks_dir) / "tenant-baseline.yml"
    body = playbook.read_bytes() if playbook.exists() else b""
    return hashlib.sha256(spec.digest().encode() + body).hexdigest()


def plan_for(spec: TenantSpec, *, db: Database, backends: Backends, settings: Settings) -> Plan:
    """What apply would do for `spec` now, changing nothing (new subnets are only previewed)."""
    with db.transaction() as s:
        tenant = s.get(Tenant, spec.slug)
        applied = (tenant is not None and tenant.spec_digest == spec.digest()
                   and tenant.applied_generation == tenant.generation)
        imported = bool(tenant and tenant.imported)
        allocations = preview_allocations(s, spec.slug, spec)
    observed = observe_tenant(spec, backends)
    return plan_tenant(spec, observed, allocations=allocations, policy_hcl=_policy_for(settings, spec.slug),
                       applied=applied, imported=imported)


def reconcile_tenant(slug: str, *, db: Database, backends: Backends, settings: Settings, owner: str,
                     initiator: str = "system:reconciler", progress: Progress | None = None,
                     run_baseline_playbook: bool = True) -> Outcome:
    """Converge one tenant to its spec. Failures are recorded on the tenant, never raised,
    except a refusal (bad input), which is raised as InvalidInput after being recorded."""
    started = time.perf_counter()
    say = progress or (lambda _s, _m: None)
    with db.transaction() as s:
        if not acquire_lease(s, slug, owner=owner):
            return Outcome(slug, "skipped", error="another worker holds the lease")
    try:
        return _reconcile_leased(slug, db=db, backends=backends, settings=settings, owner=owner,
                                 initiator=initiator, say=say, started=started,
                                 run_baseline_playbook=run_baseline_playbook)
    finally:
        with db.transaction() as s:
            release_lease(s, slug, owner=owner)


def _reconcile_leased(slug: str, *, db: Database, backends: Backends, settings: Settings, owner: str,
                      initiator: str, say: Progress, started: float, run_baseline_playbook: bool) -> Outcome:
    run_id = str(uuid.uuid4())
    with db.transaction() as s:
        tenant = registry.get_tenant(s, slug)
        if Phase(tenant.phase) not in ACTIVE_PHASES:
            return Outcome(slug, "skipped", error=f"tenant is {tenant.phase}")
        spec, generation = registry.tenant_spec(tenant), tenant.generation
        applied, imported, phase = tenant.applied_generation == generation, tenant.imported, tenant.phase
        allocations = {e.name: allocate_subnet(s, tenant=slug, environment=e.name, prefix=e.subnet_prefix)
                       for e in spec.environments}
    try:
        say(slug, "observing")
        observed = observe_tenant(spec, backends)
        plan = plan_tenant(spec, observed, allocations=allocations, policy_hcl=_policy_for(settings, slug),
                           applied=applied, imported=imported)
        if plan.refusals:
            message = "; ".join(plan.refusals)
            with db.transaction() as s:
                t = registry.get_tenant(s, slug)
                t.last_error = message
                registry.add_event(s, slug, "error", f"refused: {message}", run_id=run_id)
                record_event(s, action="tenant:apply", initiator=initiator, target=f"tenant:{slug}",
                             outcome="failure", org=slug, detail={"refused": list(plan.refusals)})
            raise InvalidInput(f"tenant {slug}: nothing applied: {message}")
        outcome = Outcome(slug, "converged", drift=len(plan.drift), plan=plan, notes=list(plan.notes))
        ctx = ApplyContext.from_observed(spec, backends, observed)
        if not plan.empty:
            target = Phase.PROVISIONING if _never_applied(phase) else Phase.UPDATING
            with db.transaction() as s:
                t = registry.get_tenant(s, slug)
                if t.phase != target.value:
                    t.phase = check_transition(t.phase, target).value
                if plan.drift:
                    t.drift_count = len(plan.drift)
                    registry.add_event(s, slug, "drift", f"{len(plan.drift)} difference(s) from the applied "
                                       "spec: " + "; ".join(a.describe() for a in plan.drift), run_id=run_id)
            _apply_actions(plan, ctx, db=db, slug=slug, owner=owner, run_id=run_id, say=say)
            outcome.status, outcome.actions = "changed", len(plan.actions)
        key = ctx.signing_key or backends.keys.get_signing_key(signing_key_name(slug))
        with db.transaction() as s:
            registry.archive_public_keys(s, slug, key.name, key.public_keys)
            t = registry.get_tenant(s, slug)
            needs_baseline = run_baseline_playbook and t.baseline_digest != baseline_digest(spec, settings)
        if needs_baseline:
            say(slug, "running playbook tenant-baseline.yml")
            run_baseline(slug, spec, db=db, backends=backends, settings=settings, run_id=run_id)
            with db.transaction() as s:
                registry.get_tenant(s, slug).baseline_digest = baseline_digest(spec, settings)
        with db.transaction() as s:
            t = registry.get_tenant(s, slug)
            if t.phase != Phase.READY.value:
                t.phase = check_transition(t.phase, Phase.READY).value
                registry.add_event(s, slug, "phase", "ready", run_id=run_id)
            t.applied_generation, t.attempts, t.last_error = generation, 0, ""
            t.next_attempt_at, t.last_reconciled_at = None, utcnow()
            if not plan.drift:
                t.drift_count = 0
            if not plan.empty:
                record_event(s, action="tenant:apply", initiator=initiator, target=f"tenant:{slug}", org=slug,
                             detail={"generation": generation, **plan.summary(), "drift": len(plan.drift)})
        outcome.seconds = time.perf_counter() - started
        say(slug, f"{outcome.status} in {outcome.seconds:.1f}s")
        return outcome
    except InvalidInput:
        raise
    except ControlPlaneError as exc:
        _record_failure(db, slug, exc, run_id=run_id, initiator=initiator)
        say(slug, f"failed: {exc.message}")
        return Outcome(slug, "failed", error=exc.message, seconds=time.perf_counter() - started)


def _never_applied(phase: str) -> bool:
    return phase in (Phase.PENDING.value, Phase.PROVISIONING.value)


def _apply_actions(plan: Plan, ctx: ApplyContext, *, db: Database, slug: str, owner: str, run_id: str,
                   say: Progress) -> None:
    kill_after = int(os.environ.get(FAULT_KILL_ENV, "0") or 0)
    for index, action in enumerate(plan.actions, start=1):
        say(slug, f"[{index}/{len(plan.actions)}] {action.describe()}")
        result_id = execute(ctx, action)
        if kill_after == index:
            os.kill(os.getpid(), signal.SIGKILL)
        with db.transaction() as s:
            registry.add_event(s, slug, "action", action.describe(), run_id=run_id,
                               detail={"op": action.op, "id": result_id, "drift": action.drift})
            if action.op.startswith("ensure_"):
                # e.g. "network:prod", "group:admins", "domain:": what decommission must remove
                scope = action.env or dict(action.params).get("group", "")
                registry.remember_resource(s, slug, f"{action.op.removeprefix('ensure_')}:{scope}", result_id)
            if index % 10 == 0:
                renew_lease(s, slug, owner=owner)


def _record_failure(db: Database, slug: str, exc: ControlPlaneError, *, run_id: str, initiator: str) -> None:
    with db.transaction() as s:
        t = registry.get_tenant(s, slug)
        t.attempts += 1
        t.last_error = exc.message
        t.next_attempt_at = utcnow() + (_backoff(t.attempts) if isinstance(exc, TemporaryError)
                                        else timedelta(minutes=30))
        # A tenant that was ready stays ready when only observation failed: nothing changed.
        if t.phase in (Phase.PENDING.value, Phase.PROVISIONING.value, Phase.UPDATING.value):
            t.phase = check_transition(t.phase, Phase.FAILED).value
        registry.add_event(s, slug, "error", exc.message, run_id=run_id,
                           detail={"temporary": isinstance(exc, TemporaryError), "attempt": t.attempts})
        record_event(s, action="tenant:apply", initiator=initiator, target=f"tenant:{slug}",
                     outcome="failure", org=slug, detail={"error": exc.message[:500]})
