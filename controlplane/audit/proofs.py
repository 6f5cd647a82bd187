"""Inclusion and consistency proofs and roots read from the stored tree (a few rows per proof)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from controlplane.audit.models import AuditCheckpoint, AuditTreeState
from controlplane.errors import ControlPlaneError, InvalidInput, NotFound
from controlplane.tlog import merkle

STATE_ID = 1
T = TypeVar("T")


class TreeCorrupt(ControlPlaneError):
    status = 500
    title = "Audit tree incomplete"


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    path: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: list[bytes]


def tree_size(session: Session) -> int:
    state = session.get(AuditTreeState, STATE_ID)
    return state.tree_size if state is not None else 0


def read_nodes(session: Session, wanted: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """The stored hashes of these subtrees, in one query per 500; absent ones are left out.

    The coordinates are integers formatted here, so they go into the SQL text as a VALUES list:
    a proof is one indexed query without compiling dozens of bound parameters (part of the 1 ms)."""
    coords = sorted(set(wanted))
    found: dict[merkle.Node, bytes] = {}
    for start in range(0, len(coords), 500):
        listed = ",".join(f"({int(lv)},{int(ix)})" for lv, ix in coords[start : start + 500])
        rows = session.execute(
            text(
                "SELECT level, idx, hash FROM audit_tree_nodes "  # noqa: S608 - integers only, see above
                f"WHERE (level, idx) IN (VALUES {listed})"
            )
        )
        found.update({(level, index): bytes(h) for level, index, h in rows})
    return found


def run_on_stored(session: Session, compute: Callable[[merkle.NodeReader], T], *, size: int, what: str) -> T:
    """Run a merkle computation over a tree of `size` leaves against the stored tree, fetching the
    nodes it reads in one query. A node missing means `size` is beyond the tree (a 400), or a
    damaged tree when it is not."""
    wanted = merkle.nodes_needed(compute)
    nodes = read_nodes(session, wanted)
    if len(nodes) < len(wanted):
        current = tree_size(session)
        if size > current:
            raise NotFound(
                f"the audit log has {current} leaves: there is no tree of size {size} ({what}) yet"
            )
        missing = sorted(wanted - set(nodes))
        raise TreeCorrupt(f"the audit tree lacks node(s) {missing[:5]}", hint="run: controlplane audit check")
    return compute(lambda level, index: nodes[(level, index)])


def root_at(session: Session, size: int) -> bytes:
    if size == 0:
        return merkle.root_of([])
    return run_on_stored(session, lambda node: merkle.subtree_root(0, size, node), size=size, what="size")


def prove_inclusion(session: Session, leaf_index: int, size: int) -> InclusionProof:
    if size < 1:
        raise InvalidInput(f"tree_size must be at least 1, not {size}")
    if not 0 <= leaf_index < size:
        raise NotFound(f"a tree of size {size} has no leaf {leaf_index} (leaves 0 to {size - 1})")

    def compute(node: merkle.NodeReader) -> tuple[bytes, bytes, list[bytes]]:
        return (
            node(0, leaf_index),
            merkle.subtree_root(0, size, node),
            merkle.inclusion_proof(leaf_index, size, node),
        )

    leaf, root, path = run_on_stored(session, compute, size=size, what="tree_size")
    return InclusionProof(leaf_index, size, leaf, root, path)


def prove_consistency(session: Session, first: int, second: int) -> ConsistencyProof:
    if first < 1:
        raise InvalidInput(f"first must be at least 1, not {first}")
    if first > second:  # schema-valid, but that proof does not exist
        raise NotFound(f"no consistency proof from size {first} to the smaller size {second}")

    def compute(node: merkle.NodeReader) -> tuple[bytes, bytes, list[bytes]]:
        return (
            merkle.subtree_root(0, first, node),
            merkle.subtree_root(0, second, node),
            merkle.consistency_proof(first, second, node),
        )

    r1, r2, path = run_on_stored(session, compute, size=second, what="second")
    return ConsistencyProof(first, second, r1, r2, path)


def latest_checkpoint(session: Session) -> AuditCheckpoint:
    cp = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1))
    if cp is None:
        raise NotFound(
            "the audit log has no signed checkpoint yet",
            hint="the worker signs one after its next pass (or run: controlplane audit sequence)",
        )
    return cp
