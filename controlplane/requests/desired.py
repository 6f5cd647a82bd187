"""Approved requests become desired state (a new spec generation); the reconciler's outcome comes back."""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.audit import AuditAction, record_event
from controlplane.errors import InvalidInput
from controlplane.requests.lifecycle import Kind, State, Step, check_transition
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.requests.rules import RequestRules, check_usage, parse_quotas, with_update
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.models import Tenant, TenantEvent
from controlplane.tenancy.phases import ACTIVE_PHASES, Phase
from controlplane.tenancy.spec import EnvironmentSpec, TenantSpec, spec_from_document

log = logging.getLogger(__name__)
RECONCILER = "system:reconciler"


def spec_with_request(spec: TenantSpec, req: ResourceRequest, rules: RequestRules) -> TenantSpec:
    """The tenant's spec with the request's change; validated again against the tenant schema."""
    if req.kind == Kind.QUOTA_CHANGE:
        try:
            env = spec.environment(req.environment)
        except KeyError:
            raise InvalidInput(f"environment {req.environment!r} no longer exists in {spec.slug}") from None
        update = parse_quotas(req.payload["quotas"], complete=False, rules=rules)
        changed = replace(env, quotas=with_update(env.quotas, update))
        envs = tuple(changed if e.name == env.name else e for e in spec.environments)
    else:
        if any(e.name == req.environment for e in spec.environments):
            raise InvalidInput(f"environment {req.environment!r} already exists in {spec.slug}")
        update = parse_quotas(req.payload["quotas"], complete=True, rules=rules)
        template = spec.environments[0].quotas
        new_env = EnvironmentSpec(
            name=req.environment,
            quotas=with_update(template, update),
            description=str(req.payload.get("description", "")),
        )
        envs = tuple(sorted((*spec.environments, new_env), key=lambda e: e.name))
    changed_spec = replace(spec, environments=envs)
    # Through the published schema once more: what the reconciler reads back must parse.
    return spec_from_document(changed_spec.to_document(), source=f"<request:{req.id}>")


def make_desired(
    session: Session,
    req: ResourceRequest,
    *,
    initiator: str,
    usage: dict[str, int | None],
    rules: RequestRules,
) -> None:
    """Store the approved change as the tenant's desired state, in the caller's transaction."""
    tenant = registry.get_tenant(session, req.org)
    if Phase(tenant.phase) not in ACTIVE_PHASES:
        raise InvalidInput(f"tenant {req.org} is {tenant.phase}; it accepts no changes")
    spec = spec_with_request(registry.tenant_spec(tenant), req, rules)
    if req.kind == Kind.QUOTA_CHANGE:
        check_usage(parse_quotas(req.payload["quotas"], complete=False, rules=rules), usage)
    registration = registry.register_spec(session, spec, initiator=initiator)
    req.state = check_transition(req.state, State.APPROVED).value
    req.applied_generation = registration.generation
    req.approved_at = utcnow()
    req.outcome = f"stored as generation {registration.generation} of {req.org}; waiting for the reconciler"


def _finish(session: Session, req: ResourceRequest, state: State, message: str) -> None:
    req.state = check_transition(req.state, state).value
    req.outcome = message[:2000]
    step = Step.APPLIED if state is State.APPLIED else Step.FAILED
    session.add(RequestStep(request_id=req.id, step=step.value, actor=RECONCILER, comment=req.outcome))
    record_event(
        session,
        action=AuditAction.REQUEST_APPLY,
        initiator=RECONCILER,
        target=f"request:{req.id}",
        outcome="success" if state is State.APPLIED else "failure",
        org=req.org,
        detail={"generation": req.applied_generation, "message": req.outcome[:500]},
    )


def _failure_since(session: Session, req: ResourceRequest) -> TenantEvent | None:
    """A refusal or permanent error the reconciler recorded for the tenant after the approval.
    Temporary errors are retried with backoff, so they do not fail the request."""
    if req.approved_at is None:
        return None
    events = session.scalars(
        select(TenantEvent)
        .where(TenantEvent.tenant_slug == req.org, TenantEvent.kind == "error")
        .where(TenantEvent.occurred_at >= req.approved_at)
        .order_by(TenantEvent.id.desc())
        .limit(20)
    )
    for event in events:
        if not (event.detail or {}).get("temporary"):
            return event
    return None


def sync_outcomes(db: Database) -> dict[int, str]:
    """Mark approved requests applied (tenant converged at their generation) or failed (the
    reconciler refused or permanently failed after the approval). Returns {request id: state}."""
    changed: dict[int, str] = {}
    with db.transaction() as s:
        pending = list(
            s.scalars(select(ResourceRequest).where(ResourceRequest.state == State.APPROVED.value))
        )
        for req in pending:
            tenant = s.get(Tenant, req.org)
            generation = req.applied_generation or 0
            if tenant is None or Phase(tenant.phase) not in ACTIVE_PHASES:
                why = "is no longer registered" if tenant is None else f"is {tenant.phase}"
                _finish(s, req, State.FAILED, f"tenant {req.org} {why}; the change was not applied")
            elif tenant.applied_generation >= generation:
                _finish(s, req, State.APPLIED, f"applied: {req.org} converged at generation {generation}")
            elif (event := _failure_since(s, req)) is not None:
                why = tenant.last_error or event.message
                _finish(s, req, State.FAILED, f"the reconciler could not apply it: {why}")
            elif tenant.last_error and tenant.last_error not in req.outcome:
                req.outcome = f"waiting for the reconciler (retrying after: {tenant.last_error})"[:2000]
                continue
            else:
                continue
            changed[req.id] = req.state
    for request_id, state in changed.items():
        log.info("request %d %s", request_id, state)
    return changed
