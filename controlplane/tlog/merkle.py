"""Merkle tree hashing of the audit log (RFC 9162 §2.1): roots, inclusion and consistency proofs.

Pure functions over 32-byte SHA-256 hashes; no database. Leaf hash = SHA-256(0x00 || leaf input),
node hash = SHA-256(0x01 || left || right), MTH as in RFC 9162 for any tree size (the right edge is
never padded). Trees too big for memory are read through a `NodeReader`: `(level, index)` -> the
hash of the complete subtree over leaves [index * 2**level, (index + 1) * 2**level). Every
subtree the RFC algorithms split a tree into is either such a complete, aligned subtree or the
right edge of the tree, which `subtree_root` rebuilds from complete ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
NodeReader = Callable[[int, int], bytes]  # (level, index) -> complete subtree hash
Node = tuple[int, int]  # (level, index)
_sha256 = hashlib.sha256


def hash_leaf(leaf_input: bytes) -> bytes:
    return _sha256(b"\x00" + leaf_input).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes. Level by level, an odd last node moves up unchanged: the same tree
    as RFC 9162's recursive split, without recursion (a million leaves in one call)."""
    if not leaf_hashes:
        return _sha256(b"").digest()
    level = list(leaf_hashes)
    sha = _sha256
    while len(level) > 1:
        pairs = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]


def levels_of(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every complete subtree hash, by level: `levels[l][i]` covers leaves [i * 2**l, (i+1) * 2**l)."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([hash_children(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def reader_of(levels: Sequence[Sequence[bytes]]) -> NodeReader:
    return lambda level, index: levels[level][index]


def subtree_root(start: int, end: int, node: NodeReader) -> bytes:
    """MTH of leaves [start, end), `start` aligned as RFC 9162's splits keep it."""
    size = end - start
    if size & (size - 1) == 0:  # a power of two: one complete stored subtree
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = _split(size)
    return hash_children(subtree_root(start, start + k, node), subtree_root(start + k, end, node))


def inclusion_proof(index: int, size: int, node: NodeReader) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            path.append(subtree_root(start + k, end, node))
            end = start + k
        else:
            path.append(subtree_root(start, start + k, node))
            start += k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, node: NodeReader) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 9162 §2.1.4.1; empty when first is 0 or equals second."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_root(start + k, end, node))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k, node))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(subtree_root(start, end, node))
    proof.reverse()
    return proof


def nodes_needed(compute: Callable[[NodeReader], object]) -> set[Node]:
    """Which complete subtrees `compute` reads: run it once against a recorder, so a database
    caller can fetch exactly those rows in one query before running it for real."""
    seen: set[Node] = set()

    def record(level: int, index: int) -> bytes:
        seen.add((level, index))
        return bytes(HASH_SIZE)

    compute(record)
    return seen


def verify_inclusion(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, plus the trivial cases: equal sizes (equal roots, empty proof) and an
    empty first tree (consistent with anything, empty proof)."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# ------------------------------------------------------------------------- appending (sequencer)
def frontier_nodes(size: int) -> list[Node]:
    """The complete subtrees that make up a tree of `size` leaves, largest (leftmost) first."""
    out: list[Node] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """MTH from the frontier hashes (largest subtree first): fold them right to left."""
    if not frontier:
        return _sha256(b"").digest()
    root = frontier[-1]
    for h in reversed(frontier[:-1]):
        root = hash_children(h, root)
    return root


def append_leaves(
    size: int, frontier: Sequence[bytes], leaf_hashes: Iterable[bytes]
) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Append leaves to a tree of `size` given its frontier hashes: every new complete subtree
    `(level, index, hash)` (level 0 = the leaves) and the new frontier hashes."""
    stack = list(frontier)  # hashes of the frontier, largest first, as the bits of `size`
    new: list[tuple[int, int, bytes]] = []
    for leaf in leaf_hashes:
        new.append((0, size, leaf))
        h, index, level = leaf, size, 0
        while index & 1:  # a right child completes its parent: merge with the left sibling
            h = hash_children(stack.pop(), h)
            index >>= 1
            level += 1
            new.append((level, index, h))
        stack.append(h)
        size += 1
    return new, stack
