"""Verification counts keyed by the hour of each call, across hour boundaries and clock steps back."""

from __future__ import annotations

from datetime import UTC, datetime

from controlplane.storage import Database
from controlplane.web.public.verification_counts import VerificationCounter


def test_each_count_goes_to_the_hour_of_its_own_call() -> None:
    moments = iter([
        datetime(2026, 11, 29, 10, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 29, 11, 0, tzinfo=UTC),  # the first instant of the next hour
        datetime(2026, 11, 29, 11, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 29, 10, 30, tzinfo=UTC),  # the clock stepped back (NTP): the earlier hour
        datetime(2026, 11, 29, 12, 0, 1, tzinfo=UTC),
    ])
    database = Database("sqlite://")
    counter = VerificationCounter(database, flush_seconds=3600, clock=lambda: next(moments))
    try:
        for verdict in ("valid", "valid", "revoked", "valid", "valid"):
            counter.add("health", verdict)
        hour = lambda h: datetime(2026, 11, 29, h, tzinfo=UTC)  # noqa: E731
        assert counter.pending() == {
            (hour(10), "health", "valid"): 2, (hour(11), "health", "valid"): 1,
            (hour(11), "health", "revoked"): 1, (hour(12), "health", "valid"): 1,
        }
    finally:
        counter.close()
        database.dispose()
