"""Staff-account changes held for a second operator: a new operator or auditor, a role made operator
or auditor, another staff member's password or MFA reset. One operator files, another approves;
filing, approval, rejection and expiry are each audited."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.accounts import admin
from controlplane.accounts.models import Role, StaffChange, User
from controlplane.accounts.service import USERNAME_RE, Actor
from controlplane.audit import AuditAction, record_event
from controlplane.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from controlplane.storage import as_utc, utcnow

LIFETIME = timedelta(hours=72)  # a change nobody approved in three days is stale: file it again
KINDS = ("create", "role", "reset")


@dataclass(frozen=True)
class Decision:
    """An approved change and what it produced: the person, and for a new account or a reset the
    one-time password, shown to the approver only (the filer never learns it)."""

    change: StaffChange
    user: User
    one_time_password: str = ""


def is_staff_create(role: str) -> bool:
    return role in (Role.OPERATOR.value, Role.AUDITOR.value)


def is_staff_role_change(user: User, role: str) -> bool:
    return is_staff_create(role) and role != user.role


def is_staff_reset(user: User) -> bool:
    return is_staff_create(user.role)


def _check_operator(actor: Actor) -> int:
    person = actor.person_id
    if actor.role is not Role.OPERATOR or person is None:
        raise PermissionDenied("only an operator signed in as themselves files or decides staff-account "
                               "changes")
    return person


def _audit(session: Session, change: StaffChange, action: AuditAction, initiator: str, **extra: Any) -> None:
    record_event(session, action=action, initiator=initiator, target=f"staff_change:{change.id}",
                 detail={"kind": change.kind, "username": change.username, "payload": dict(change.payload),
                         "filed_by": change.filed_by, **extra})


def file_change(session: Session, actor: Actor, *, kind: str, username: str, payload: dict[str, Any],
                now: datetime | None = None) -> StaffChange:
    """File a change for another operator to approve; checked now so a bad one is refused at once."""
    now = now or utcnow()
    person = _check_operator(actor)
    username = username.strip()
    if kind not in KINDS:
        raise InvalidInput(f"kind: expected one of {', '.join(KINDS)}")
    target = session.scalar(select(User).where(User.username == username))
    if kind == "create":
        if not USERNAME_RE.match(username):
            raise InvalidInput("username must start with a letter and use only a-z, 0-9, '.', '_' or '-' "
                               "(2-64 chars)")
        if target is not None:
            raise Conflict(f"the username {username!r} is already taken")
        if not is_staff_create(str(payload.get("role"))):
            raise InvalidInput("only a new operator or auditor waits for a second operator")
    else:
        if target is None:
            raise NotFound(f"no person {username!r} you administer")
        if target.id == actor.user_id:
            raise PermissionDenied("you cannot file a change to your own account",
                                   hint="ask another operator")
        if kind == "role" and not is_staff_role_change(target, str(payload.get("role"))):
            raise InvalidInput("only a role made operator or auditor waits for a second operator")
        if kind == "reset" and not is_staff_reset(target):
            raise InvalidInput("only a staff member's reset waits for a second operator")
    open_one = session.scalar(select(StaffChange.id).where(
        StaffChange.username == username, StaffChange.state == "pending", StaffChange.expires_at > now))
    if open_one is not None:
        raise Conflict(f"a change to {username!r} is already waiting for approval (number {open_one})")
    change = StaffChange(kind=kind, username=username, payload=payload, state="pending",
                         filed_by_user_id=person, filed_by=actor.audit_name, filed_at=now,
                         expires_at=now + LIFETIME, decided_by="", comment="")
    session.add(change)
    session.flush()
    _audit(session, change, AuditAction.STAFF_CHANGE_FILE, actor.audit_name, outcome_state="pending",
           expires_at=change.expires_at.isoformat())
    return change


def expire_stale(session: Session, *, now: datetime | None = None) -> int:
    """Mark pending changes past their lifetime expired (audited); how many."""
    now = now or utcnow()
    stale = list(session.scalars(select(StaffChange).where(StaffChange.state == "pending",
                                                           StaffChange.expires_at <= now)))
    for change in stale:
        change.state, change.decided_at = "expired", now
        _audit(session, change, AuditAction.STAFF_CHANGE_EXPIRE, "system:staff-changes")
    return len(stale)


def list_changes(session: Session, actor: Actor, *, state: str = "pending",
                 limit: int = 100) -> list[StaffChange]:
    """Staff-account changes (pending ones by default), newest first; operators only."""
    _check_operator(actor)
    expire_stale(session)
    query = select(StaffChange).order_by(StaffChange.id.desc()).limit(max(1, min(limit, 500)))
    if state:
        query = query.where(StaffChange.state == state)
    return list(session.scalars(query))


def _pending(session: Session, change_id: int, now: datetime) -> StaffChange:
    change = session.scalar(select(StaffChange).where(StaffChange.id == change_id).with_for_update())
    if change is None:
        raise NotFound(f"there is no staff-account change {change_id}")
    if change.state == "pending" and as_utc(change.expires_at) <= now:
        expire_stale(session, now=now)
    if change.state != "pending":
        raise Conflict(f"staff-account change {change_id} is {change.state}, not pending")
    return change


def approve_change(session: Session, actor: Actor, change_id: int, *, known_orgs: Collection[str],
                   now: datetime | None = None) -> Decision:
    """A second operator's approval applies the change; the filer can never approve their own."""
    now = now or utcnow()
    person = _check_operator(actor)
    change = _pending(session, change_id, now)
    if change.filed_by_user_id == person:
        raise PermissionDenied("the operator who filed a staff-account change cannot approve it "
                               "(two operators)", hint="another operator approves it")
    payload, password = dict(change.payload), ""
    if change.kind == "create":
        created = admin.create_person(session, actor, username=change.username, role=str(payload["role"]),
                                      display_name=str(payload.get("display_name", "")),
                                      known_orgs=known_orgs, approved=True)
        user, password = created.user, created.one_time_password
    elif change.kind == "role":
        user = admin.change_role(session, actor, change.username, role=str(payload["role"]),
                                 org=str(payload.get("org", "")), known_orgs=known_orgs, approved=True)
    else:
        done = admin.reset_password(session, actor, change.username, reset_mfa=bool(payload.get("reset_mfa")),
                                    approved=True)
        user, password = done.user, done.one_time_password
    change.state, change.decided_by_user_id = "approved", person
    change.decided_by, change.decided_at = actor.audit_name, now
    _audit(session, change, AuditAction.STAFF_CHANGE_APPROVE, actor.audit_name)
    return Decision(change, user, password)


def reject_change(session: Session, actor: Actor, change_id: int, *, comment: str = "",
                  now: datetime | None = None) -> StaffChange:
    """Any operator (the filer too, to withdraw it) rejects a pending change; nothing is applied."""
    now = now or utcnow()
    person = _check_operator(actor)
    change = _pending(session, change_id, now)
    change.state, change.decided_by_user_id = "rejected", person
    change.decided_by, change.decided_at, change.comment = actor.audit_name, now, comment.strip()[:500]
    _audit(session, change, AuditAction.STAFF_CHANGE_REJECT, actor.audit_name, comment=change.comment)
    return change
