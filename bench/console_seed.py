"""Seeding for bench/console.py: tenants, requests, events, playbook runs and audit events, in bulk."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

from controlplane.audit.models import AuditEvent
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.storage import Database
from controlplane.tenancy.models import PlaybookEvent, PlaybookRun, Tenant, TenantEvent, TenantResource
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import parse_spec

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = (REPO / "tenants" / "health.yaml").read_text(encoding="utf-8")
KINDS = ("ministry", "governorate", "agency")
EVENT_KINDS = ("action", "action", "action", "phase", "drift", "playbook", "error")
BATCH = 5000


def spec_for(slug: str, n: int, staging: bool) -> str:
    text_ = TEMPLATE if staging else TEMPLATE[: TEMPLATE.index("  staging:\n")] + TEMPLATE[
        TEMPLATE.index("people:\n"):]
    return (text_.replace("slug: health", f"slug: {slug}")
            .replace("kind: ministry", f"kind: {KINDS[n % len(KINDS)]}")
            .replace("Ministry of Health", f"Bench organisation {n:03d}"))


def _bulk(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    with db.transaction() as s:
        for i in range(0, len(rows), BATCH):
            s.execute(insert(model), rows[i:i + BATCH])


def seed(db: Database, *, tenants: int, requests: int, events: int, audit: int, runs_per_tenant: int,
         rng: random.Random) -> list[str]:
    now = datetime.now(UTC)
    slugs = [f"bench-{n:03d}" for n in range(tenants)]
    specs = [parse_spec(spec_for(slug, n, staging=n % 2 == 0), source=f"tenants/{slug}.yaml")
             for n, slug in enumerate(slugs)]
    register_specs(db, specs, initiator="bench")
    with db.transaction() as s:
        for n, slug in enumerate(slugs):
            generation = 1 + n % 7
            drift = 1 if n % 17 == 0 else 0
            failed = n % 29 == 0
            s.execute(update(Tenant).where(Tenant.slug == slug).values(
                generation=generation, applied_generation=generation - 1 if failed else generation,
                phase="failed" if failed else "ready", domain_id=secrets.token_hex(16),
                drift_count=drift, last_error="quota: cores above the hypervisor limit" if failed else "",
                last_reconciled_at=now - timedelta(seconds=rng.randint(10, 3600)), attempts=0,
                baseline_digest=secrets.token_hex(32)))
    resources: list[dict[str, Any]] = []
    for n, slug in enumerate(slugs):
        for env in ("prod", "staging") if n % 2 == 0 else ("prod",):
            # Networks and routers exist; `project:*` only where the devcloud is wired in (see below).
            for key in (f"network:{env}", f"subnet:{env}", f"router:{env}", f"security_group:{env}"):
                resources.append({"tenant_slug": slug, "key": key, "external_id": secrets.token_hex(16)})
    _bulk(db, TenantResource, resources)
    print(f"  {tenants} tenants registered (ready/failed, drift on some), {len(resources)} resources")

    if requests:
        seed_requests(db, slugs, requests, rng, now)
    span = timedelta(days=180).total_seconds()
    # slugs[3] is a quiet tenant: its share of the events is the oldest (it converged long ago).
    quiet, share = slugs[3], max(1, events // tenants)
    others = [slug for slug in slugs if slug != quiet] or slugs

    def owner(i: int) -> str:
        return quiet if i < share else others[i % len(others)]

    event_rows = [{
        "tenant_slug": owner(i), "kind": (kind := EVENT_KINDS[rng.randrange(len(EVENT_KINDS))]),
        "occurred_at": now - timedelta(seconds=span * (1 - i / events)),
        "message": f"{kind}: reconcile pass {i // tenants} step {i % 13}",
        "run_id": "", "detail": {"pass": i // tenants},
    } for i in range(events)]
    _bulk(db, TenantEvent, event_rows)
    print(f"  {events} tenant events ({quiet}: only the {share} oldest)")

    run_rows, pe_rows = [], []
    for slug in slugs:
        for r in range(runs_per_tenant):
            run_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-" \
                     f"{secrets.token_hex(2)}-{secrets.token_hex(6)}"
            started = now - timedelta(hours=6 * (runs_per_tenant - r))
            run_rows.append({"id": run_id, "tenant_slug": slug, "playbook": "baseline.yml",
                             "status": "successful", "rc": 0, "started_at": started,
                             "finished_at": started + timedelta(seconds=40),
                             "stats": {"ok": 12, "changed": 1, "failures": 0}})
            pe_rows.extend({"run_id": run_id, "counter": c, "event": "runner_on_ok", "task": f"task {c}",
                            "host": "localhost", "status": "ok", "message": "",
                            "created_at": started + timedelta(seconds=c)} for c in range(20))
    _bulk(db, PlaybookRun, run_rows)
    _bulk(db, PlaybookEvent, pe_rows)
    print(f"  {len(run_rows)} playbook runs, {len(pe_rows)} playbook events")

    actions = ("account:login", "tenant:update", "request:approve", "api_token:use", "tenant:reconcile")
    audit_rows = [{
        "occurred_at": now - timedelta(seconds=span * (1 - i / max(audit, 1))),
        "action": actions[i % len(actions)], "outcome": "success" if i % 23 else "failure",
        "initiator": f"user:op{i % 7}", "target": f"tenant:{slugs[i % tenants]}", "observer": "controlplane",
        "org": slugs[i % tenants], "detail": {"n": i},
    } for i in range(audit)]
    _bulk(db, AuditEvent, audit_rows)
    print(f"  {audit} audit events")
    return slugs


# state, share, the steps that led there
REQUEST_MIX = (
    ("applied", 0.70, ("created", "submitted", "approved", "applied")),
    ("applied", 0.08, ("created", "submitted", "auto-approved", "applied")),
    ("rejected", 0.07, ("created", "submitted", "rejected")),
    ("withdrawn", 0.03, ("created", "withdrawn")),
    ("failed", 0.02, ("created", "submitted", "approved", "failed")),
    ("submitted", 0.05, ("created", "submitted")),
    ("approved", 0.02, ("created", "submitted", "approved")),
    ("draft", 0.03, ("created",)),
)


def seed_requests(db: Database, slugs: list[str], count: int, rng: random.Random, now: datetime) -> None:
    span = timedelta(days=365).total_seconds()
    plan: list[tuple[str, tuple[str, ...]]] = []
    for state, share, steps in REQUEST_MIX:
        plan.extend([(state, steps)] * round(share * count))
    plan = (plan + [REQUEST_MIX[0][::2]] * count)[:count]  # rounding: top up with applied ones
    rng.shuffle(plan)
    rows, step_plans = [], []
    for i, (state, steps) in enumerate(plan):
        created = now - timedelta(seconds=span * (1 - i / count))
        org = slugs[rng.randrange(len(slugs))]
        kind = "new_environment" if i % 20 == 0 else "quota_change"
        payload: dict[str, Any] = ({"name": "staging", "description": "a staging environment",
                                    "quotas": {"compute": {"cores": 8, "ram_mb": 16384, "instances": 4}}}
                                   if kind == "new_environment"
                                   else {"quotas": {"compute": {"cores": 32 + 8 * rng.randint(-2, 6)}}})
        rows.append({"org": org, "kind": kind,
                     "environment": "staging" if kind == "new_environment" else "prod",
                     "payload": payload, "state": state, "created_by": f"user:{org}-admin",
                     "created_at": created, "updated_at": created + timedelta(minutes=len(steps) * 7),
                     "required_approvals": 2 if i % 11 == 0 else 1,
                     "applied_generation": 2 if state == "applied" else None,
                     "approved_at": created + timedelta(minutes=14)
                     if {"approved", "auto-approved"} & set(steps) else None,
                     "outcome": {"applied": "converged at generation 2", "failed": "quota refused by nova"}
                     .get(state, "")})
        step_plans.append((created, steps, org))
    ids: list[int] = []
    with db.transaction() as s:
        for i in range(0, len(rows), BATCH):
            returning = insert(ResourceRequest).returning(ResourceRequest.id, sort_by_parameter_order=True)
            result = s.execute(returning, rows[i:i + BATCH])
            ids.extend(result.scalars())
    step_rows = []
    for request_id, (created, steps, org) in zip(ids, step_plans, strict=True):
        for k, step in enumerate(steps):
            actor = f"user:{org}-admin" if step in ("created", "submitted", "withdrawn") else (
                "system:reconciler" if step in ("applied", "failed", "auto-approved") else "user:op1")
            step_rows.append({"request_id": request_id, "step": step, "actor": actor,
                              "occurred_at": created + timedelta(minutes=7 * k),
                              "comment": "within the ministry's plan" if step == "approved" else ""})
    _bulk(db, RequestStep, step_rows)
    print(f"  {len(ids)} requests ({sum(1 for st, _ in plan if st == 'submitted')} awaiting approval), "
          f"{len(step_rows)} request steps")
