"""The signature log: every batch of signatures is one audit event committing to a Merkle root of its entries.

One entry per signed document, `{"key", "serial", "sha256", "version"}` (serial hex, SHA-256 hex of
the COSE Sig_structure that was signed, key name and version) as canonical JSON, hashed as an
RFC 9162 leaf. The batch's audit event carries the root over its entries in order
(`detail.signatures_root`); once the sequencer integrates the event, a document is proved by
(its entry's path to the batch root) + (the event's inclusion in the log) + (a signed checkpoint).
A 1,000-document batch is one log leaf, yet each of its documents has a proof of ~10 + ~log2(N)
hashes: 10M documents are a few hundred thousand leaves, not ten million.

The pure functions here (entry hashes, batch roots and paths, checking them) are what a ministry's
monitor runs too: it trusts the pinned audit key and nothing the platform stores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.audit.cadf import canonical_json
from controlplane.tlog import merkle

# The detail field of the batch's audit event that holds the root (hex) of its entries.
ROOT_FIELD = "signatures_root"


@dataclass(frozen=True)
class Entry:
    """What the log commits to for one signature."""

    serial: str
    signed_sha256: str
    key_name: str
    key_version: int

    def leaf_hash(self) -> bytes:
        return merkle.hash_leaf(canonical_json({
            "key": self.key_name, "serial": self.serial, "sha256": self.signed_sha256,
            "version": self.key_version,
        }))


def signed_sha256(message: bytes) -> str:
    """The hex SHA-256 of the bytes handed to the key (the COSE Sig_structure)."""
    return hashlib.sha256(message).hexdigest()


def batch_root(entries: Sequence[Entry]) -> bytes:
    return merkle.root_of([e.leaf_hash() for e in entries])


def batch_paths(entries: Sequence[Entry]) -> list[list[bytes]]:
    """Every entry's RFC 9162 inclusion path in its batch (empty for a batch of one), the levels
    built once: a page of 1,000 documents of one batch costs one tree."""
    levels = merkle.levels_of([e.leaf_hash() for e in entries])
    reader = merkle.reader_of(levels)
    return [merkle.inclusion_proof(i, len(entries), reader) for i in range(len(entries))]


def entry_in_batch(entry: Entry, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """True when `entry` is at `index` of a batch of `size` entries whose root is `root`."""
    if not 0 <= index < size:
        return False
    return merkle.verify_inclusion(entry.leaf_hash(), index, size, path, root)
