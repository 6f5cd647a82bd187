"""`audit check`: walk the stored log and name the first entry edited, deleted, reordered or inserted.

What is trusted: the signed checkpoints (under the pinned audit key, or the archived one) and,
below them, the stored leaf hashes (tree level 0). Each event row's leaf hash is recomputed and
compared with the leaf hash at its index; a mismatch is classified by where the original content
went. An attacker who also rewrites leaf hashes and tree nodes is caught by the signed roots,
located to the span between two checkpoints. Rows not sequenced yet cannot be told from genuine
new events, except when backdated before the last checkpoint (see BACKDATE_GRACE).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from controlplane.audit.checkpoints import (
    AUDIT_KEY,
    LEGACY_WITNESS_KEY,
    archived_keys,
    checkpoint_signed_by,
    is_cosigned,
    witness_signed_by,
)
from controlplane.audit.models import AuditCheckpoint, AuditEvent, AuditTreeNode, AuditTreeState
from controlplane.audit.pinning import Pinned, pinned_fault
from controlplane.audit.proofs import STATE_ID
from controlplane.audit.sequencer import EVENT_COLUMNS, leaf_hash_of_row
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tlog import merkle
from controlplane.tlog.note import Verifier

# An unsequenced event older than the last checkpoint by this much was not written by a live
# transaction (those commit within seconds): it was inserted behind the log's back.
BACKDATE_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Fault:
    kind: str  # edited | deleted | reordered | inserted | tree | checkpoint | truncated | fork | regrown
    #          | unsequenced
    leaf_index: int
    message: str
    event_id: int | None = None

    def __str__(self) -> str:
        where = f"leaf {self.leaf_index}" + (
            f" (event id {self.event_id})" if self.event_id is not None else ""
        )
        return f"{self.kind}: {where}: {self.message}"


@dataclass
class CheckReport:
    tree_size: int = 0
    checkpoints: int = 0
    witnessed: int = 0
    pending: int = 0
    faults: list[Fault] = field(default_factory=list)

    @property
    def first(self) -> Fault | None:
        """The earliest fault naming an entry; span-level faults (tree, checkpoint) only if none."""
        precise = [f for f in self.faults if f.kind not in ("tree", "checkpoint")]
        return min(precise or self.faults, key=lambda f: f.leaf_index) if self.faults else None


@dataclass(frozen=True)
class _Row:
    event_id: int
    leaf_hash: bytes


def classify_leaf(
    i: int, expected: bytes, rows: list[_Row], where: Mapping[bytes, int], present: set[bytes]
) -> Fault | None:
    """What happened at leaf i, from the rows claiming it and where the original content went."""
    matching = [r for r in rows if r.leaf_hash == expected]
    if matching and len(rows) == 1:
        return None
    unknown = [r for r in rows if r.leaf_hash not in where]
    if matching:
        extra = next(r for r in rows if r.leaf_hash != expected)
        return Fault("inserted", i, "a second row claims this leaf", extra.event_id)
    if expected in present:  # the original event still exists, at another index
        if unknown:
            return Fault(
                "inserted",
                i,
                "a row that was never sequenced sits here; the original event was moved to a later leaf",
                unknown[0].event_id,
            )
        if rows:
            return Fault(
                "reordered",
                i,
                f"this row holds the event sequenced as leaf {where[rows[0].leaf_hash]}",
                rows[0].event_id,
            )
        return Fault("reordered", i, "no row claims this leaf; its event moved to another index")
    if unknown:
        return Fault("edited", i, "the row's fields differ from what was sequenced", unknown[0].event_id)
    return Fault("deleted", i, "the event sequenced here is gone from the table")


def check_leaves(leaf_hashes: list[bytes], rows: Iterable[tuple[int | None, int, bytes]]) -> list[Fault]:
    """Faults of event rows `(leaf_index, event_id, recomputed leaf hash)` against the leaf hashes."""
    by_index: dict[int, list[_Row]] = defaultdict(list)
    present: set[bytes] = set()
    for index, event_id, h in rows:
        if index is not None:
            by_index[index].append(_Row(event_id, h))
            present.add(h)
    where = {h: i for i, h in enumerate(leaf_hashes)}
    faults = []
    for i, expected in enumerate(leaf_hashes):
        fault = classify_leaf(i, expected, by_index.get(i, []), where, present)
        if fault is not None:
            faults.append(fault)
            break  # the first one names the entry; the rest usually follow from it
    beyond = sorted(i for i in by_index if i >= len(leaf_hashes) or i < 0)
    if beyond:
        row = by_index[beyond[0]][0]
        faults.append(
            Fault(
                "inserted",
                beyond[0],
                f"the row claims a leaf beyond the tree size {len(leaf_hashes)}",
                row.event_id,
            )
        )
    return faults


def check_tree(
    levels: list[list[bytes]], stored: Mapping[merkle.Node, bytes], size: int, state_root: bytes
) -> list[Fault]:
    faults = []
    for (level, index), h in sorted(stored.items()):
        if level >= len(levels) or index >= len(levels[level]) or levels[level][index] != h:
            faults.append(
                Fault(
                    "tree",
                    index << level,
                    f"stored tree node (level {level}, index {index}) does not match the leaves below it",
                )
            )
            break
    expected = merkle.subtree_root(0, size, merkle.reader_of(levels)) if size else merkle.root_of([])
    if expected != state_root:
        faults.append(Fault("tree", max(size - 1, 0), "the stored root does not match the leaves"))
    return faults


def check_checkpoints(
    cps: list[AuditCheckpoint],
    levels: list[list[bytes]],
    size: int,
    audit_keys: Mapping[int, bytes],
    witness_keys: Mapping[int, bytes],
    witnesses: Sequence[Verifier] = (),
) -> list[Fault]:
    faults = []
    reader = merkle.reader_of(levels)
    previous = 0
    for cp in cps:
        if not checkpoint_signed_by(cp, audit_keys):
            faults.append(
                Fault(
                    "checkpoint",
                    previous,
                    f"the checkpoint at tree size {cp.tree_size} is not signed by the (pinned) audit key",
                )
            )
        elif cp.tree_size > size:
            faults.append(
                Fault(
                    "deleted",
                    size,
                    f"the checkpoint at tree size {cp.tree_size} is beyond the "
                    f"stored tree ({size} leaves): leaves were removed",
                )
            )
        elif merkle.subtree_root(0, cp.tree_size, reader) != cp.root_hash:
            faults.append(
                Fault(
                    "checkpoint",
                    previous,
                    f"leaves {previous}..{cp.tree_size - 1} differ from what "
                    f"the checkpoint at tree size {cp.tree_size} signed",
                )
            )
        elif _cosignature_checkable(cp, witness_keys, witnesses) and not witness_signed_by(
            cp, witness_keys, witnesses
        ):
            faults.append(
                Fault(
                    "checkpoint",
                    previous,
                    f"the witness co-signature at tree size {cp.tree_size} does not verify",
                )
            )
        previous = cp.tree_size
    return faults


def _cosignature_checkable(
    cp: AuditCheckpoint, legacy_keys: Mapping[int, bytes], witnesses: Sequence[Verifier]
) -> bool:
    if cp.cosignature is not None:
        return bool(witnesses)
    return cp.witness_signature is not None and bool(legacy_keys)


def check_log(
    db: Database,
    *,
    pinned_audit_keys: list[bytes] | None = None,
    witnesses: Sequence[Verifier] = (),
    since: Pinned | None = None,
    pending_window: timedelta | None = None,
) -> CheckReport:
    """Walk everything once (read-only). `pinned_audit_keys`: trust these instead of the archive;
    `witnesses`: the pinned witness keys its cosignatures must verify under; `since`: a checkpoint
    the log must still extend; `pending_window`: how long an event may wait unsequenced."""
    report = CheckReport()
    with db.transaction() as s:
        state = s.get(AuditTreeState, STATE_ID)
        size = state.tree_size if state else 0
        state_root = state.root_hash if state else merkle.root_of([])
        stored: dict[merkle.Node, bytes] = {
            (lv, ix): bytes(h)
            for lv, ix, h in s.execute(select(AuditTreeNode.level, AuditTreeNode.index, AuditTreeNode.hash))
        }
        rows = [
            (r[-1], r[0], leaf_hash_of_row(tuple(r[:-1])))
            for r in s.execute(
                select(*EVENT_COLUMNS, AuditEvent.leaf_index).where(AuditEvent.leaf_index.is_not(None))
            ).yield_per(5000)
        ]
        pending = s.execute(
            select(AuditEvent.id, AuditEvent.occurred_at)
            .where(AuditEvent.leaf_index.is_(None))
            .order_by(AuditEvent.id)
        ).all()
        cps = list(s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)))
        audit_keys = archived_keys(s, AUDIT_KEY)
        witness_keys = archived_keys(s, LEGACY_WITNESS_KEY)
    if pinned_audit_keys is not None:
        audit_keys = {v: k for v, k in audit_keys.items() if k in pinned_audit_keys}
    report.tree_size, report.checkpoints, report.pending = size, len(cps), len(pending)
    report.witnessed = sum(1 for cp in cps if is_cosigned(cp))
    leaf_hashes = [stored.get((0, i)) for i in range(size)]
    missing = next((i for i, h in enumerate(leaf_hashes) if h is None), None)
    if missing is not None:
        report.faults.append(Fault("tree", missing, "the stored leaf hash is missing"))
        return report
    leaves = [h for h in leaf_hashes if h is not None]
    report.faults += check_leaves(leaves, rows)
    levels = merkle.levels_of(leaves)
    report.faults += check_tree(levels, stored, size, state_root)
    report.faults += check_checkpoints(cps, levels, size, audit_keys, witness_keys, witnesses)
    if since is not None:
        reader = merkle.reader_of(levels)
        found = pinned_fault(since, size, lambda n: merkle.subtree_root(0, n, reader))
        if found is not None:
            report.faults.append(Fault(found[0], min(since.size, size), found[1]))
    if pending_window is not None:
        report.faults += _stale_pending(pending, size, pending_window)
    if cps:
        cutoff = as_utc(cps[-1].signed_at) - BACKDATE_GRACE
        backdated = next((event_id for event_id, at in pending if as_utc(at) < cutoff), None)
        if backdated is not None:
            report.faults.append(
                Fault(
                    "inserted",
                    size,
                    "an unsequenced event is dated before the last "
                    "checkpoint: it was inserted behind the log's back",
                    backdated,
                )
            )
    return report


def _stale_pending(pending: Sequence[Any], size: int, window: timedelta) -> list[Fault]:
    """Events waiting longer than the window: the sequencer is not running (or was stopped), so the
    bound on deleting an event before it is sequenced no longer holds."""
    cutoff = utcnow() - window
    stale = [(event_id, at) for event_id, at in pending if as_utc(at) < cutoff]
    if not stale:
        return []
    return [
        Fault(
            "unsequenced",
            size,
            f"{len(stale)} event(s) have waited more than {int(window.total_seconds())} s unsequenced "
            "(oldest first): while they wait they can be deleted without trace; is the worker's "
            "sequencer running?",
            stale[0][0],
        )
    ]
