"""Login throttling in the database (shared by every worker): growing delays per (name, address),
a cap per address. No username is ever locked, so nobody can lock an owner out from elsewhere."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from controlplane.accounts.models import LoginFailure
from controlplane.audit import AuditAction, record_event
from controlplane.storage import as_utc, utcnow

# Failures of one name from one address, counted over PAIR_WINDOW: the n-th failure makes the next
# try wait DELAYS[n] (0, 1, 2, 4, ... s, capped): a guesser slows to a crawl, while the owner
# signing in from any other address is not slowed at all.
PAIR_WINDOW = timedelta(hours=1)
FREE_FAILURES = 1  # a typo costs nothing
MAX_DELAY = timedelta(seconds=60)
# Failures from one address over IP_WINDOW, whatever the names: above this, that address waits.
IP_MAX_FAILURES = 20
IP_WINDOW = timedelta(minutes=15)
KEEP_FAILURES = timedelta(days=1)


def address_key(client_ip: str) -> str:
    """What the throttle counts as one address: an IPv4 address, or an IPv6 /64 (one subscriber
    gets a whole /64, so single IPv6 addresses would let a guesser start afresh at will)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip[:45]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else address)


def delay_after(failures: int) -> timedelta:
    """How long the next attempt of a (name, address) waits after `failures` recent failures."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    exponent = failures - FREE_FAILURES - 1
    if exponent >= 32:  # 2**32 s is far beyond any cap
        return MAX_DELAY
    return min(timedelta(seconds=2 ** exponent), MAX_DELAY)


@dataclass(frozen=True)
class Throttle:
    """Why an attempt is refused unchecked right now, and until when."""

    locked_until: datetime
    by_ip: bool

    def message(self, now: datetime) -> str:
        if self.by_ip:
            until = self.locked_until.strftime("%H:%M UTC")
            return f"Too many failed sign-ins from your network. Try again after {until}."
        return (f"Too many failed sign-ins for this name from your address. Wait "
                f"{self.retry_after(now)} seconds and try again.")

    def retry_after(self, now: datetime) -> int:
        return max(1, math.ceil((self.locked_until - now).total_seconds()))


def _ip_limit(session: Session, client_ip: str, now: datetime) -> datetime | None:
    """Until when the address is limited: its IP_MAX_FAILURES-th latest failure plus IP_WINDOW."""
    if not client_ip:
        return None
    nth = session.scalar(
        select(LoginFailure.occurred_at)
        .where(LoginFailure.client_ip == address_key(client_ip),
               LoginFailure.occurred_at > now - IP_WINDOW)
        .order_by(LoginFailure.occurred_at.desc())
        .offset(IP_MAX_FAILURES - 1).limit(1)
    )
    return as_utc(nth) + IP_WINDOW if nth is not None else None


def _pair_wait(session: Session, username: str, client_ip: str, now: datetime) -> datetime | None:
    """Until when this (name, address) waits: its last failure plus the delay its count earns."""
    count, last = session.execute(
        select(func.count(), func.max(LoginFailure.occurred_at)).where(
            LoginFailure.username == username[:64], LoginFailure.client_ip == address_key(client_ip),
            LoginFailure.occurred_at > now - PAIR_WINDOW)
    ).one()
    if not count or last is None:
        return None
    delay = delay_after(int(count))
    return as_utc(last) + delay if delay else None


def current_throttle(session: Session, *, username: str, client_ip: str,
                     now: datetime | None = None) -> Throttle | None:
    """The throttle refusing an attempt of `username` from `client_ip` now, if any."""
    now = now or utcnow()
    until = _ip_limit(session, client_ip, now)
    if until is not None and until > now:
        return Throttle(until, by_ip=True)
    wait = _pair_wait(session, username, client_ip, now)
    if wait is not None and wait > now:
        return Throttle(wait, by_ip=False)
    return None


def record_failure(session: Session, *, username: str, client_ip: str, stage: str,
                   now: datetime | None = None) -> Throttle | None:
    """Count one failure. Returns the address limit if this failure reached it (audited); the
    growing per-(name, address) delay is not returned: the next attempt finds it."""
    now = now or utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.occurred_at < now - KEEP_FAILURES))
    session.add(LoginFailure(occurred_at=now, username=username[:64],
                             client_ip=address_key(client_ip), stage=stage))
    session.flush()
    ip_until = _ip_limit(session, client_ip, now)
    if ip_until is not None and ip_until > now:
        record_event(session, action=AuditAction.ACCOUNT_LOCKOUT, initiator=f"client:{client_ip}",
                     target=f"client:{client_ip}",
                     detail={"until": ip_until.isoformat(), "failures": IP_MAX_FAILURES})
        return Throttle(ip_until, by_ip=True)
    return None


def next_delay(session: Session, *, username: str, client_ip: str, now: datetime | None = None) -> int:
    """Seconds the next attempt of this (name, address) must wait (0 if none), for the message."""
    now = now or utcnow()
    wait = _pair_wait(session, username, client_ip, now)
    return max(0, math.ceil((wait - now).total_seconds())) if wait is not None else 0


def clear_failures(session: Session, username: str, client_ip: str) -> None:
    """After a complete sign-in, that address's failures for the name no longer slow it (other
    addresses' failures stay: the owner signing in must not reset a guesser's delay)."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == username[:64],
                                               LoginFailure.client_ip == address_key(client_ip)))
