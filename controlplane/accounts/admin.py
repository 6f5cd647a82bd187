"""People administration: create people, list them, change role or organisation, disable/enable,
reset passwords; who may administer whom, the last enabled operator kept, staff-account changes
held for a second operator (accounts.staff_changes), and an organisation's access closed at
decommission."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from controlplane.accounts.models import ApiToken, LoginSession, MfaRecoveryCode, OrgInvite, Role, User
from controlplane.accounts.service import Actor, check_password_strength, create_user, hash_password
from controlplane.audit import AuditAction, record_event
from controlplane.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from controlplane.storage import utcnow

ORG_ROLES = frozenset({Role.ORG_ADMIN, Role.ORG_MEMBER})
STAFF_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR})
MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class HostActor(Actor):
    """The data center's own staff at the console host (the `controlplane users` command): operator
    powers, recorded as ``cli:users``; it is nobody's account, so no self-rule applies to it."""

    @property
    def audit_name(self) -> str:
        return "cli:users"


CLI_ACTOR = HostActor(0, "cli:users", Role.OPERATOR, "")


@dataclass(frozen=True)
class CreatedPerson:
    """A new person and their one-time password, shown exactly once and changed at first sign-in."""

    user: User
    one_time_password: str


def _check_administrator(actor: Actor) -> None:
    if actor.role not in (Role.OPERATOR, Role.ORG_ADMIN):
        raise PermissionDenied("only operators and organisation admins administer people")


def _may_administer(actor: Actor, user: User) -> bool:
    if actor.role is Role.OPERATOR:
        return True
    return (actor.role is Role.ORG_ADMIN and Role(user.role) in ORG_ROLES and user.org == actor.org)


def _person(session: Session, actor: Actor, username: str) -> User:
    """The person `actor` may administer; anyone else is "not found", as their existence is not
    an organisation admin's to learn."""
    _check_administrator(actor)
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not _may_administer(actor, user):
        raise NotFound(f"no person {username!r} you administer")
    return user


def _check_role_and_org(actor: Actor, role: str, org: str, known_orgs: Collection[str]) -> Role:
    try:
        wanted = Role(role)
    except ValueError:
        raise InvalidInput(f"role: expected one of {', '.join(r.value for r in Role)}") from None
    if actor.role is Role.ORG_ADMIN and (wanted not in ORG_ROLES or org != actor.org):
        raise PermissionDenied("an organisation admin gives only admin or member roles in its own "
                               "organisation")
    if wanted in ORG_ROLES:
        if not org:
            raise InvalidInput(f"a {wanted.value} must belong to an organisation")
        if org not in known_orgs:
            raise InvalidInput(f"organisation {org!r} is not a registered tenant")
    elif org:
        raise InvalidInput(f"the {wanted.value} role is for data-center staff, who belong to no "
                           "organisation")
    return wanted


def _new_one_time_password(username: str) -> str:
    while True:  # a random password containing a short username is refused; draw again
        password = secrets.token_urlsafe(18)
        try:
            check_password_strength(password, username=username)
        except InvalidInput:
            continue
        return password


def _enabled_operators(session: Session) -> int:
    # Lock the enabled operators' rows: two operators disabling each other at once must not both
    # see the other still enabled and leave nobody (PostgreSQL; SQLite serialises writers anyway).
    ids = session.scalars(
        select(User.id).where(User.role == Role.OPERATOR.value, User.disabled.is_(False)).with_for_update()
    )
    return len(list(ids))


def _check_second_operator(session: Session, actor: Actor, approved: bool, what: str) -> None:
    """A staff-account change made alone is refused: it is filed, and a second operator approves it
    (accounts.staff_changes, which passes `approved`). The host's CLI may act alone only while there
    is no second enabled operator to ask: the bootstrap of the first operators, or recovery."""
    if approved:
        return
    if isinstance(actor, HostActor) and _enabled_operators(session) < 2:
        return
    raise PermissionDenied(f"{what} needs a second operator's approval",
                           hint="file it on the People page of the console; another operator approves it")


def _check_not_org_password(actor: Actor, role: Role, what: str) -> None:
    """An operator never holds an organisation person's password (so never signs in as a ministry):
    an organisation's first admin is invited and sets their own; its admins add and reset the rest."""
    if actor.role is Role.OPERATOR and not isinstance(actor, HostActor) and role in ORG_ROLES:
        raise PermissionDenied(f"operators cannot {what} of an organisation's people: invite its first "
                               "admin, whose admins then manage its people",
                               hint="People, Invite an organisation's first admin")


def _check_not_last_operator(session: Session, user: User, what: str) -> None:
    if user.role == Role.OPERATOR.value and not user.disabled and _enabled_operators(session) <= 1:
        raise Conflict(f"{user.username} is the last enabled operator and cannot be {what}",
                       hint="create or enable another operator first")


def _revoke_access(session: Session, user: User, now: datetime, *, minted: bool = False) -> tuple[int, int]:
    """End the person's console sessions and the operator tokens bound to them, and with `minted`
    the tokens they minted (directly or through a token); the counts."""
    sessions = session.execute(
        update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    theirs = (or_(ApiToken.user_id == user.id, ApiToken.created_by_user_id == user.id) if minted
              else ApiToken.user_id == user.id)
    tokens = session.execute(
        update(ApiToken).where(theirs, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
    )
    return int(sessions.rowcount or 0), int(tokens.rowcount or 0)  # type: ignore[attr-defined]


def create_person(
    session: Session, actor: Actor, *, username: str, role: str, org: str = "", display_name: str = "",
    known_orgs: Collection[str], approved: bool = False,
) -> CreatedPerson:
    """A new account with a one-time password it must change at first sign-in (as the bootstrap
    operator's); `known_orgs` are the registered tenants' slugs an org role may name. A new operator
    or auditor needs a second operator (`approved`, see accounts.staff_changes)."""
    _check_administrator(actor)
    username, org, display_name = username.strip(), org.strip(), display_name.strip()
    if actor.role is Role.ORG_ADMIN and not org:
        org = actor.org
    wanted = _check_role_and_org(actor, role, org, known_orgs)
    _check_not_org_password(actor, wanted, "create accounts")
    if wanted in STAFF_ROLES:
        _check_second_operator(session, actor, approved, f"a new {wanted.value}")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise InvalidInput(f"display name: at most {MAX_DISPLAY_NAME} characters")
    password = _new_one_time_password(username)
    user = create_user(session, username=username, password=password, role=wanted, org=org,
                       display_name=display_name, initiator=actor.audit_name, must_change_password=True)
    return CreatedPerson(user, password)


def list_people(session: Session, actor: Actor, *, org: str = "", role: str = "") -> list[User]:
    """The people `actor` administers, by username; an org admin sees only their organisation."""
    _check_administrator(actor)
    query = select(User).order_by(User.username)
    if actor.role is Role.ORG_ADMIN:
        query = query.where(User.org == actor.org, User.role.in_([r.value for r in ORG_ROLES]))
    if org:
        query = query.where(User.org == org)
    if role:
        if role not in {r.value for r in Role}:
            raise InvalidInput(f"role: expected one of {', '.join(r.value for r in Role)}")
        query = query.where(User.role == role)
    return list(session.scalars(query))


def get_person(session: Session, actor: Actor, username: str) -> User:
    return _person(session, actor, username)


def change_role(
    session: Session, actor: Actor, username: str, *, role: str, org: str = "", known_orgs: Collection[str],
    approved: bool = False,
) -> User:
    """A new role (and organisation). The person's sessions end: the new role may need MFA, which
    only a fresh sign-in enrols."""
    user = _person(session, actor, username)
    if user.id == actor.user_id:
        raise PermissionDenied("you cannot change your own role", hint="ask another administrator")
    org = org.strip()
    if actor.role is Role.ORG_ADMIN and not org:
        org = actor.org
    wanted = _check_role_and_org(actor, role, org, known_orgs)
    if wanted.value == user.role and org == user.org:
        return user
    if wanted in STAFF_ROLES and wanted.value != user.role:
        _check_second_operator(session, actor, approved, f"making someone {wanted.value}")
    if wanted is not Role.OPERATOR:
        _check_not_last_operator(session, user, "demoted")
    before = {"role": user.role, "org": user.org}
    user.role, user.org = wanted.value, org
    # What they minted was granted under the old role: it goes with it.
    sessions, tokens = _revoke_access(session, user, utcnow(), minted=True)
    record_event(session, action=AuditAction.ACCOUNT_ROLE_CHANGE, initiator=actor.audit_name,
                 target=f"user:{user.id}", org=org or before["org"],
                 detail={"username": user.username, "from": before, "to": {"role": wanted.value, "org": org},
                         "sessions_revoked": sessions, "tokens_revoked": tokens})
    return user


def disable_person(session: Session, actor: Actor, username: str) -> User:
    """Disable the account: its sessions, the API tokens bound to it and those it minted are revoked."""
    user = _person(session, actor, username)
    if user.id == actor.user_id:
        raise PermissionDenied("you cannot disable yourself", hint="ask another administrator")
    if user.disabled:
        return user
    _check_not_last_operator(session, user, "disabled")
    user.disabled = True
    sessions, tokens = _revoke_access(session, user, utcnow(), minted=True)
    record_event(session, action=AuditAction.ACCOUNT_DISABLE, initiator=actor.audit_name,
                 target=f"user:{user.id}", org=user.org,
                 detail={"username": user.username, "sessions_revoked": sessions, "tokens_revoked": tokens})
    return user


def enable_person(session: Session, actor: Actor, username: str) -> User:
    user = _person(session, actor, username)
    if user.disabled:
        user.disabled = False
        record_event(session, action=AuditAction.ACCOUNT_ENABLE, initiator=actor.audit_name,
                     target=f"user:{user.id}", org=user.org, detail={"username": user.username})
    return user


def reset_password(
    session: Session, actor: Actor, username: str, *, reset_mfa: bool = False, approved: bool = False,
) -> CreatedPerson:
    """A new one-time password (to change at next sign-in); sessions and bound tokens end. The
    authenticator is kept unless `reset_mfa` (a lost phone), which also drops the recovery codes.
    Another staff member's reset needs a second operator (`approved`)."""
    user = _person(session, actor, username)
    if user.id == actor.user_id:
        raise PermissionDenied("reset your own password by changing it",
                               hint="use the Password page, which asks for the current one")
    _check_not_org_password(actor, Role(user.role), "reset the passwords")
    if Role(user.role) in STAFF_ROLES:
        _check_second_operator(session, actor, approved, "resetting a staff member's password or MFA")
    password = _new_one_time_password(user.username)
    user.password_hash = hash_password(password)
    user.must_change_password = True
    if reset_mfa:
        user.mfa_secret_encrypted, user.mfa_enrolled_at, user.mfa_last_step = None, None, None
        session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    sessions, tokens = _revoke_access(session, user, utcnow())
    record_event(session, action=AuditAction.ACCOUNT_PASSWORD_RESET, initiator=actor.audit_name,
                 target=f"user:{user.id}", org=user.org,
                 detail={"username": user.username, "mfa_reset": reset_mfa,
                         "sessions_revoked": sessions, "tokens_revoked": tokens})
    return CreatedPerson(user, password)


def close_organisation(session: Session, org: str, initiator: str, now: datetime | None = None
                       ) -> dict[str, object]:
    """Decommission's first stage: the organisation's people are disabled, their sessions end, its
    tokens and open invites are revoked, in the caller's transaction (so with the stage change)."""
    now = now or utcnow()
    people = list(session.scalars(select(User).where(User.org == org, User.disabled.is_(False))))
    for user in people:
        user.disabled = True
    sessions = session.execute(
        update(LoginSession).where(LoginSession.revoked_at.is_(None),
                                   LoginSession.user_id.in_(select(User.id).where(User.org == org)))
        .values(revoked_at=now))
    tokens = session.execute(update(ApiToken).where(ApiToken.org == org, ApiToken.revoked_at.is_(None))
                             .values(revoked_at=now))
    invites = session.execute(update(OrgInvite).where(OrgInvite.org == org, OrgInvite.used_at.is_(None),
                                                      OrgInvite.expires_at > now).values(expires_at=now)
                              .execution_options(synchronize_session=False))
    counts = {"people_disabled": len(people),
              "sessions_revoked": int(sessions.rowcount or 0),  # type: ignore[attr-defined]
              "tokens_revoked": int(tokens.rowcount or 0),  # type: ignore[attr-defined]
              "invites_voided": int(invites.rowcount or 0)}  # type: ignore[attr-defined]
    record_event(session, action=AuditAction.ORG_ACCESS_CLOSE, initiator=initiator, target=f"org:{org}",
                 org=org, detail={**counts, "usernames": sorted(u.username for u in people)})
    return dict(counts)
