"""Console sessions beyond sign-in: the pending MFA step kept server-side, a person's list of their
own sessions and ending them, and fresh authentication before sensitive actions."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from controlplane.accounts import lockout, mfa
from controlplane.accounts.models import LoginSession, MfaPending, User
from controlplane.accounts.service import (
    Actor,
    LoginAttempt,
    LoginStage,
    session_digest,
    verify_password,
)
from controlplane.audit import AuditAction, record_event
from controlplane.errors import NotFound
from controlplane.metrics import ACCOUNT_LOGIN_FAILURES_TOTAL
from controlplane.storage import as_utc, utcnow

PENDING_LIFETIME = timedelta(minutes=5)
PENDING_MAX_ATTEMPTS = 5  # wrong codes on one pending sign-in before the password is asked again
FRESH_FOR = timedelta(minutes=5)
WRONG_REAUTH = "The password or the authenticator code is wrong."


# ------------------------------------------------------------------------ pending MFA sign-in
@dataclass(frozen=True)
class PendingLogin:
    """A password-verified sign-in waiting for its MFA step; it grants nothing by itself."""

    user_id: int
    stage: LoginStage
    next_url: str


def begin_pending(session: Session, *, user_id: int, stage: LoginStage, next_url: str,
                  client_ip: str = "", now: datetime | None = None) -> str:
    """Record a pending sign-in; returns the random token for the cookie (only its hash is kept)."""
    now = now or utcnow()
    session.execute(delete(MfaPending).where(MfaPending.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(MfaPending(id_hash=session_digest(token), user_id=user_id, stage=stage.value,
                           next_url=next_url[:256], client_ip=client_ip[:45], created_at=now,
                           expires_at=now + PENDING_LIFETIME, attempts=0))
    return token


def load_pending(session: Session, token: str, *, now: datetime | None = None) -> PendingLogin | None:
    """The live pending sign-in of that token, or None (unknown, expired, used up, user disabled)."""
    now = now or utcnow()
    row = session.get(MfaPending, session_digest(token))
    if row is None or as_utc(row.expires_at) <= now or row.attempts >= PENDING_MAX_ATTEMPTS:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return PendingLogin(row.user_id, LoginStage(row.stage), row.next_url)


def consume_pending(session: Session, token: str) -> bool:
    """Spend the pending sign-in (once: of two requests racing with it, one gets True)."""
    result = session.execute(delete(MfaPending).where(MfaPending.id_hash == session_digest(token)))
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


def count_pending_failure(session: Session, token: str) -> None:
    """One wrong code on this pending sign-in; after PENDING_MAX_ATTEMPTS it no longer counts."""
    session.execute(update(MfaPending).where(MfaPending.id_hash == session_digest(token))
                    .values(attempts=MfaPending.attempts + 1))


# -------------------------------------------------------------------------- one's own sessions
@dataclass(frozen=True)
class SessionInfo:
    """One of a person's live sessions, as their sessions page shows it."""

    id_hash: str
    created_at: datetime
    last_seen_at: datetime
    client_ip: str
    user_agent: str
    current: bool


def list_sessions(session: Session, actor: Actor, *, current_hash: str,
                  idle: timedelta, absolute: timedelta, now: datetime | None = None) -> list[SessionInfo]:
    """The actor's live sessions (not ended, not expired), newest first."""
    now = now or utcnow()
    rows = session.scalars(select(LoginSession).where(
        LoginSession.user_id == actor.user_id, LoginSession.revoked_at.is_(None),
        LoginSession.last_seen_at > now - idle, LoginSession.created_at > now - absolute,
    ).order_by(LoginSession.created_at.desc())).all()
    return [SessionInfo(r.id_hash, as_utc(r.created_at), as_utc(r.last_seen_at), r.client_ip,
                        r.user_agent, r.id_hash == current_hash) for r in rows]


def end_own_session(session: Session, actor: Actor, id_hash: str) -> None:
    """End one of the actor's sessions (another person's is not found)."""
    result = session.execute(
        update(LoginSession).where(LoginSession.id_hash == id_hash, LoginSession.user_id == actor.user_id,
                                   LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if int(result.rowcount or 0) != 1:  # type: ignore[attr-defined]
        raise NotFound("no such session of yours is open")
    record_event(session, action=AuditAction.ACCOUNT_SESSION_END, initiator=actor.audit_name,
                 target=f"user:{actor.user_id}", org=actor.org, detail={"sessions": 1})


def end_other_sessions(session: Session, actor: Actor, *, current_hash: str) -> int:
    """End every session of the actor but the current one; returns how many."""
    result = session.execute(
        update(LoginSession).where(LoginSession.user_id == actor.user_id,
                                   LoginSession.id_hash != current_hash,
                                   LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    ended = int(result.rowcount or 0)  # type: ignore[attr-defined]
    record_event(session, action=AuditAction.ACCOUNT_SESSION_END, initiator=actor.audit_name,
                 target=f"user:{actor.user_id}", org=actor.org, detail={"sessions": ended})
    return ended


# ------------------------------------------------------------------------ fresh authentication
def is_fresh(authenticated_at: datetime | None, *, now: datetime | None = None) -> bool:
    """Whether a session proved its person (password, and TOTP if enrolled) within FRESH_FOR."""
    return authenticated_at is not None and (now or utcnow()) - authenticated_at <= FRESH_FOR


def needs_code(session: Session, actor: Actor) -> bool:
    """Whether re-authentication asks an authenticator code too (the person has one)."""
    user = session.get(User, actor.user_id)
    return user is not None and mfa.mfa_enrolled(user)


def reauthenticate(
    session: Session, actor: Actor, *, current_hash: str, password: str, code: str,
    box: mfa.SecretBox, client_ip: str = "", now: datetime | None = None,
) -> LoginAttempt:
    """Check the password (and the TOTP or a recovery code, if enrolled) of a signed-in person
    again, throttled like sign-in; on success the session counts as fresh for FRESH_FOR."""
    now = now or utcnow()
    user = session.get(User, actor.user_id)
    if user is None or user.disabled:
        return LoginAttempt(None, message=WRONG_REAUTH)
    throttle = lockout.current_throttle(session, username=user.username, client_ip=client_ip, now=now)
    if throttle is not None:
        return LoginAttempt(None, message=throttle.message(now), locked_until=throttle.locked_until,
                            retry_after=throttle.retry_after(now))
    ok = verify_password(user, password)
    method = "password"
    if ok and mfa.mfa_enrolled(user):
        method = "totp"
        ok = mfa.check_totp(session, user, code, box, now=now)
        if not ok and mfa.looks_like_recovery_code(code):
            method = "recovery_code"
            ok = mfa.use_recovery_code(session, user.id, code, now=now)
    if not ok:
        ACCOUNT_LOGIN_FAILURES_TOTAL.labels("reauth").inc()
        record_event(session, action=AuditAction.ACCOUNT_REAUTH, initiator=actor.audit_name,
                     target=f"user:{user.id}", org=user.org, outcome="failure",
                     detail={"client_ip": client_ip})
        limited = lockout.record_failure(session, username=user.username, client_ip=client_ip,
                                         stage="reauth", now=now)
        if limited is not None:
            return LoginAttempt(None, message=limited.message(now), locked_until=limited.locked_until,
                                retry_after=limited.retry_after(now))
        # One message for either mistake: a guesser must not learn the password was right.
        return LoginAttempt(None, message=WRONG_REAUTH)
    session.execute(update(LoginSession).where(LoginSession.id_hash == current_hash)
                    .values(authenticated_at=now))
    record_event(session, action=AuditAction.ACCOUNT_REAUTH, initiator=actor.audit_name,
                 target=f"user:{user.id}", org=user.org, detail={"method": method, "client_ip": client_ip})
    return LoginAttempt(actor, LoginStage.DONE)
