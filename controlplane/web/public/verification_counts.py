"""Verification counts by hour, issuer and verdict: summed in memory, flushed to the database in bulk."""

from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from controlplane.documents.models import VerificationCount
from controlplane.storage import Database, utcnow
from controlplane.storage.counts import AddingUpsert, hour_of

log = logging.getLogger(__name__)

FLUSH_EVERY = 1000  # increments: a burst is written before it grows large, not only on the timer
MAX_ISSUER = 64  # the column's width

Key = tuple[datetime, str, str]


class VerificationCounter:
    """One per process. `add()` only touches a dict under a lock (no database on the request path);
    a daemon thread writes the sums every `flush_seconds`, sooner after FLUSH_EVERY increments, and
    once more at exit. Rows hold an hour, an issuer slug, a verdict and a number: nobody's data."""

    def __init__(self, database: Database, *, flush_seconds: float,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._pending: Counter[Key] = Counter()
        self._added = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # the timer, a burst and exit never write the same sums twice
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        # The hour counts go to, as (start, end): one attribute, so a thread never pairs one hour's
        # start with another's end, and the same key object serves until the hour is over.
        self._hour_span = (datetime.min.replace(tzinfo=UTC),) * 2

    def add(self, issuer: str, verdict: str) -> None:
        now = self._clock()
        hour, end = self._hour_span
        if not hour <= now < end:
            hour = hour_of(now)
            self._hour_span = (hour, hour + timedelta(hours=1))
        key = (hour, issuer[:MAX_ISSUER], verdict)
        with self._lock:
            self._pending[key] += 1
            self._added += 1
            due = self._added >= FLUSH_EVERY
            if self._thread is None:
                self._start()  # lazily: gunicorn forks workers after the app is built
        if due:
            self._wake.set()

    def pending(self) -> dict[Key, int]:
        with self._lock:
            return dict(self._pending)

    def flush(self) -> int:
        """Write the pending sums (one upsert); return how many verifications were written. On a
        database error the sums go back to pending, to be tried again with the next flush."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending, self._added = self._pending, Counter(), 0
            if not batch:
                return 0
            try:
                with self.database.transaction() as session:
                    upsert_counts(session.get_bind().dialect.name, session.execute, batch)
            except SQLAlchemyError as exc:
                with self._lock:
                    self._pending.update(batch)
                    self._added += sum(batch.values())
                log.warning("verification counts not written yet (%d pending): %s",
                            sum(batch.values()), type(exc).__name__)
                return 0
            return sum(batch.values())

    def close(self) -> None:
        """Stop the thread and write what is pending: an app that is shut down (or a test's app,
        before its database goes) leaves no sums for a later flush to try against nothing."""
        with self._lock:
            self._closed, thread = True, self._thread
        if thread is not None:
            self._wake.set()
            thread.join(timeout=5)
            atexit.unregister(self.flush)
        self.flush()

    def _start(self) -> None:
        if self._closed:
            return
        self._thread = threading.Thread(target=self._run, name="verification-counts", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the thread must outlive any one bad flush
                log.exception("flushing verification counts failed")


_UPSERT = AddingUpsert(VerificationCount, ["hour", "issuer", "verdict"], "count")


def upsert_counts(dialect: str, execute: Callable[..., object], batch: Counter[Key]) -> None:
    """Add the batch to the table (storage.counts.AddingUpsert): concurrent workers add up."""
    rows = [{"hour": h, "issuer": i, "verdict": v, "count": n} for (h, i, v), n in sorted(batch.items())]
    _UPSERT.run(dialect, execute, rows)
