"""Read-only queries of the auditor console: filtered events by keyset page, aggregated timelines,
per-organisation activity, approval and key histories, and document verification statistics."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Select,
    String,
    and_,
    case,
    column,
    func,
    select,
    table,
    union_all,
)
from sqlalchemy.orm import Session

from controlplane.audit.hours import hour_of, next_hour
from controlplane.audit.models import ALL_ORGS, AuditEvent, AuditEventHour
from controlplane.errors import InvalidInput

PAGE_SIZE = 50
EXPORT_BATCH = 1000
MAX_FILTER = 120
ORG_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
ACTION_RE = re.compile(r"^[a-z_]+(:[a-z_*]+)*:?$")
OUTCOMES = ("success", "failure", "pending")
APPROVAL_ACTIONS = ("request:approve", "request:reject")
# No code rotates keys yet: whoever adds rotation records one of these names, and this page lists it.
KEY_ACTIONS = ("key:create", "key:rotate", "key:retire", "audit:key:rotate", "trust_root:rotate")
HOUR_BUCKETS_MAX = timedelta(days=14)
DAY_BUCKETS_MAX = timedelta(days=400)
DEFAULT_WINDOW = timedelta(days=7)
VERIFICATION_TABLE = "document_verification_counts"  # owned by controlplane.documents


def _parse_time(name: str, raw: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise InvalidInput(f"{name}: expected a UTC time like 2026-11-28T14:30 or a date like 2026-11-28")


@dataclass(frozen=True)
class EventFilter:
    """What the auditor asked for; every field optional. Times are UTC, `until` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    org: str = ""
    actor: str = ""
    action: str = ""  # exact, or a prefix ending in ':' ("request:")
    outcome: str = ""

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> EventFilter:
        def text(name: str) -> str:
            value = (args.get(name) or "").strip()
            if len(value) > MAX_FILTER:
                raise InvalidInput(f"{name}: at most {MAX_FILTER} characters")
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise InvalidInput(f"{name}: control characters are not allowed")
            return value

        org, action, outcome = text("org").lower(), text("action").lower(), text("outcome")
        if org and not ORG_RE.match(org):
            raise InvalidInput("org: expected an organisation's slug, e.g. health")
        if action and not ACTION_RE.match(action):
            raise InvalidInput("action: expected a name like request:approve or a prefix like request:")
        if outcome and outcome not in OUTCOMES:
            raise InvalidInput(f"outcome: expected one of {', '.join(OUTCOMES)}")
        since, until = _parse_time("since", text("since")), _parse_time("until", text("until"))
        if since and until and since >= until:
            raise InvalidInput("since must be before until")
        return cls(since=since, until=until, org=org, actor=text("actor"), action=action, outcome=outcome)

    def conditions(self) -> list[ColumnElement[bool]]:
        e = AuditEvent
        out: list[ColumnElement[bool]] = []
        if self.since:
            out.append(e.occurred_at >= self.since)
        if self.until:
            out.append(e.occurred_at < self.until)
        if self.org:
            out.append(e.org == self.org)
        if self.actor:
            out.append(e.initiator == self.actor)
        if self.action.endswith(":"):
            out.append(e.action.startswith(self.action, autoescape=True))
        elif self.action:
            out.append(e.action == self.action)
        if self.outcome:
            out.append(e.outcome == self.outcome)
        return out

    def as_args(self) -> dict[str, str]:
        """The filter as query arguments (for links to the next page and the exports)."""
        out = {k: v for k, v in asdict(self).items() if isinstance(v, str) and v}
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                out[name] = value.strftime("%Y-%m-%dT%H:%M")
        return out

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The time range a chart covers: as asked, else the last seven days."""
        until = self.until or now
        return self.since or until - DEFAULT_WINDOW, until


@dataclass(frozen=True)
class EventRow:
    id: int
    occurred_at: datetime
    action: str
    outcome: str
    initiator: str
    target: str
    observer: str
    org: str
    detail: dict[str, Any]
    event_uuid: str  # the CADF id
    leaf_index: int | None  # position in the Merkle log; None until sequenced

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "occurred_at": self.occurred_at.astimezone(UTC).isoformat()}


# The columns of an EventRow, in its field order: pages and exports read plain rows, no ORM objects
# (an export of 1,000,000 events is several times faster so).
_COLUMNS = (AuditEvent.id, AuditEvent.occurred_at, AuditEvent.action, AuditEvent.outcome,
            AuditEvent.initiator, AuditEvent.target, AuditEvent.observer, AuditEvent.org, AuditEvent.detail,
            AuditEvent.event_uuid, AuditEvent.leaf_index)


def _row(values: Sequence[Any]) -> EventRow:
    event_id, occurred, *rest = values
    occurred = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)  # SQLite: naive UTC
    action, outcome, initiator, target, observer, org, detail, event_uuid, leaf_index = rest
    return EventRow(event_id, occurred, action, outcome, initiator, target, observer, org,
                    dict(detail or {}), event_uuid, leaf_index)


@dataclass(frozen=True)
class EventPage:
    rows: list[EventRow]
    older: int | None  # the `before` cursor of the next (older) page, None at the end


def _filtered(flt: EventFilter, actions: Sequence[str] = ()) -> Select[Any]:
    query: Select[Any] = select(*_COLUMNS)
    conditions = flt.conditions()
    if actions:
        conditions.append(AuditEvent.action.in_(actions))
    return query.where(and_(*conditions)) if conditions else query


def search_events(session: Session, flt: EventFilter, *, before: int | None = None,
                  limit: int = PAGE_SIZE, actions: Sequence[str] = ()) -> EventPage:
    """Newest first, `limit` rows older than the `before` id: keyset pages cost the same at any depth."""
    query = _filtered(flt, actions)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    found = list(session.execute(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    rows = [_row(r) for r in found[:limit]]
    return EventPage(rows, rows[-1].id if len(found) > limit and rows else None)


def get_event(session: Session, event_id: int) -> EventRow | None:
    found = session.execute(select(*_COLUMNS).where(AuditEvent.id == event_id)).first()
    return _row(found) if found is not None else None


def iter_events(session_factory: Callable[[], AbstractContextManager[Session]], flt: EventFilter, *,
                max_rows: int) -> Iterator[EventRow]:
    """Every matching event, newest first, read in keyset batches each in its own short transaction,
    so a long export never holds one open. `session_factory()` is a context manager (Database.transaction)."""
    before: int | None = None
    sent = 0
    while sent < max_rows:
        with session_factory() as session:
            page = search_events(session, flt, before=before, limit=min(EXPORT_BATCH, max_rows - sent))
        yield from page.rows
        sent += len(page.rows)
        if page.older is None:
            return
        before = page.older


def _bucket(session: Session, unit: str, col: Any) -> Any:
    """The start of the hour or day of `col`, as text 'YYYY-MM-DD HH:00' in UTC, on either dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc(unit, func.timezone("UTC", col)), "YYYY-MM-DD HH24:00")
    return func.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d 00:00", col)


def bucket_unit(start: datetime, end: datetime) -> str:
    if end - start > DAY_BUCKETS_MAX:
        raise InvalidInput("the chart covers at most 400 days; narrow since/until")
    return "hour" if end - start <= HOUR_BUCKETS_MAX else "day"


@dataclass(frozen=True)
class Timeline:
    unit: str  # hour | day
    start: datetime
    end: datetime
    series: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # bucket label -> series -> count


def event_timeline(session: Session, flt: EventFilter, *, now: datetime, use_hours: bool = True) -> Timeline:
    """Events per hour (≤ 14 days) or day by outcome, counted by the database, not in Python.

    Whole hours come from audit_event_hours (every sequenced event, counted by the sequencer) plus
    the events still waiting for it; the part hours at either end of the window, and filters by
    actor or action (not kept per hour), are counted from the log itself. One statement, so one snapshot: an
    event the sequencer takes meanwhile is counted once, not twice or never. `use_hours=False`
    counts everything from the log (the reference that tests and bench/audit compare with)."""
    start, end = flt.window(now)
    unit = bucket_unit(start, end)
    # A chart that ends now shows the current hour whole (events a skewed clock stamped a few
    # minutes ahead included), so its last bar comes from the hourly counts too.
    count_until = next_hour(end) if flt.until is None else end
    first, last = next_hour(start), hour_of(count_until)

    def from_log(since: datetime, until: datetime, *extra: ColumnElement[bool]) -> Select[Any]:
        bucket = _bucket(session, unit, AuditEvent.occurred_at)
        part = EventFilter(since=since, until=until, org=flt.org, actor=flt.actor, action=flt.action,
                           outcome=flt.outcome)
        return (select(bucket.label("bucket"), AuditEvent.outcome.label("outcome"), func.count().label("n"))
                .where(*part.conditions(), *extra).group_by(bucket, AuditEvent.outcome))

    if flt.actor or flt.action or first >= last or not use_hours:
        parts = [from_log(start, count_until)]
    else:
        h = AuditEventHour
        bucket = _bucket(session, unit, h.hour)
        counted = (select(bucket.label("bucket"), h.outcome.label("outcome"), func.sum(h.events).label("n"))
                   .where(h.hour >= first, h.hour < last, *_hour_conditions(flt))
                   .group_by(bucket, h.outcome))
        parts = [counted, from_log(first, last, AuditEvent.leaf_index.is_(None))]
        parts += [from_log(a, b) for a, b in ((start, first), (last, count_until)) if a < b]
    union = union_all(*parts).subquery()
    query = select(union.c.bucket, union.c.outcome, func.sum(union.c.n)).group_by(
        union.c.bucket, union.c.outcome)
    counts: dict[str, dict[str, int]] = {}
    for label, outcome, n in session.execute(query):
        counts.setdefault(str(label), {})[outcome] = int(n)
    return Timeline(unit, start, end, OUTCOMES, counts)


def _hour_conditions(flt: EventFilter) -> list[ColumnElement[bool]]:
    h = AuditEventHour
    out: list[ColumnElement[bool]] = [h.org == (flt.org or ALL_ORGS)]
    if flt.outcome:
        out.append(h.outcome == flt.outcome)
    return out


@dataclass(frozen=True)
class OrgActivity:
    org: str
    events: int
    failures: int
    actors: int
    last_at: datetime | None


def tenant_activity(session: Session, start: datetime, end: datetime) -> list[OrgActivity]:
    """Per organisation over a window: events, failures, distinct actors, last event ("" = platform)."""
    e = AuditEvent
    failures = func.sum(case((e.outcome == "failure", 1), else_=0))
    query = (select(e.org, func.count(), failures, func.count(func.distinct(e.initiator)),
                    func.max(e.occurred_at))
             .where(e.occurred_at >= start, e.occurred_at < end)
             .group_by(e.org).order_by(func.count().desc()))
    return [OrgActivity(org, int(n), int(f or 0), int(a), last)
            for org, n, f, a, last in session.execute(query)]


@dataclass(frozen=True)
class VerificationStats:
    start: datetime
    end: datetime
    by_verdict: dict[str, int]
    by_issuer: dict[str, dict[str, int]]  # issuer -> verdict -> count
    timeline: Timeline


def verification_stats(session: Session, start: datetime, end: datetime) -> VerificationStats:
    """Counts from the documents capability's hourly table (migration 0006; named here, not imported,
    because documents is a layer above audit)."""
    t = table(VERIFICATION_TABLE, column("hour", DateTime(timezone=True)), column("issuer", String),
              column("verdict", String), column("count", BigInteger))
    window = and_(t.c.hour >= start, t.c.hour < end)
    total = func.sum(t.c["count"])
    by_verdict = {str(v): int(n) for v, n in session.execute(
        select(t.c.verdict, total).where(window).group_by(t.c.verdict))}
    by_issuer: dict[str, dict[str, int]] = {}
    for issuer, verdict, n in session.execute(
            select(t.c.issuer, t.c.verdict, total).where(window).group_by(t.c.issuer, t.c.verdict)):
        by_issuer.setdefault(str(issuer), {})[str(verdict)] = int(n)
    unit = bucket_unit(start, end)
    bucket = _bucket(session, unit, t.c.hour).label("bucket")
    counts: dict[str, dict[str, int]] = {}
    for label, verdict, n in session.execute(
            select(bucket, t.c.verdict, total).where(window).group_by(bucket, t.c.verdict)):
        counts.setdefault(str(label), {})[str(verdict)] = int(n)
    series = tuple(sorted(by_verdict, key=lambda v: -by_verdict[v]))
    chart = Timeline(unit, start, end, series, counts)
    return VerificationStats(start, end, by_verdict, by_issuer, chart)
