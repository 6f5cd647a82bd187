"""Login throttling in the database (shared by every worker): per-username lockout, per-IP limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.accounts.models import LoginFailure, LoginLockout
from controlplane.audit import AuditAction, record_event
from controlplane.storage import as_utc, utcnow

USER_MAX_FAILURES = 5
IP_MAX_FAILURES = 20
WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)
KEEP_FAILURES = timedelta(days=1)


@dataclass(frozen=True)
class Throttle:
    """Why sign-in is refused right now, and until when."""

    locked_until: datetime
    by_ip: bool

    @property
    def message(self) -> str:
        until = self.locked_until.strftime("%H:%M UTC")
        if self.by_ip:
            return f"Too many failed sign-ins from your network. Try again after {until}."
        return (f"This account is locked after too many failed sign-ins until {until}. "
                "Try again then, or ask an operator.")


def _ip_limit(session: Session, client_ip: str, now: datetime) -> datetime | None:
    """Until when the IP is limited: the IP_MAX_FAILURES-th latest failure in the window, plus WINDOW."""
    if not client_ip:
        return None
    nth = session.scalar(
        select(LoginFailure.occurred_at)
        .where(LoginFailure.client_ip == client_ip, LoginFailure.occurred_at > now - WINDOW)
        .order_by(LoginFailure.occurred_at.desc())
        .offset(IP_MAX_FAILURES - 1).limit(1)
    )
    return as_utc(nth) + WINDOW if nth is not None else None


def current_throttle(session: Session, *, username: str, client_ip: str,
                     now: datetime | None = None) -> Throttle | None:
    now = now or utcnow()
    until = _ip_limit(session, client_ip, now)
    if until is not None and until > now:
        return Throttle(until, by_ip=True)
    lock = session.get(LoginLockout, username[:64])
    if lock is not None and as_utc(lock.locked_until) > now:
        return Throttle(as_utc(lock.locked_until), by_ip=False)
    return None


def _lock(session: Session, username: str, *, now: datetime, until: datetime) -> None:
    lock = session.get(LoginLockout, username)
    if lock is None:
        try:
            # Another worker may lock the same name at the same moment: a savepoint keeps our
            # transaction (and its audit events) alive if its row wins the insert.
            with session.begin_nested():
                session.add(LoginLockout(username=username, locked_at=now, locked_until=until))
            return
        except IntegrityError:
            lock = session.get(LoginLockout, username, populate_existing=True)
    if lock is not None:
        lock.locked_at, lock.locked_until = now, until


def record_failure(session: Session, *, username: str, client_ip: str, stage: str,
                   now: datetime | None = None) -> Throttle | None:
    """Count one failure; lock the username (or limit the IP) when it crosses a limit, audited."""
    now = now or utcnow()
    username = username[:64]
    session.execute(delete(LoginFailure).where(LoginFailure.occurred_at < now - KEEP_FAILURES))
    session.add(LoginFailure(occurred_at=now, username=username, client_ip=client_ip[:45], stage=stage))
    session.flush()
    recent = session.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.username == username, LoginFailure.occurred_at > now - WINDOW)) or 0
    throttle: Throttle | None = None
    if recent >= USER_MAX_FAILURES:
        until = now + LOCK_DURATION
        _lock(session, username, now=now, until=until)
        # While locked no attempt is checked, so no failure is added; when the lock ends, the
        # failures that caused it are older than the window and the count starts again.
        record_event(session, action=AuditAction.ACCOUNT_LOCKOUT, initiator=f"user:{username}",
                     target=f"user:{username}",
                     detail={"until": until.isoformat(), "failures": recent, "stage": stage,
                             "client_ip": client_ip})
        throttle = Throttle(until, by_ip=False)
    ip_until = _ip_limit(session, client_ip, now)
    if ip_until is not None and ip_until > now:
        record_event(session, action=AuditAction.ACCOUNT_LOCKOUT, initiator=f"client:{client_ip}",
                     target=f"client:{client_ip}",
                     detail={"until": ip_until.isoformat(), "failures": IP_MAX_FAILURES})
        throttle = Throttle(ip_until, by_ip=True)
    return throttle


def clear_failures(session: Session, username: str) -> None:
    """After a complete sign-in, earlier failures of that name no longer count towards a lock."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == username[:64]))
    session.execute(delete(LoginLockout).where(LoginLockout.username == username[:64]))
