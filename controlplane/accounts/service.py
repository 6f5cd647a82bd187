"""Account use-cases: password hashing, the bootstrap operator, sign-in (password, throttle, TOTP)
and server-side sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controlplane.accounts import lockout, mfa
from controlplane.accounts.models import LoginSession, Role, User
from controlplane.audit import AuditAction, record_event
from controlplane.errors import Conflict, InvalidInput, NotAuthenticated
from controlplane.metrics import ACCOUNT_LOGIN_FAILURES_TOTAL
from controlplane.storage import as_utc, utcnow

BOOTSTRAP_USERNAME = "admin"
MIN_PASSWORD_LENGTH = 12
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps login time the same for both cases.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Actor:
    """Who is acting: what authorisation decisions and audit events need to know."""

    user_id: int
    username: str
    role: Role
    org: str
    must_change_password: bool = False

    @property
    def audit_name(self) -> str:
        return f"user:{self.username}"

    @property
    def person_id(self) -> int | None:
        """The person behind this actor, whatever the channel: separation of duties compares it."""
        return self.user_id or None


def _as_actor(user: User) -> Actor:
    return Actor(user.id, user.username, Role(user.role), user.org, user.must_change_password)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        return bool(_hasher.verify(user.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str, *, username: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise InvalidInput("the password must not contain the username")


def create_user(
    session: Session, *, username: str, password: str, role: Role, org: str = "",
    display_name: str = "", initiator: str, must_change_password: bool = False,
) -> User:
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "username must start with a letter and use only a-z, 0-9, '.', '_' or '-' (2-64 chars)"
        )
    if role in (Role.ORG_ADMIN, Role.ORG_MEMBER) and not org:
        raise InvalidInput(f"a {role.value} must belong to an organisation")
    check_password_strength(password, username=username)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username!r} is already taken")
    user = User(
        username=username, role=role.value, org=org, display_name=display_name or username,
        password_hash=hash_password(password), must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    record_event(
        session, action=AuditAction.ACCOUNT_CREATE, initiator=initiator, target=f"user:{user.id}",
        org=org, detail={"username": username, "role": role.value},
    )
    return user


def ensure_bootstrap_operator(session: Session) -> str | None:
    """Create the first operator if no operator exists; return its one-time password, else None."""
    exists = session.scalar(select(User.id).where(User.role == Role.OPERATOR.value).limit(1))
    if exists is not None:
        return None
    password = secrets.token_urlsafe(18)
    user = create_user(
        session, username=BOOTSTRAP_USERNAME, password=password, role=Role.OPERATOR,
        display_name="Bootstrap operator", initiator="system:bootstrap", must_change_password=True,
    )
    record_event(
        session, action=AuditAction.ACCOUNT_BOOTSTRAP, initiator="system:bootstrap",
        target=f"user:{user.id}",
    )
    return password


class LoginStage(StrEnum):
    """What a sign-in needs next."""

    DONE = "done"  # fully signed in: start the session
    MFA_CODE = "mfa_code"  # password right; ask the authenticator code
    MFA_ENROL = "mfa_enrol"  # password right; MFA is required but not set up yet


@dataclass(frozen=True)
class LoginAttempt:
    """The outcome of one sign-in step: an actor and what comes next, or a refusal with its message."""

    actor: Actor | None
    stage: LoginStage | None = None
    message: str = ""
    locked_until: datetime | None = None  # refused unchecked (throttled) until then: a 429
    retry_after: int = 0  # seconds, for the Retry-After header of that 429

    @property
    def refused(self) -> bool:
        return self.actor is None


WRONG_CREDENTIALS = "Wrong username or password."
WRONG_CODE = "That code is not valid. Enter the current code from your authenticator app."


def _refuse(session: Session, *, username: str, client_ip: str, stage: str, message: str,
            now: datetime) -> LoginAttempt:
    ACCOUNT_LOGIN_FAILURES_TOTAL.labels(stage).inc()
    throttle = lockout.record_failure(session, username=username, client_ip=client_ip, stage=stage,
                                      now=now)
    if throttle is not None:
        return LoginAttempt(None, message=throttle.message(now), locked_until=throttle.locked_until,
                            retry_after=throttle.retry_after(now))
    wait = lockout.next_delay(session, username=username, client_ip=client_ip, now=now)
    if wait:
        message = f"{message} Wait {wait} seconds before the next try."
    return LoginAttempt(None, message=message)


def _throttled(session: Session, *, username: str, client_ip: str, stage: str,
               now: datetime) -> LoginAttempt | None:
    throttle = lockout.current_throttle(session, username=username, client_ip=client_ip, now=now)
    if throttle is None:
        return None
    record_event(session, action=AuditAction.ACCOUNT_LOGIN, initiator=f"user:{username[:64]}",
                 target=f"user:{username[:64]}", outcome="failure",
                 detail={"reason": "client limited" if throttle.by_ip else "slowed", "stage": stage,
                         "client_ip": client_ip})
    return LoginAttempt(None, message=throttle.message(now), locked_until=throttle.locked_until,
                        retry_after=throttle.retry_after(now))


def _complete_login(session: Session, user: User, *, client_ip: str, method: str) -> LoginAttempt:
    user.last_login_at = utcnow()
    lockout.clear_failures(session, user.username, client_ip)
    record_event(session, action=AuditAction.ACCOUNT_LOGIN, initiator=f"user:{user.username}",
                 target=f"user:{user.id}", org=user.org,
                 detail={"method": method, "client_ip": client_ip})
    return LoginAttempt(_as_actor(user), LoginStage.DONE)


def check_password_step(
    session: Session, *, username: str, password: str, client_ip: str = "",
    now: datetime | None = None,
) -> LoginAttempt:
    """First sign-in step. A failure is audited and counted, not raised, so the caller's
    transaction commits it; a (name, address) still waiting out its delay, or a limited address,
    is refused without checking."""
    now = now or utcnow()
    refused = _throttled(session, username=username, client_ip=client_ip, stage="password", now=now)
    if refused:
        return refused
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and not user.disabled
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        record_event(
            session, action=AuditAction.ACCOUNT_LOGIN, initiator=f"user:{username[:64]}",
            target=f"user:{user.id}" if user else "user:unknown", outcome="failure",
            detail={"stage": "password", "client_ip": client_ip},
        )
        return _refuse(session, username=username, client_ip=client_ip, stage="password",
                       message=WRONG_CREDENTIALS, now=now)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if mfa.mfa_enrolled(user) or mfa.mfa_required(user):
        stage = LoginStage.MFA_CODE if mfa.mfa_enrolled(user) else LoginStage.MFA_ENROL
        record_event(session, action=AuditAction.ACCOUNT_LOGIN, initiator=f"user:{username}",
                     target=f"user:{user.id}", org=user.org, outcome="pending",
                     detail={"next": stage.value, "client_ip": client_ip})
        return LoginAttempt(_as_actor(user), stage)
    return _complete_login(session, user, client_ip=client_ip, method="password")


def _pending_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.disabled:
        raise NotAuthenticated("this sign-in is no longer valid; sign in again")
    return user


def check_mfa_step(
    session: Session, *, user_id: int, code: str, box: mfa.SecretBox, client_ip: str = "",
    now: datetime | None = None,
) -> LoginAttempt:
    """Second step for an enrolled user: a TOTP code (or a one-time recovery code)."""
    now = now or utcnow()
    user = _pending_user(session, user_id)
    refused = _throttled(session, username=user.username, client_ip=client_ip, stage="mfa", now=now)
    if refused:
        return refused
    if not mfa.mfa_enrolled(user):
        raise NotAuthenticated("this account has no authenticator; sign in again")
    if mfa.check_totp(session, user, code, box, now=now):
        return _complete_login(session, user, client_ip=client_ip, method="totp")
    if mfa.looks_like_recovery_code(code) and mfa.use_recovery_code(session, user.id, code, now=now):
        record_event(session, action=AuditAction.ACCOUNT_MFA_RECOVERY_USE,
                     initiator=f"user:{user.username}", target=f"user:{user.id}", org=user.org,
                     detail={"left": mfa.unused_recovery_codes(session, user.id)})
        return _complete_login(session, user, client_ip=client_ip, method="recovery_code")
    record_event(session, action=AuditAction.ACCOUNT_MFA_VERIFY, initiator=f"user:{user.username}",
                 target=f"user:{user.id}", org=user.org, outcome="failure",
                 detail={"client_ip": client_ip})
    return _refuse(session, username=user.username, client_ip=client_ip, stage="mfa",
                   message=WRONG_CODE, now=now)


def begin_mfa_enrolment(session: Session, *, user_id: int, box: mfa.SecretBox) -> mfa.MfaEnrolment:
    """The secret to show on the enrolment page (the same one until confirmed)."""
    user = _pending_user(session, user_id)
    enrolment, created = mfa.begin_enrolment(session, user.id, box)
    if created:
        record_event(session, action=AuditAction.ACCOUNT_MFA_ENROL, initiator=f"user:{user.username}",
                     target=f"user:{user.id}", org=user.org, outcome="pending")
    return enrolment


def confirm_mfa_enrolment(
    session: Session, *, user_id: int, code: str, box: mfa.SecretBox, client_ip: str = "",
    now: datetime | None = None,
) -> tuple[LoginAttempt, list[str]]:
    """Confirm enrolment with a first code; returns the sign-in and the recovery codes (shown once)."""
    now = now or utcnow()
    user = _pending_user(session, user_id)
    refused = _throttled(session, username=user.username, client_ip=client_ip, stage="mfa", now=now)
    if refused:
        return refused, []
    if mfa.mfa_enrolled(user):
        raise Conflict("this account already has an authenticator")
    if not mfa.check_totp(session, user, code, box, now=now):
        record_event(session, action=AuditAction.ACCOUNT_MFA_ENROL, initiator=f"user:{user.username}",
                     target=f"user:{user.id}", org=user.org, outcome="failure",
                     detail={"client_ip": client_ip})
        return _refuse(session, username=user.username, client_ip=client_ip, stage="mfa",
                       message=WRONG_CODE, now=now), []
    mfa.confirm_enrolment(user, now=now)
    codes = mfa.replace_recovery_codes(session, user.id)
    record_event(session, action=AuditAction.ACCOUNT_MFA_ENROL, initiator=f"user:{user.username}",
                 target=f"user:{user.id}", org=user.org, detail={"recovery_codes": len(codes)})
    return _complete_login(session, user, client_ip=client_ip, method="totp"), codes


def change_password(session: Session, actor: Actor, *, current: str, new: str,
                    keep_session: str | None = None) -> int:
    """Change the actor's password and end every other session of theirs (whoever knew the old
    password may be signed in elsewhere); `keep_session` is the token of the session making the
    change. Returns how many sessions were ended."""
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotAuthenticated("your account no longer exists")
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise InvalidInput("the current password is wrong") from None
    if new == current:
        raise InvalidInput("the new password must differ from the current one")
    check_password_strength(new, username=user.username)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    others = update(LoginSession).where(LoginSession.user_id == user.id,
                                        LoginSession.revoked_at.is_(None))
    if keep_session:
        others = others.where(LoginSession.id_hash != _digest(keep_session))
    result = session.execute(others.values(revoked_at=utcnow()))
    ended = int(result.rowcount or 0)  # type: ignore[attr-defined]
    record_event(session, action=AuditAction.ACCOUNT_PASSWORD_CHANGE, initiator=actor.audit_name,
                 target=f"user:{user.id}", org=user.org, detail={"sessions_ended": ended})
    return ended


# ------------------------------------------------------------------------------- sessions
def session_digest(token: str) -> str:
    """How a session (or pending sign-in) token is stored: only its SHA-256."""
    return _digest(token)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, actor: Actor, *, client_ip: str = "", user_agent: str = "",
                  now: datetime | None = None) -> str:
    """Start a fully signed-in console session (call only after every sign-in step, MFA included,
    so it counts as freshly authenticated); the returned token goes in the (signed) cookie, its
    hash in the DB."""
    token = secrets.token_urlsafe(32)
    now = now or utcnow()
    session.add(LoginSession(id_hash=_digest(token), user_id=actor.user_id, created_at=now,
                             last_seen_at=now, authenticated_at=now, client_ip=client_ip[:45],
                             user_agent=user_agent[:200]))
    return token


@dataclass(frozen=True)
class SessionState:
    """A live console session: who, and when they last proved it (for fresh authentication)."""

    actor: Actor
    id_hash: str
    authenticated_at: datetime | None


def resume_session(
    session: Session, token: str, *, idle: timedelta, absolute: timedelta,
    now: datetime | None = None,
) -> Actor | None:
    """The actor of a live session, touching its last-seen time; None if unknown, revoked or expired."""
    state = resume_session_state(session, token, idle=idle, absolute=absolute, now=now)
    return state.actor if state else None


def resume_session_state(
    session: Session, token: str, *, idle: timedelta, absolute: timedelta,
    now: datetime | None = None,
) -> SessionState | None:
    """resume_session, with the session's id and last authentication."""
    now = now or utcnow()
    row = session.get(LoginSession, _digest(token))
    if row is None or row.revoked_at is not None:
        return None
    created, seen = as_utc(row.created_at), as_utc(row.last_seen_at)
    if now - seen > idle or now - created > absolute:
        row.revoked_at = now
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    # Touch at most once a minute: a write per request would serialise every page view.
    if now - seen > timedelta(minutes=1):
        row.last_seen_at = now
    authenticated = as_utc(row.authenticated_at) if row.authenticated_at else None
    return SessionState(_as_actor(user), row.id_hash, authenticated)


def end_session(session: Session, token: str, *, actor: Actor | None) -> None:
    session.execute(
        update(LoginSession).where(LoginSession.id_hash == _digest(token))
        .values(revoked_at=utcnow())
    )
    if actor is not None:
        record_event(session, action=AuditAction.ACCOUNT_LOGOUT, initiator=actor.audit_name,
                     target=f"user:{actor.user_id}", org=actor.org)
