"""Request use-cases for the console and API: create, submit, approve, reject, withdraw, read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.audit import AuditAction, record_event
from controlplane.backends import Backends
from controlplane.errors import InvalidInput, NotFound
from controlplane.requests import rules as r
from controlplane.requests.desired import make_desired
from controlplane.requests.lifecycle import Kind, State, Step, check_transition
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.requests.usage import Target, Usage, load_target, read_usage
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.spec import TenantSpec

AUTO_APPROVER = "system:auto-approval"


@dataclass(frozen=True)
class StepView:
    step: str
    actor: str
    at: datetime
    comment: str


@dataclass(frozen=True)
class RequestView:
    """A request as the console and API show it (plain data, no session attached)."""

    id: int
    org: str
    kind: str
    environment: str
    payload: dict[str, Any]
    state: str
    created_by: str
    created_at: datetime
    required_approvals: int
    approvals: tuple[str, ...]
    applied_generation: int | None
    outcome: str
    steps: tuple[StepView, ...]


@dataclass(frozen=True)
class QuotaUsage:
    key: str
    limit: int  # desired limit (the tenant's spec)
    in_use: int | None


def _steps(session: Session, request_id: int) -> list[RequestStep]:
    return list(
        session.scalars(
            select(RequestStep).where(RequestStep.request_id == request_id).order_by(RequestStep.id)
        )
    )


def _approvers(steps: list[RequestStep]) -> set[str]:
    return {s.actor for s in steps if s.step == Step.APPROVED}


def _approver_people(steps: list[RequestStep]) -> frozenset[int]:
    return frozenset(s.actor_user_id for s in steps
                     if s.step == Step.APPROVED and s.actor_user_id is not None)


def _check_decider(actor: Actor, req: ResourceRequest, steps: list[RequestStep], *, approving: bool) -> None:
    r.check_may_decide(actor, created_by=req.created_by, filer_person=req.created_by_user_id,
                       approvers=_approvers(steps) if approving else set(),
                       approver_people=_approver_people(steps) if approving else frozenset())


def _view(session: Session, req: ResourceRequest, steps: list[RequestStep] | None = None) -> RequestView:
    steps = _steps(session, req.id) if steps is None else steps
    return RequestView(
        id=req.id, org=req.org, kind=req.kind, environment=req.environment, payload=dict(req.payload),
        state=req.state, created_by=req.created_by, created_at=req.created_at,
        required_approvals=req.required_approvals, approvals=tuple(sorted(_approvers(steps))),
        applied_generation=req.applied_generation, outcome=req.outcome,
        steps=tuple(StepView(s.step, s.actor, s.occurred_at, s.comment) for s in steps),
    )


def _load(session: Session, request_id: int, actor: Actor, *, lock: bool = False) -> ResourceRequest:
    """The request if `actor` may see it; another organisation's request is simply not found."""
    query = select(ResourceRequest).where(ResourceRequest.id == request_id)
    req = session.scalar(query.with_for_update() if lock else query)
    visible = req is not None and (
        actor.role in (Role.OPERATOR, Role.AUDITOR) or req.org == actor.org
    )
    if req is None or not visible:
        raise NotFound(f"there is no request {request_id}")
    return req


def _record(session: Session, req: ResourceRequest, step: Step, actor: str, comment: str,
            action: AuditAction, detail: dict[str, Any] | None = None, *, person: int | None = None) -> None:
    session.add(RequestStep(request_id=req.id, step=step.value, actor=actor, comment=comment,
                            actor_user_id=person))
    record_event(session, action=action, initiator=actor, target=f"request:{req.id}", org=req.org,
                 detail={"kind": req.kind, "environment": req.environment, "state": req.state,
                         **(detail or {})})


def _current_quotas(spec: TenantSpec, req: ResourceRequest) -> dict[str, int]:
    if req.kind == Kind.NEW_ENVIRONMENT:
        if any(e.name == req.environment for e in spec.environments):
            raise InvalidInput(f"environment {req.environment!r} already exists in {spec.slug}")
        return dict.fromkeys(r.QUOTA_KEYS, 0)
    try:
        return r.flatten(spec.environment(req.environment).quotas)
    except KeyError:
        known = ", ".join(e.name for e in spec.environments)
        raise InvalidInput(f"{spec.slug} has no environment {req.environment!r} (it has: {known})") from None


def _evaluate(spec: TenantSpec, req: ResourceRequest, usage: Usage, rules: r.RequestRules
              ) -> list[r.Change]:
    """Validate the request against the tenant as it is now; the changes it makes."""
    current = _current_quotas(spec, req)
    update = r.parse_quotas(req.payload.get("quotas"), complete=req.kind == Kind.NEW_ENVIRONMENT,
                            rules=rules)
    changes = r.diff(current, update)
    if req.kind == Kind.QUOTA_CHANGE:
        if not changes:
            raise InvalidInput("the request changes nothing: every quota asked for is already the limit")
        r.check_usage({c.key: c.new for c in changes}, usage)
    return changes


def _usage_for(backends: Backends, target: Target, req: ResourceRequest) -> Usage:
    if req.kind != Kind.QUOTA_CHANGE or req.environment not in {e.name for e in target.spec.environments}:
        return {}
    return read_usage(backends, target, req.environment)


def _submit(session: Session, req: ResourceRequest, actor: Actor, comment: str, spec: TenantSpec,
            usage: Usage, rules: r.RequestRules) -> None:
    changes = _evaluate(spec, req, usage, rules)
    req.state = check_transition(req.state, State.SUBMITTED).value
    req.required_approvals = r.required_approvals(req.kind, changes, rules)
    _record(session, req, Step.SUBMITTED, actor.audit_name, comment, AuditAction.REQUEST_SUBMIT,
            {"required_approvals": req.required_approvals}, person=actor.person_id)
    reason = r.auto_approval(req.kind, changes, usage, rules)
    if reason is not None:
        make_desired(session, req, initiator=AUTO_APPROVER, usage=usage, rules=rules)
        _record(session, req, Step.AUTO_APPROVED, AUTO_APPROVER, f"auto-approved: {reason}",
                AuditAction.REQUEST_APPROVE, {"rule": reason, "generation": req.applied_generation})


def create_request(
    db: Database, backends: Backends, actor: Actor, *, org: str, kind: str, environment: str,
    quotas: object, description: str = "", comment: str = "", submit: bool = False,
    rules: r.RequestRules | None = None,
) -> RequestView:
    """Write a draft (and, with `submit`, submit it at once). Bad input writes nothing."""
    rules = rules or r.RequestRules()
    r.check_may_request(actor, org)
    if kind not in {k.value for k in Kind}:
        raise InvalidInput(f"kind: expected quota_change or new_environment, got {str(kind)[:40]!r}")
    if not isinstance(environment, str) or not 0 < len(environment) <= 16:
        raise InvalidInput("environment: expected an environment name of at most 16 characters")
    comment, description = r.check_text("comment", comment), r.check_text("description", description)
    target = load_target(db, org)
    payload: dict[str, Any] = {"quotas": quotas}
    if kind == Kind.NEW_ENVIRONMENT:
        r.check_environment_name(environment, tuple(e.name for e in target.spec.environments))
        payload.update(name=environment, description=description)
    req = ResourceRequest(org=org, kind=kind, environment=environment, payload=payload,
                          state=State.DRAFT.value, created_by=actor.audit_name,
                          created_by_user_id=actor.person_id)
    usage = _usage_for(backends, target, req)  # backend call: no transaction is open
    _evaluate(target.spec, req, usage, rules)  # validate before anything is written
    with db.transaction() as s:
        s.add(req)
        s.flush()
        _record(s, req, Step.CREATED, actor.audit_name, comment, AuditAction.REQUEST_CREATE,
                {"person": actor.person_id}, person=actor.person_id)
        if submit:
            _submit(s, req, actor, "", target.spec, usage, rules)
        return _view(s, req)


def submit_request(db: Database, backends: Backends, actor: Actor, request_id: int, *,
                   comment: str = "", rules: r.RequestRules | None = None) -> RequestView:
    rules, comment = rules or r.RequestRules(), r.check_text("comment", comment)
    with db.transaction() as s:
        req = _load(s, request_id, actor)
        r.check_may_request(actor, req.org)
        check_transition(req.state, State.SUBMITTED)
    target = load_target(db, req.org)
    usage = _usage_for(backends, target, req)
    with db.transaction() as s:
        req = _load(s, request_id, actor, lock=True)
        _submit(s, req, actor, comment, target.spec, usage, rules)
        return _view(s, req)


def approve_request(db: Database, backends: Backends, actor: Actor, request_id: int, *,
                    comment: str = "", rules: r.RequestRules | None = None) -> RequestView:
    """One operator's approval; the last one needed stores the change as desired state."""
    rules, comment = rules or r.RequestRules(), r.check_text("comment", comment)
    with db.transaction() as s:
        req = _load(s, request_id, actor)
        _check_decider(actor, req, _steps(s, req.id), approving=True)
        check_transition(req.state, State.APPROVED)
    target = load_target(db, req.org)
    usage = _usage_for(backends, target, req)  # usage may have grown since the request
    with db.transaction() as s:
        req = _load(s, request_id, actor, lock=True)
        steps = _steps(s, req.id)
        approvers = _approvers(steps)
        _check_decider(actor, req, steps, approving=True)
        check_transition(req.state, State.APPROVED)
        _evaluate(registry.tenant_spec(registry.get_tenant(s, req.org)), req, usage, rules)
        if len(approvers) + 1 >= req.required_approvals:
            make_desired(s, req, initiator=actor.audit_name, usage=usage, rules=rules)
        _record(s, req, Step.APPROVED, actor.audit_name, comment, AuditAction.REQUEST_APPROVE,
                {"approvals": len(approvers) + 1, "required": req.required_approvals,
                 "generation": req.applied_generation, "person": actor.person_id}, person=actor.person_id)
        return _view(s, req)


def reject_request(db: Database, actor: Actor, request_id: int, *, comment: str) -> RequestView:
    comment = r.check_text("comment", comment)
    if not comment:
        raise InvalidInput("comment: say why the request is rejected")
    with db.transaction() as s:
        req = _load(s, request_id, actor, lock=True)
        _check_decider(actor, req, [], approving=False)
        req.state = check_transition(req.state, State.REJECTED).value
        req.outcome = f"rejected by {actor.audit_name}: {comment}"
        _record(s, req, Step.REJECTED, actor.audit_name, comment, AuditAction.REQUEST_REJECT,
                {"person": actor.person_id}, person=actor.person_id)
        return _view(s, req)


def withdraw_request(db: Database, actor: Actor, request_id: int, *, comment: str = "") -> RequestView:
    comment = r.check_text("comment", comment)
    with db.transaction() as s:
        req = _load(s, request_id, actor, lock=True)
        r.check_may_request(actor, req.org)
        req.state = check_transition(req.state, State.WITHDRAWN).value
        req.outcome = "withdrawn"
        _record(s, req, Step.WITHDRAWN, actor.audit_name, comment, AuditAction.REQUEST_WITHDRAW,
                person=actor.person_id)
        return _view(s, req)


def get_request(db: Database, actor: Actor, request_id: int) -> RequestView:
    with db.transaction() as s:
        return _view(s, _load(s, request_id, actor))


def list_requests(db: Database, actor: Actor, *, org: str | None = None, state: str | None = None,
                  limit: int = 100) -> list[RequestView]:
    """Newest first; org roles see only their own organisation whatever `org` they pass."""
    query = select(ResourceRequest).order_by(ResourceRequest.id.desc()).limit(max(1, min(limit, 500)))
    if actor.role not in (Role.OPERATOR, Role.AUDITOR):
        query = query.where(ResourceRequest.org == actor.org)
    if org:
        query = query.where(ResourceRequest.org == org)
    if state:
        query = query.where(ResourceRequest.state == state)
    with db.transaction() as s:
        requests = list(s.scalars(query))
        # One query for every listed request's steps, not one per request (the queue lists hundreds).
        by_request: dict[int, list[RequestStep]] = {req.id: [] for req in requests}
        if requests:
            for step in s.scalars(select(RequestStep).where(RequestStep.request_id.in_(list(by_request)))
                                  .order_by(RequestStep.id)):
                by_request[step.request_id].append(step)
        return [_view(s, req, by_request[req.id]) for req in requests]


def environment_usage(db: Database, backends: Backends, actor: Actor, *, org: str,
                      environment: str) -> list[QuotaUsage]:
    """Limits and current usage of one environment, for the request form."""
    if actor.role not in (Role.OPERATOR, Role.AUDITOR) and actor.org != org:
        raise NotFound(f"there is no organisation {org!r}")
    target = load_target(db, org)
    try:
        limits = r.flatten(target.spec.environment(environment).quotas)
    except KeyError:
        raise NotFound(f"{org} has no environment {environment!r}") from None
    usage = read_usage(backends, target, environment)
    return [QuotaUsage(k, limits[k], usage.get(k)) for k in r.QUOTA_KEYS]
