"""Per-hour event counts: the sequencer keeps them, and the auditor's timeline built on them counts
exactly what the log holds, sequenced or not, for every filter and window."""

from __future__ import annotations

import importlib
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text

from controlplane.audit import hours
from controlplane.audit.models import AuditEvent, AuditEventHour
from controlplane.audit.queries import OUTCOMES, EventFilter, Timeline, bucket_unit, event_timeline
from controlplane.audit.sequencer import integrate_batch
from controlplane.settings import Settings
from controlplane.storage import Database, as_utc
from tests.fixtures.app import run_controlplane, settings_env

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 13, 37, 12, tzinfo=UTC)  # not on an hour: the window has part hours
ORGS = ("health", "finance", "")
ACTIONS = ("request:approve", "request:reject", "tenant:apply", "account:login")
ACTORS = ("user:amal", "user:karim", "system:reconciler")


@pytest.fixture
def events(database: Database) -> list[AuditEvent]:
    """600 events over the last 10 days (plus a few in the future part of the current hour); the
    first 400 by id are sequenced, the rest still wait for the sequencer."""
    rng = random.Random(7)
    made = []
    with database.transaction() as session:
        for _ in range(600):
            at = NOW - timedelta(seconds=rng.randrange(10 * 24 * 3600)) + timedelta(minutes=20)
            event = AuditEvent(occurred_at=at, action=rng.choice(ACTIONS), outcome=rng.choice(OUTCOMES),
                               initiator=rng.choice(ACTORS), target="tenant:x", org=rng.choice(ORGS),
                               detail={})
            session.add(event)
            made.append(event)
    with database.transaction() as session:
        assert integrate_batch(session, batch_size=400).added == 400
    return made


def expected(events: list[AuditEvent], flt: EventFilter) -> Timeline:
    """The timeline counted in Python from the events themselves."""
    start, end = flt.window(NOW)
    unit = bucket_unit(start, end)
    if flt.until is None:  # a chart ending now shows the current hour whole
        end = hours.next_hour(end)
    counts: Counter[tuple[str, str]] = Counter()
    for e in events:
        at = as_utc(e.occurred_at)
        if not start <= at < end or (flt.org and e.org != flt.org):
            continue
        if flt.actor and e.initiator != flt.actor:
            continue
        if flt.action and not (e.action.startswith(flt.action) if flt.action.endswith(":")
                               else e.action == flt.action):
            continue
        if flt.outcome and e.outcome != flt.outcome:
            continue
        label = at.strftime("%Y-%m-%d %H:00") if unit == "hour" else at.strftime("%Y-%m-%d 00:00")
        counts[(label, e.outcome)] += 1
    table: dict[str, dict[str, int]] = {}
    for (label, outcome), n in counts.items():
        table.setdefault(label, {})[outcome] = n
    return Timeline(unit, *flt.window(NOW), OUTCOMES, table)


FILTERS = [
    EventFilter(),
    EventFilter(org="health"),
    EventFilter(org="health", outcome="success"),
    EventFilter(action="request:"),
    EventFilter(action="tenant:apply", outcome="failure"),
    EventFilter(actor="user:amal"),  # not kept per hour: counted from the log
    EventFilter(since=NOW - timedelta(days=2, minutes=13), until=NOW - timedelta(hours=5, minutes=1)),
    EventFilter(since=NOW - timedelta(days=9, minutes=5), org="finance"),  # day buckets
    EventFilter(since=NOW - timedelta(minutes=30), until=NOW - timedelta(minutes=10)),  # inside one hour
]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.as_args().items())
                         or "default")
def test_the_timeline_counts_what_the_log_holds(database: Database, events: list[AuditEvent],
                                                flt: EventFilter) -> None:
    with database.transaction() as session:
        from_hours = event_timeline(session, flt, now=NOW)
        from_log = event_timeline(session, flt, now=NOW, use_hours=False)
    want = expected(events, flt)
    assert from_hours == from_log == want
    assert sum(sum(row.values()) for row in want.counts.values()) > 0  # the case has events to count


def test_each_event_is_counted_once_when_sequenced(database: Database, events: list[AuditEvent]) -> None:
    with database.transaction() as session:
        assert hours.counted_events(session) == 400
        while integrate_batch(session, batch_size=150).added:
            pass
        assert hours.counted_events(session) == 600
        before = session.execute(select(AuditEventHour.hour, AuditEventHour.org,
                                        AuditEventHour.outcome, AuditEventHour.events)).all()
        assert hours.rebuild(session) == 600
        after = session.execute(select(AuditEventHour.hour, AuditEventHour.org,
                                       AuditEventHour.outcome, AuditEventHour.events)).all()
    assert sorted(before) == sorted(after)
    assert all(as_utc(row.hour).minute == 0 for row in after)
    with database.transaction() as session:
        assert event_timeline(session, EventFilter(), now=NOW) == expected(events, EventFilter())


def test_the_migration_counts_events_sequenced_before_it(
    database: Database, events: list[AuditEvent]
) -> None:
    migration = importlib.import_module("controlplane.migrations.versions.0010_audit_event_hours")
    with database.transaction() as session:
        session.execute(delete(AuditEventHour))
        for statement in migration.BACKFILL[session.get_bind().dialect.name]:
            session.execute(text(statement))
        assert hours.counted_events(session) == 400
        assert event_timeline(session, EventFilter(), now=NOW) == expected(events, EventFilter())


def test_recount_hours_rebuilds_them_and_is_audited(
    database: Database, events: list[AuditEvent], settings: Settings
) -> None:
    with database.transaction() as session:
        session.execute(delete(AuditEventHour))
    done = run_controlplane("audit", "recount-hours", env=settings_env(settings, vault_token="unused"))
    assert done.returncode == 0, done.stderr
    assert "recounted 400 sequenced event(s)" in done.stdout
    with database.transaction() as session:
        assert hours.counted_events(session) == 400
        assert event_timeline(session, EventFilter(), now=NOW) == expected(events, EventFilter())
        recounts = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "audit:hours:recount"))
        assert list(recounts) == [{"events": 400}]
