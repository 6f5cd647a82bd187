"""Audit log benchmark: append rate, sequencer rate, proof times and full offline verification.

    .venv/bin/python bench/audit.py                                    # 1,000,000 events, PostgreSQL
    CONTROLPLANE_BENCH_EVENTS=50000 .venv/bin/python bench/audit.py    # a quick run
    BENCH_DATABASE_URL=sqlite .venv/bin/python bench/audit.py          # a temp SQLite file instead
    .venv/bin/python bench/audit.py --without-queue-index              # the sequencer without its index

On PostgreSQL (BENCH_DATABASE_URL, default the local server) it works in a new database (bench_<hex>,
from bench/console.py) dropped at the end; it starts its own OpenBao dev server (bench/baoserver.py).
Side by side in one run:
- append: events through `record_event` (the use-case path: one INSERT per event, flushed in the
  caller's transaction) one per transaction vs many per transaction, and `record_events` (one
  multi-row INSERT per batch, for bulk callers); target >= 5,000 events/s batched;
- the sequencer integrating events into the tree (leaf hashes, subtree nodes, leaf indexes) and
  signing one checkpoint in Vault;
- inclusion proofs at the full tree size: generation from the stored tree (one indexed query) and
  verification, p50/p95 (target <= 1 ms), and a consistency proof;
- full verification of the N-event log: `audit check` in the database, `audit export`, then
  `audit verify` of the bundle, with its in-memory part (leaf hashes + tree) alone beside it
  (target >= 100,000 events/s).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, text  # noqa: E402

from bench.baoserver import KV_MOUNT, TRANSIT_MOUNT, BaoDevServer  # noqa: E402
from bench.console import bench_database, pct  # noqa: E402
from controlplane.audit import record_event  # noqa: E402
from controlplane.audit.bundle import export_bundle  # noqa: E402
from controlplane.audit.check import check_log  # noqa: E402
from controlplane.audit.checkpoints import read_pinned_keys  # noqa: E402
from controlplane.audit.events import record_events  # noqa: E402
from controlplane.audit.models import AuditEvent, new_event_uuid  # noqa: E402
from controlplane.audit.proofs import prove_consistency, prove_inclusion  # noqa: E402
from controlplane.audit.queries import EventFilter, event_timeline  # noqa: E402
from controlplane.audit.sequencer import integrate_pending, sign_checkpoint  # noqa: E402
from controlplane.audit.verify import leaf_hashes_of, read_members, verify_bundle  # noqa: E402
from controlplane.backends.vault import VaultKeys  # noqa: E402
from controlplane.migrations import upgrade_database  # noqa: E402
from controlplane.storage import Database, utcnow  # noqa: E402
from controlplane.tlog import merkle  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
ACTIONS = ("account:login", "request:approve", "document:issue", "api_token:use", "tenant:quota:update")


@contextmanager
def openbao(workdir: Path) -> Iterator[VaultKeys]:
    """The benches' OpenBao dev server and an adapter with its least-privilege token."""
    with BaoDevServer(workdir) as bao:
        keys = VaultKeys(
            addr=bao.addr, token=bao.token, transit_mount=TRANSIT_MOUNT, kv_mount=KV_MOUNT, timeout=10
        )
        yield keys
        keys.close()


def event_fields(n: int, rng: random.Random) -> dict[str, object]:
    return {
        "action": ACTIONS[n % len(ACTIONS)],
        "initiator": f"user:u{rng.randrange(5000)}",
        "target": f"tenant:org{rng.randrange(120)}",
        "org": f"org{rng.randrange(120)}",
        "outcome": "success" if n % 17 else "failure",
        "detail": {"n": n, "ip": "10.0.0.1"},
    }


def timed(label: str, count: int | None, run: Callable[[], object]) -> float:
    """Time `run`; `count` None: it returns how many events it handled (the sequencer does)."""
    t0 = time.perf_counter()
    done = run()
    took = time.perf_counter() - t0
    if count is None:
        count = getattr(done, "added", 0)
    print(f"  {label:<52} {count:>9,} events {took:8.2f} s {count / took:>11,.0f} events/s")
    return count / took


def bench_append(db: Database, count: int, rng: random.Random) -> None:
    print("append (events written in the caller's transaction)")

    def one_per_transaction() -> None:
        for n in range(count // 4):
            with db.transaction() as s:
                record_event(s, **event_fields(n, rng))  # type: ignore[arg-type]

    def batched(per: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, count, per):
                with db.transaction() as s:
                    for n in range(start, min(start + per, count)):
                        record_event(s, **event_fields(n, rng))  # type: ignore[arg-type]

        return run

    def bulk(per: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, count, per):
                with db.transaction() as s:
                    record_events(s, [event_fields(n, rng) for n in range(start, min(start + per, count))])

        return run

    timed("record_event, one event per transaction", count // 4, one_per_transaction)
    timed("record_event, 100 events per transaction", count, batched(100))
    timed("record_event, 1,000 events per transaction", count, batched(1000))
    timed("record_events (multi-row INSERT), 1,000 per transaction", count, bulk(1000))


def seed(db: Database, total: int, rng: random.Random) -> None:
    """Fill up to `total` events fast (multi-row inserts), dated over the last year."""
    with db.transaction() as s:
        have = s.scalar(text("SELECT count(*) FROM audit_events")) or 0
    start = utcnow() - timedelta(days=365)
    step = timedelta(days=365) / max(total, 1)
    for first in range(have, total, 10_000):
        rows = []
        for n in range(first, min(first + 10_000, total)):
            rows.append(
                {
                    **event_fields(n, rng),
                    "occurred_at": start + n * step,
                    "observer": "controlplane",
                    "event_uuid": new_event_uuid(),
                }
            )
        with db.transaction() as s:
            s.execute(insert(AuditEvent), rows)


def bench_proofs(db: Database, size: int, root: bytes) -> None:
    print(f"proofs at tree size {size:,}")
    gen, ver = [], []
    rng = random.Random(7)
    with db.transaction() as s:
        for _ in range(300):
            index = rng.randrange(size)
            t0 = time.perf_counter()
            proof = prove_inclusion(s, index, size)
            t1 = time.perf_counter()
            ok = merkle.verify_inclusion(proof.leaf_hash, index, size, proof.path, root)
            t2 = time.perf_counter()
            assert ok, index
            gen.append((t1 - t0) * 1000)
            ver.append((t2 - t1) * 1000)
        t0 = time.perf_counter()
        cons = prove_consistency(s, size // 3, size)
        cons_ms = (time.perf_counter() - t0) * 1000
    for label, ms in (("generation (one query on the stored tree)", gen), ("verification", ver)):
        print(f"  inclusion proof {label:<42} p50 {pct(ms, 0.5):6.3f} ms  p95 {pct(ms, 0.95):6.3f} ms")
    print(f"  ({len(proof.path)} hashes per proof)")
    print(f"  consistency proof {size // 3:,} -> {size:,}: {cons_ms:.2f} ms ({len(cons.path)} hashes)")


def bench_timeline(db: Database) -> None:
    """The auditor's timeline chart: counted from the log itself vs from the per-hour counts the
    sequencer keeps (audit_event_hours), in the same run; median of 3 each."""
    print("auditor timeline (events by hour or day and outcome), median of 3")
    now = utcnow()
    org = str(event_fields(0, random.Random(1))["org"])
    cases = [("last 7 days", EventFilter()), ("last 90 days", EventFilter(since=now - timedelta(days=90))),
             ("last 365 days", EventFilter(since=now - timedelta(days=365))),
             (f"last 90 days, org {org}", EventFilter(since=now - timedelta(days=90), org=org))]
    for label, flt in cases:
        took = {}
        for use_hours in (False, True):
            runs = []
            for _ in range(3):
                with db.transaction() as s:
                    t0 = time.perf_counter()
                    timeline = event_timeline(s, flt, now=now, use_hours=use_hours)
                    runs.append((time.perf_counter() - t0) * 1000)
            took[use_hours] = statistics.median(runs)
        events = sum(sum(row.values()) for row in timeline.counts.values())
        print(f"  {label:28} {events:9,d} events: from the log {took[False]:8.1f} ms, "
              f"from hourly counts {took[True]:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--without-queue-index",
        action="store_true",
        help="drop ix_audit_events_unsequenced after migrating (the 'before' figures)",
    )
    args = parser.parse_args()
    total = int(os.environ.get("CONTROLPLANE_BENCH_EVENTS", "1000000"))
    append_count = min(20_000, max(2_000, total // 10))
    rng = random.Random(4)
    workdir = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    try:
        with (
            bench_database(None if server == "sqlite" else server, workdir) as url,
            openbao(workdir) as keys,
        ):
            db = Database(url)
            print(f"database: {db.display_url} ({db.engine.dialect.name}); {total:,} events in the log")
            upgrade_database(db)
            if args.without_queue_index:
                with db.transaction() as s:
                    s.execute(text("DROP INDEX ix_audit_events_unsequenced"))
                print("  dropped ix_audit_events_unsequenced: 'before' figures")
            bench_append(db, append_count, rng)

            print("sequencer (leaf hashes, tree nodes, leaf indexes; one transaction per batch)")
            timed(
                "integrate the appended events, batches of 2,000",
                None,
                lambda: integrate_pending(db, batch_size=2000),
            )
            t0 = time.perf_counter()
            seed(db, total, rng)
            print(f"  (seeded up to {total:,} events in {time.perf_counter() - t0:.1f} s)")
            timed(
                "integrate the seeded events, batches of 5,000",
                None,
                lambda: integrate_pending(db, batch_size=5000),
            )
            pin = workdir / "audit-keys.pem"
            t0 = time.perf_counter()
            cp = sign_checkpoint(db, keys, pin_path=pin)
            assert cp is not None
            took_ms = (time.perf_counter() - t0) * 1000
            print(
                f"  sign a checkpoint (Vault, outside any transaction): {took_ms:.1f} ms, "
                f"tree size {cp.tree_size:,}"
            )
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
            bench_proofs(db, cp.tree_size, cp.root_hash)
            bench_timeline(db)

            print(f"full verification of the {cp.tree_size:,}-event log")
            timed(
                "audit check (walk the database, locate faults)",
                cp.tree_size,
                lambda: check_log(db, pinned_audit_keys=read_pinned_keys(pin)),
            )
            bundle = workdir / "audit.tar.gz"
            timed("audit export (DB -> bundle)", cp.tree_size, lambda: export_bundle(db, bundle))
            print(f"  bundle: {bundle.stat().st_size / 1e6:.1f} MB")
            keys_pinned = read_pinned_keys(pin)
            report = verify_bundle(bundle, pinned_audit_keys=keys_pinned)
            assert report.ok, report.faults
            timed(
                "audit verify (read, hash every event, tree, signatures)",
                cp.tree_size,
                lambda: verify_bundle(bundle, pinned_audit_keys=keys_pinned),
            )
            events = read_members(bundle)["events.jsonl"]
            timed(
                "  of which leaf hashes + tree in memory",
                cp.tree_size,
                lambda: merkle.root_of(leaf_hashes_of(events)),
            )
            sample = events.split(b"\n", 1000)[:1000]
            print(f"  (a leaf input is {statistics.mean(len(x) for x in sample):.0f} bytes on average)")
            db.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
