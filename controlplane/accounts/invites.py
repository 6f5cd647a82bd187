"""One-time invites for an organisation's first admin: an operator bootstraps an organisation without
ever learning a password or holding a token of it. Only the code's SHA-256 is stored; a code is used
once, within 72 hours, and the invitee sets their own password."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controlplane.accounts.models import OrgInvite, Role, User
from controlplane.accounts.service import MIN_PASSWORD_LENGTH, USERNAME_RE, Actor, create_user
from controlplane.audit import AuditAction, record_event
from controlplane.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from controlplane.storage import utcnow

LIFETIME = timedelta(hours=72)
INVALID = "this invite code is not valid, was already used or has expired; ask the data center for a new one"


@dataclass(frozen=True)
class CreatedInvite:
    """The invite and its code, shown once to the operator to pass on."""

    invite: OrgInvite
    code: str


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def create_invite(session: Session, actor: Actor, *, org: str, username: str, display_name: str = "",
                  known_orgs: Collection[str], now: datetime | None = None) -> CreatedInvite:
    """Invite `org`'s first admin (the organisation has no enabled admin): a one-time code."""
    now = now or utcnow()
    if actor.role is not Role.OPERATOR or actor.person_id is None:
        raise PermissionDenied("only an operator invites an organisation's first admin")
    username, display_name = username.strip(), display_name.strip()[:200]
    if org not in known_orgs:
        raise InvalidInput(f"organisation {org!r} is not a registered tenant, or is being decommissioned")
    if not USERNAME_RE.match(username):
        raise InvalidInput("username must start with a letter and use only a-z, 0-9, '.', '_' or '-' "
                           "(2-64 chars)")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username!r} is already taken")
    admins = session.scalar(select(User.id).where(User.org == org, User.role == Role.ORG_ADMIN.value,
                                                  User.disabled.is_(False)).limit(1))
    if admins is not None:
        raise Conflict(f"{org} already has an admin: its admins add its people",
                       hint="an invite bootstraps only an organisation with no enabled admin")
    if session.scalar(select(OrgInvite.id).where(OrgInvite.username == username, OrgInvite.used_at.is_(None),
                                                 OrgInvite.expires_at > now)) is not None:
        raise Conflict(f"an invite for {username!r} is already open")
    code = secrets.token_urlsafe(24)
    invite = OrgInvite(org=org, username=username, display_name=display_name, secret_hash=_digest(code),
                       created_by_user_id=actor.person_id, created_by=actor.audit_name, created_at=now,
                       expires_at=now + LIFETIME)
    session.add(invite)
    session.flush()
    record_event(session, action=AuditAction.ACCOUNT_INVITE, initiator=actor.audit_name,
                 target=f"invite:{invite.id}", org=org,
                 detail={"username": username, "role": Role.ORG_ADMIN.value,
                         "expires_at": invite.expires_at.isoformat()})
    return CreatedInvite(invite, code)


def accept_invite(session: Session, *, code: str, password: str, known_orgs: Collection[str],
                  now: datetime | None = None) -> User:
    """The invitee's own password makes the account; the code is spent by a conditional UPDATE, so
    two posts of one code make one account."""
    now = now or utcnow()
    invite = session.scalar(select(OrgInvite).where(OrgInvite.secret_hash == _digest(code)))
    if invite is None or invite.used_at is not None or invite.org not in known_orgs:
        raise NotFound(INVALID)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    spent = session.execute(update(OrgInvite).where(OrgInvite.id == invite.id, OrgInvite.used_at.is_(None),
                                                    OrgInvite.expires_at > now).values(used_at=now)
                            .execution_options(synchronize_session=False))  # SQL decides, not Python
    session.refresh(invite)
    if int(spent.rowcount or 0) != 1:  # type: ignore[attr-defined]
        raise NotFound(INVALID)
    user = create_user(session, username=invite.username, password=password, role=Role.ORG_ADMIN,
                       org=invite.org, display_name=invite.display_name, initiator=f"invite:{invite.id}")
    invite.user_id = user.id
    record_event(session, action=AuditAction.ACCOUNT_INVITE_ACCEPT, initiator=f"user:{user.username}",
                 target=f"invite:{invite.id}", org=invite.org,
                 detail={"username": user.username, "invited_by": invite.created_by})
    return user
