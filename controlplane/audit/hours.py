"""Per-hour event counts (audit_event_hours): added as events are sequenced, read by the timeline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from controlplane.audit.models import ALL_ORGS, AuditEvent, AuditEventHour
from controlplane.storage import as_utc
from controlplane.storage.counts import AddingUpsert, hour_of

__all__ = ["add_events", "counted_events", "hour_of", "next_hour", "rebuild"]

HourKey = tuple[datetime, str, str]  # hour, org (or ALL_ORGS), outcome
REBUILD_BATCH = 10_000


def next_hour(moment: datetime) -> datetime:
    """The first whole hour at or after `moment`."""
    start = hour_of(moment)
    return start if start == as_utc(moment) else start + timedelta(hours=1)


def add_events(session: Session, events: Iterable[tuple[datetime, str, str]]) -> None:
    """Count (occurred_at, org, outcome) events into their hours, per organisation and for all:
    one upsert, which both dialects spell ON CONFLICT ... DO UPDATE, so two sequencers' batches add up."""
    counts: Counter[HourKey] = Counter()
    for at, org, outcome in events:
        hour = hour_of(at)
        counts[(hour, org, outcome)] += 1
        counts[(hour, ALL_ORGS, outcome)] += 1
    rows = [{"hour": h, "org": o, "outcome": r, "events": n} for (h, o, r), n in sorted(counts.items())]
    _UPSERT.run(session.get_bind().dialect.name, session.execute, rows)


_UPSERT = AddingUpsert(AuditEventHour, ["hour", "org", "outcome"], "events")


def rebuild(session: Session) -> int:
    """Recount every sequenced event from the log (a repair after restoring a backup); returns the
    number of events counted."""
    session.execute(delete(AuditEventHour))
    rows = session.execute(
        select(AuditEvent.occurred_at, AuditEvent.org, AuditEvent.outcome)
        .where(AuditEvent.leaf_index.is_not(None))
        .execution_options(yield_per=REBUILD_BATCH)
    )
    total = 0
    for batch in rows.partitions():
        add_events(session, ((r[0], r[1], r[2]) for r in batch))
        total += len(batch)
    return total


def counted_events(session: Session) -> int:
    total = select(func.coalesce(func.sum(AuditEventHour.events), 0)).where(AuditEventHour.org == ALL_ORGS)
    return int(session.scalar(total) or 0)

