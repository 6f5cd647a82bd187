"""Reconcile one tenant: lease, observe, plan, apply, baseline playbook, record. Never a DB
transaction open across a backend call: record intent, call, record outcome."""

from __future__ import annotations

import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from controlplane.audit import AuditAction, record_event
from controlplane.backends import Backends
from controlplane.backends.keys import signing_key_name, tenant_policy_hcl
from controlplane.errors import ControlPlaneError, InvalidInput, TemporaryError
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.addressing import allocate_subnet, preview_allocations
from controlplane.tenancy.apply import ApplyContext, api_slot, execute
from controlplane.tenancy.baseline import baseline_job, playbooks_digest, run_playbook
from controlplane.tenancy.leases import acquire_lease, release_lease, renew_lease
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.observe import observe_tenant
from controlplane.tenancy.phases import ACTIVE_PHASES, Phase, check_transition
from controlplane.tenancy.plan import Action, Plan, plan_tenant, stages_of
from controlplane.tenancy.services import service_jobs
from controlplane.tenancy.spec import TenantSpec

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]  # (tenant slug, message)

# Fault injection for the crash-at-every-step tests: the worker SIGKILLs itself right after the
# N-th action's backend call returned, before recording it. Not a setting; never set in production.
FAULT_KILL_ENV = "CONTROLPLANE_FAULT_KILL_AFTER_ACTION"
PARALLEL_ACTIONS = 4  # per tenant; the API slots in apply.py cap the process as a whole


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
    return tenant_policy_hcl(
        slug, transit_mount=settings.vault_transit_mount, kv_mount=settings.vault_kv_mount
    )


def _backoff(attempts: int) -> timedelta:
    base = min(600.0, 5.0 * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto


def plan_for(spec: TenantSpec, *, db: Database, backends: Backends, settings: Settings) -> Plan:
    """What apply would do for `spec` now, changing nothing (new subnets are only previewed)."""
    with db.transaction() as s:
        tenant = s.get(Tenant, spec.slug)
        applied = (
            tenant is not None
            and tenant.spec_digest == spec.digest()
            and tenant.applied_generation == tenant.generation
        )
        imported = bool(tenant and tenant.imported)
        allocations = preview_allocations(s, spec.slug, spec)
    observed = observe_tenant(spec, backends)
    return plan_tenant(
        spec,
        observed,
        allocations=allocations,
        policy_hcl=_policy_for(settings, spec.slug),
        applied=applied,
        imported=imported,
    )


def reconcile_tenant(
    slug: str,
    *,
    db: Database,
    backends: Backends,
    settings: Settings,
    owner: str,
    initiator: str = "system:reconciler",
    progress: Progress | None = None,
    run_baseline_playbook: bool = True,
) -> Outcome:
    """Converge one tenant to its spec. Failures are recorded on the tenant, never raised,
    except a refusal (bad input), which is raised as InvalidInput after being recorded."""
    with db.transaction() as s:
        if not acquire_lease(s, slug, owner=owner):
            return Outcome(slug, "skipped", error="another worker holds the lease")
    run = _TenantPass(
        slug,
        db=db,
        backends=backends,
        settings=settings,
        owner=owner,
        initiator=initiator,
        say=progress or (lambda _s, _m: None),
    )
    try:
        return run.execute(run_baseline_playbook=run_baseline_playbook)
    finally:
        with db.transaction() as s:
            release_lease(s, slug, owner=owner)


class _TenantPass:
    """One reconcile of one tenant under its lease: each step in its own short transaction."""

    def __init__(
        self,
        slug: str,
        *,
        db: Database,
        backends: Backends,
        settings: Settings,
        owner: str,
        initiator: str,
        say: Progress,
    ) -> None:
        self.slug, self.db, self.backends, self.settings = slug, db, backends, settings
        self.owner, self.initiator, self.say = owner, initiator, say
        self.run_id = str(uuid.uuid4())
        self.started = time.perf_counter()

    def execute(self, *, run_baseline_playbook: bool) -> Outcome:
        with self.db.transaction() as s:
            tenant = registry.get_tenant(s, self.slug)
            if Phase(tenant.phase) not in ACTIVE_PHASES:
                return Outcome(self.slug, "skipped", error=f"tenant is {tenant.phase}")
            spec, generation, phase = registry.tenant_spec(tenant), tenant.generation, tenant.phase
            applied, imported = tenant.applied_generation == generation, tenant.imported
            allocations = {
                e.name: allocate_subnet(s, tenant=self.slug, environment=e.name, prefix=e.subnet_prefix)
                for e in spec.environments
            }
        try:
            self.say(self.slug, "observing")
            with api_slot():  # one call at a time while observing: one slot
                observed = observe_tenant(spec, self.backends)
            plan = plan_tenant(
                spec,
                observed,
                allocations=allocations,
                policy_hcl=_policy_for(self.settings, self.slug),
                applied=applied,
                imported=imported,
            )
            if plan.refusals:
                self._refuse(plan)
            outcome = Outcome(
                self.slug, "converged", drift=len(plan.drift), plan=plan, notes=list(plan.notes)
            )
            ctx = ApplyContext.from_observed(spec, self.backends, observed)
            if not plan.empty:
                self._start(plan, phase)
                _apply_actions(
                    plan, ctx, db=self.db, slug=self.slug, owner=self.owner, run_id=self.run_id, say=self.say
                )
                outcome.status, outcome.actions = "changed", len(plan.actions)
            self._keep_records(ctx)
            if run_baseline_playbook:
                self._baseline(spec)
            self._finish(plan, generation)
        except InvalidInput:
            raise
        except ControlPlaneError as exc:
            _record_failure(self.db, self.slug, exc, run_id=self.run_id, initiator=self.initiator)
            self.say(self.slug, f"failed: {exc.message}")
            return Outcome(self.slug, "failed", error=exc.message, seconds=time.perf_counter() - self.started)
        outcome.seconds = time.perf_counter() - self.started
        self.say(self.slug, f"{outcome.status} in {outcome.seconds:.1f}s")
        return outcome

    def _refuse(self, plan: Plan) -> None:
        message = "; ".join(plan.refusals)
        with self.db.transaction() as s:
            registry.get_tenant(s, self.slug).last_error = message
            registry.add_event(s, self.slug, "error", f"refused: {message}", run_id=self.run_id)
            record_event(
                s,
                action="tenant:apply",
                initiator=self.initiator,
                target=f"tenant:{self.slug}",
                outcome="failure",
                org=self.slug,
                detail={"refused": list(plan.refusals)},
            )
        raise InvalidInput(f"tenant {self.slug}: nothing applied: {message}")

    def _start(self, plan: Plan, phase: str) -> None:
        target = Phase.PROVISIONING if _never_applied(phase) else Phase.UPDATING
        with self.db.transaction() as s:
            t = registry.get_tenant(s, self.slug)
            if t.phase != target.value:
                t.phase = check_transition(t.phase, target).value
            if plan.drift:
                t.drift_count = len(plan.drift)
                listed = "; ".join(a.describe() for a in plan.drift)
                registry.add_event(
                    s,
                    self.slug,
                    "drift",
                    f"{len(plan.drift)} difference(s) from the applied spec: {listed}",
                    run_id=self.run_id,
                )

    def _keep_records(self, ctx: ApplyContext) -> None:
        key = ctx.signing_key or self.backends.keys.get_signing_key(signing_key_name(self.slug))
        with self.db.transaction() as s:
            registry.archive_public_keys(s, self.slug, key)
            _remember_ids(s, self.slug, ctx)

    def _baseline(self, spec: TenantSpec) -> None:
        """The baseline, then the deploy of each service the spec lists; all rerun on any change."""
        jobs = [baseline_job(spec, self.settings), *service_jobs(spec, self.settings)]
        digest = playbooks_digest(spec, jobs, self.settings)
        with self.db.transaction() as s:
            if registry.get_tenant(s, self.slug).baseline_digest == digest:
                return
        for i, job in enumerate(jobs):
            self.say(self.slug, f"running playbook {job.playbook}")
            run_playbook(
                self.slug,
                job,
                db=self.db,
                backends=self.backends,
                settings=self.settings,
                run_id=self.run_id,
                playbook_run_id=self.run_id if i == 0 else str(uuid.uuid4()),
            )
        with self.db.transaction() as s:
            registry.get_tenant(s, self.slug).baseline_digest = digest

    def _finish(self, plan: Plan, generation: int) -> None:
        with self.db.transaction() as s:
            t = registry.get_tenant(s, self.slug)
            if t.phase != Phase.READY.value:
                t.phase = check_transition(t.phase, Phase.READY).value
                registry.add_event(s, self.slug, "phase", "ready", run_id=self.run_id)
            t.applied_generation, t.attempts, t.last_error = generation, 0, ""
            t.next_attempt_at, t.last_reconciled_at = None, utcnow()
            if not plan.drift:
                t.drift_count = 0
            if not plan.empty:
                record_event(
                    s,
                    action="tenant:apply",
                    initiator=self.initiator,
                    target=f"tenant:{self.slug}",
                    org=self.slug,
                    detail={"generation": generation, **plan.summary(), "drift": len(plan.drift)},
                )
            # Key history for the auditors: the signing key's own event, beside the tenant's.
            if any(a.op == "ensure_signing_key" for a in plan.actions):
                record_event(
                    s,
                    action=AuditAction.KEY_CREATE,
                    initiator=self.initiator,
                    target=f"key:{signing_key_name(self.slug)}",
                    org=self.slug,
                    detail={"type": "ed25519", "engine": "transit"},
                )


def _never_applied(phase: str) -> bool:
    return phase in (Phase.PENDING.value, Phase.PROVISIONING.value)


def _apply_actions(
    plan: Plan, ctx: ApplyContext, *, db: Database, slug: str, owner: str, run_id: str, say: Progress
) -> None:
    """Run the plan stage by stage; the actions of one stage are independent and run in parallel
    (each holding one of the process-wide API slots). A failure stops before the next stage."""
    kill_after = int(os.environ.get(FAULT_KILL_ENV, "0") or 0)
    done = 0

    def finished(action: Action, result_id: str) -> None:
        nonlocal done
        done += 1
        if kill_after == done:
            os.kill(os.getpid(), signal.SIGKILL)
        with db.transaction() as s:
            registry.add_event(
                s,
                slug,
                "action",
                action.describe(),
                run_id=run_id,
                detail={"op": action.op, "id": result_id, "drift": action.drift},
            )
            if done % 10 == 0:
                renew_lease(s, slug, owner=owner)

    for batch in stages_of(plan):
        for action in batch:
            say(slug, action.describe())
        if kill_after or len(batch) == 1:
            # Under fault injection one at a time, so "killed right after step N" is exact.
            for action in batch:
                finished(action, execute(ctx, action))
            continue
        failure: BaseException | None = None
        with ThreadPoolExecutor(
            max_workers=min(PARALLEL_ACTIONS, len(batch)), thread_name_prefix=slug
        ) as pool:
            futures = {pool.submit(execute, ctx, action): action for action in batch}
            for future in as_completed(futures):
                try:
                    result_id = future.result()
                except BaseException as exc:  # the stage's other actions finish before we stop
                    failure = failure or exc
                    continue
                finished(futures[future], result_id)
        if failure is not None:
            raise failure


def _remember_ids(session: Session, slug: str, ctx: ApplyContext) -> None:
    """Record the id of every object the tenant has (also those found after a crash), keyed like
    "network:prod" or "group:admins", so a lost object or an orphan can be told apart."""
    keyed = {"domain:": ctx.domain_id, **{f"group:{g}": i for g, i in ctx.groups.items()}}
    for kind, ids in (
        ("project", ctx.projects),
        ("network", ctx.networks),
        ("subnet", ctx.subnets),
        ("router", ctx.routers),
    ):
        keyed.update({f"{kind}:{env}": i for env, i in ids.items()})
    for key, external_id in keyed.items():
        if external_id:
            registry.remember_resource(session, slug, key, external_id)


def _record_failure(db: Database, slug: str, exc: ControlPlaneError, *, run_id: str, initiator: str) -> None:
    with db.transaction() as s:
        t = registry.get_tenant(s, slug)
        t.attempts += 1
        t.last_error = exc.message
        t.next_attempt_at = utcnow() + (
            _backoff(t.attempts) if isinstance(exc, TemporaryError) else timedelta(minutes=30)
        )
        # A tenant that was ready stays ready when only observation failed: nothing changed.
        if t.phase in (Phase.PENDING.value, Phase.PROVISIONING.value, Phase.UPDATING.value):
            t.phase = check_transition(t.phase, Phase.FAILED).value
        registry.add_event(
            s,
            slug,
            "error",
            exc.message,
            run_id=run_id,
            detail={"temporary": isinstance(exc, TemporaryError), "attempt": t.attempts},
        )
        record_event(
            s,
            action="tenant:apply",
            initiator=initiator,
            target=f"tenant:{slug}",
            outcome="failure",
            org=slug,
            detail={"error": exc.message[:500]},
        )
