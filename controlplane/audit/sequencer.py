"""The sequencer: integrates new audit events into the Merkle log in batches and signs checkpoints.

Integration is one short transaction per batch: lock the tree-state row (a row lock on PostgreSQL,
the write lock on SQLite, so a second sequencer waits and then sees the first one's leaves), give
the oldest unsequenced events the next leaf indexes, store their leaf hashes and every subtree they
complete, move the root. Signing happens after, outside any transaction (Vault), and the checkpoint
is stored in its own short transaction: a checkpoint stays valid as long as it matches the tree at
its size, and the tree only grows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.audit import hours
from controlplane.audit.cadf import canonical_json, record_of_row
from controlplane.audit.checkpoints import AUDIT_KEY, DEFAULT_ORIGIN, archive_keys, archived_keys, pin_keys
from controlplane.audit.models import AuditCheckpoint, AuditEvent, AuditTreeNode, AuditTreeState
from controlplane.audit.proofs import STATE_ID, TreeCorrupt, read_nodes
from controlplane.audit.witnessing import WitnessLink, witness_pass
from controlplane.backends.keys import KeyBackend, Signature
from controlplane.errors import BackendNotFound, ControlPlaneError
from controlplane.storage import Database, utcnow
from controlplane.tlog import merkle
from controlplane.tlog.note import Checkpoint

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
_ROWS_PER_STATEMENT = 5000
EVENT_COLUMNS = (
    AuditEvent.id,
    AuditEvent.event_uuid,
    AuditEvent.occurred_at,
    AuditEvent.action,
    AuditEvent.outcome,
    AuditEvent.initiator,
    AuditEvent.target,
    AuditEvent.observer,
    AuditEvent.org,
    AuditEvent.detail,
)


@dataclass(frozen=True)
class Integrated:
    added: int
    tree_size: int
    root_hash: bytes


def leaf_hash_of_row(row: Sequence[Any]) -> bytes:
    """The leaf hash of a row selected as `EVENT_COLUMNS` (the same bytes as cadf.leaf_input)."""
    return merkle.hash_leaf(canonical_json(record_of_row(row)))


def lock_tree(session: Session) -> AuditTreeState:
    """Take the sequencer lock (a write to the state row comes first, so SQLite takes its write lock
    before reading) and return the state as of now."""
    locked = session.execute(
        update(AuditTreeState).where(AuditTreeState.id == STATE_ID).values(updated_at=utcnow())
    )
    if locked.rowcount == 0:  # type: ignore[attr-defined]
        session.add(
            AuditTreeState(id=STATE_ID, tree_size=0, root_hash=merkle.root_of([]), updated_at=utcnow())
        )
        session.flush()
    state = session.get(AuditTreeState, STATE_ID, populate_existing=True)
    assert state is not None
    return state


def pending_count(session: Session) -> int:
    """Events not yet in the log: the sequencer's lag."""
    return int(session.scalar(select(func.count()).where(AuditEvent.leaf_index.is_(None))) or 0)


def write_leaf_indexes(session: Session, pairs: list[tuple[int, int]]) -> None:
    """Set leaf_index by event id: one UPDATE ... FROM a VALUES list per chunk (PostgreSQL, and SQLite
    >= 3.33), not one UPDATE per row. The values are integers this function formats itself, so
    writing them into the SQL text is safe, and it spares SQLAlchemy compiling 10,000 parameters."""
    for start in range(0, len(pairs), _ROWS_PER_STATEMENT):
        rows = ",".join(f"({int(eid)},{int(li)})" for eid, li in pairs[start : start + _ROWS_PER_STATEMENT])
        session.execute(
            text(
                f"WITH given (eid, li) AS (VALUES {rows}) "  # noqa: S608
                "UPDATE audit_events SET leaf_index = given.li FROM given WHERE audit_events.id = given.eid"
            )
        )


def integrate_batch(session: Session, *, batch_size: int = BATCH_SIZE) -> Integrated:
    state = lock_tree(session)
    rows = session.execute(
        select(*EVENT_COLUMNS)
        .where(AuditEvent.leaf_index.is_(None))
        .order_by(AuditEvent.id)
        .limit(batch_size)
    ).all()
    size = state.tree_size
    if not rows:
        return Integrated(0, size, state.root_hash)
    coords = merkle.frontier_nodes(size)
    stored = read_nodes(session, coords)
    if len(stored) < len(coords):  # never appends to a damaged tree: that would bless the damage
        raise TreeCorrupt(
            f"the audit tree lacks its frontier node(s) at size {size}", hint="run: controlplane audit check"
        )
    new_nodes, frontier = merkle.append_leaves(
        size, [stored[c] for c in coords], (leaf_hash_of_row(tuple(r)) for r in rows)
    )
    write_leaf_indexes(session, [(r[0], size + k) for k, r in enumerate(rows)])
    # Counted in the same transaction that sequences them: once each, and never before (the
    # timeline reads the log itself for events still waiting).
    hours.add_events(session, ((r[2], r[8], r[4]) for r in rows))  # occurred_at, org, outcome
    # RETURNING makes SQLAlchemy batch the rows into multi-row INSERTs ("insertmanyvalues").
    nodes = cast(Table, AuditTreeNode.__table__)
    session.execute(
        insert(nodes).returning(nodes.c.level),
        [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in new_nodes],
    )
    state.tree_size = size + len(rows)
    state.root_hash = merkle.root_from_frontier(frontier)
    return Integrated(len(rows), state.tree_size, state.root_hash)


def integrate_pending(
    db: Database, *, batch_size: int = BATCH_SIZE, max_batches: int | None = None
) -> Integrated:
    """Integrate every unsequenced event (or `max_batches` batches), one transaction per batch."""
    added, batches = 0, 0
    while True:
        with db.transaction() as s:
            step = integrate_batch(s, batch_size=batch_size)
        added += step.added
        batches += 1
        if step.added < batch_size or (max_batches is not None and batches >= max_batches):
            return Integrated(added, step.tree_size, step.root_hash)


def _sign(keys: KeyBackend, name: str, message: bytes) -> Signature:
    try:
        return keys.sign(name, [message])[0]
    except BackendNotFound:
        keys.ensure_signing_key(name)  # first use: the key is made where it lives, in Vault
        return keys.sign(name, [message])[0]


def sign_checkpoint(
    db: Database, keys: KeyBackend, *, pin_path: Path | None = None, origin: str = DEFAULT_ORIGIN
) -> AuditCheckpoint | None:
    """Sign the current tree, as a C2SP checkpoint of `origin`, if it grew since the last
    checkpoint; None when there is nothing new."""
    with db.transaction() as s:
        state = s.get(AuditTreeState, STATE_ID)
        last = s.scalar(select(func.max(AuditCheckpoint.tree_size)))
        known = archived_keys(s, AUDIT_KEY)
    if state is None or state.tree_size == 0 or (last is not None and last >= state.tree_size):
        return None
    signed_at = utcnow()
    text = Checkpoint(origin, state.tree_size, state.root_hash).text()
    signature = _sign(keys, AUDIT_KEY, text.encode())
    public_keys = keys.get_signing_key(AUDIT_KEY).public_keys if signature.key_version not in known else {}
    cp = AuditCheckpoint(
        tree_size=state.tree_size,
        root_hash=state.root_hash,
        signed_at=signed_at,
        key_name=AUDIT_KEY,
        key_version=signature.key_version,
        signature=signature.signature,
        note=text,
    )
    try:
        with db.transaction() as s:
            archive_keys(s, AUDIT_KEY, public_keys)
            s.add(cp)
    except IntegrityError:
        log.info("another sequencer signed tree size %d first", state.tree_size)
        return None
    if pin_path is not None and public_keys and pin_keys(pin_path, AUDIT_KEY, public_keys):
        log.info("pinned the audit public key(s) in %s", pin_path)
    log.info("signed audit checkpoint at tree size %d", cp.tree_size)
    return cp


def run_sequencer(
    db: Database,
    keys: KeyBackend,
    *,
    pin_path: Path | None = None,
    batch_size: int = BATCH_SIZE,
    origin: str = DEFAULT_ORIGIN,
) -> tuple[Integrated, AuditCheckpoint | None]:
    """One pass: integrate everything pending, then sign a checkpoint if the tree grew."""
    integrated = integrate_pending(db, batch_size=batch_size)
    return integrated, sign_checkpoint(db, keys, pin_path=pin_path, origin=origin)


def with_sequencer(
    after_pass: Callable[[Database], object] | None,
    keys: KeyBackend,
    *,
    pin_path: Path | None = None,
    origin: str = DEFAULT_ORIGIN,
    witness: WitnessLink | None = None,
) -> Callable[[Database], None]:
    """A worker `after_pass` hook: the given one, then a sequencer pass and a witness request. A
    sequencer failure (Vault down) is logged, not raised: the events stay queued and the next pass
    signs them; a witness refusal is logged as an error (see witnessing.py)."""

    def hook(db: Database) -> None:
        if after_pass is not None:
            after_pass(db)
        try:
            integrated, cp = run_sequencer(db, keys, pin_path=pin_path, origin=origin)
        except ControlPlaneError as exc:
            log.warning("audit sequencer: %s", exc.message)
            return
        if integrated.added or cp is not None:
            log.info(
                "audit log: %d new leaf(s), tree size %d%s",
                integrated.added,
                integrated.tree_size,
                ", checkpoint signed" if cp is not None else "",
            )
        witness_pass(db, witness)

    return hook


def sequence_forever(hook: Callable[[Database], None], db: Database, *, every: float,
                     stop: threading.Event) -> threading.Thread:
    """Run a `with_sequencer` hook every `every` seconds on a daemon thread, apart from the
    reconcile loop: how long an event can wait unsequenced (and so be deleted without trace) is
    bounded by this, not by the reconcile interval. `audit check` reports events older than
    `audit_pending_window_seconds` still waiting."""

    def loop() -> None:
        while not stop.is_set():
            try:
                hook(db)
            except Exception:  # the thread must outlive a bad pass (database restarting, say)
                log.exception("audit sequencer pass failed")
            stop.wait(every)

    thread = threading.Thread(target=loop, name="audit-sequencer", daemon=True)
    thread.start()
    return thread
