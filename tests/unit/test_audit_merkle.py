"""The Merkle log's hashing against a naive RFC 9162 reference: roots, proofs, appends, tampering."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.tlog import merkle

SIZES = st.integers(min_value=1, max_value=70)


def ref_mth(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 writes it (recursive, over leaf inputs)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [f"event {i}".encode() for i in range(n)]


def tree(n: int) -> tuple[list[bytes], merkle.NodeReader]:
    hashes = [merkle.hash_leaf(x) for x in leaves_of(n)]
    return hashes, merkle.reader_of(merkle.levels_of(hashes))


@settings(max_examples=80, deadline=None)
@given(SIZES)
def test_root_matches_the_rfc_definition(n: int) -> None:
    hashes, node = tree(n)
    assert merkle.root_of(hashes) == ref_mth(leaves_of(n))
    assert merkle.subtree_root(0, n, node) == ref_mth(leaves_of(n))


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_inclusion_proofs_match_the_reference_and_verify(data: st.DataObject) -> None:
    n = data.draw(SIZES)
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    hashes, node = tree(n)
    path = merkle.inclusion_proof(m, n, node)
    assert path == ref_path(m, leaves_of(n))
    root = merkle.root_of(hashes)
    assert merkle.verify_inclusion(hashes[m], m, n, path, root)
    # any other leaf, index, size or root fails
    assert not merkle.verify_inclusion(merkle.hash_leaf(b"forged"), m, n, path, root)
    assert not merkle.verify_inclusion(hashes[m], n, n, path, root)  # index outside the tree
    if n > 1:
        assert not merkle.verify_inclusion(hashes[m], (m + 1) % n, n, path, root)
        assert not merkle.verify_inclusion(hashes[m], m, n, path[:-1], root)
    assert not merkle.verify_inclusion(hashes[m], m, n, path, merkle.hash_leaf(b"other root"))


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_consistency_proofs_match_the_reference_and_verify(data: st.DataObject) -> None:
    n = data.draw(SIZES)
    m = data.draw(st.integers(min_value=1, max_value=n))
    hashes, node = tree(n)
    proof = merkle.consistency_proof(m, n, node)
    assert proof == ref_subproof(m, leaves_of(n), True)
    r1, r2 = merkle.root_of(hashes[:m]), merkle.root_of(hashes)
    assert merkle.verify_consistency(m, n, r1, r2, proof)
    # a tree that changed a leaf below m is not consistent with the first one
    forked = list(hashes)
    forked[data.draw(st.integers(min_value=0, max_value=m - 1))] = merkle.hash_leaf(b"edited")
    assert not merkle.verify_consistency(m, n, r1, merkle.root_of(forked), proof)
    if proof:
        bad = list(proof)
        i = data.draw(st.integers(min_value=0, max_value=len(bad) - 1))
        bad[i] = bytes(b ^ 1 for b in bad[i])
        assert not merkle.verify_consistency(m, n, r1, r2, bad)
        assert not merkle.verify_consistency(m, n, r1, r2, proof[:-1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8))
def test_appending_in_batches_stores_every_complete_subtree(batches: list[int]) -> None:
    stored: dict[merkle.Node, bytes] = {}
    size, frontier = 0, []
    for count in batches:
        new_leaves = [merkle.hash_leaf(x) for x in leaves_of(size + count)[size:]]
        nodes, frontier = merkle.append_leaves(size, frontier, new_leaves)
        stored.update({(lv, ix): h for lv, ix, h in nodes})
        size += count
        assert [stored[c] for c in merkle.frontier_nodes(size)] == frontier
        assert merkle.root_from_frontier(frontier) == ref_mth(leaves_of(size))
    levels = merkle.levels_of([merkle.hash_leaf(x) for x in leaves_of(size)])
    assert stored == {(lv, ix): h for lv, row in enumerate(levels) for ix, h in enumerate(row)}


def test_nodes_needed_reads_few_rows_for_a_proof_in_a_big_tree() -> None:
    wanted = merkle.nodes_needed(lambda node: merkle.inclusion_proof(123_456, 1_000_000, node))
    assert 0 < len(wanted) <= 2 * 20  # O(log n), whatever the size


def test_empty_and_equal_sizes() -> None:
    hashes, _ = tree(5)
    root = merkle.root_of(hashes)
    assert merkle.verify_consistency(5, 5, root, root, [])
    assert not merkle.verify_consistency(5, 5, root, merkle.root_of(hashes[:4]), [])
    assert merkle.verify_consistency(0, 5, merkle.root_of([]), root, [])
    assert not merkle.verify_consistency(3, 5, merkle.root_of(hashes[:3]), root, [])
