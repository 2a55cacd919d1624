"""The RFC 6962 tree: published vectors, the Go suite's corruptions, and properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.log.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.log import rfc6962_vectors as v


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAF_DATA = [h(x) for x in v.LEAVES]
LEAF_HASHES = [leaf_hash(x) for x in LEAF_DATA]
SOME = h(v.SHA256_SOME_HASH)
EMPTY = h(v.SHA256_EMPTY_TREE_HASH)


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == v.HASHER_EMPTY_ROOT
    assert leaf_hash(b"").hex() == v.HASHER_EMPTY_LEAF
    assert leaf_hash(b"L123456").hex() == v.HASHER_LEAF_L123456
    assert node_hash(b"N123", b"N456").hex() == v.HASHER_NODE_N123_N456


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_every_size(size: int) -> None:
    tree = MerkleTree(LEAF_HASHES)
    assert tree.root(size).hex() == v.ROOTS[size - 1]
    compact = CompactRange()
    for leaf in LEAF_HASHES[:size]:
        compact.append(leaf)
    assert compact.root().hex() == v.ROOTS[size - 1]
    assert MerkleTree(LEAF_HASHES[:size]).root().hex() == v.ROOTS[size - 1]


def test_empty_tree() -> None:
    assert MerkleTree([]).root() == EMPTY_ROOT == CompactRange().root()


@pytest.mark.parametrize(("leaf", "size", "proof"), v.INCLUSION_PROOFS[1:])
def test_inclusion_vectors(leaf: int, size: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert MerkleTree(LEAF_HASHES).inclusion_proof(leaf - 1, size) == expected
    root = h(v.ROOTS[size - 1])
    assert verify_inclusion(leaf - 1, size, LEAF_HASHES[leaf - 1], expected, root)
    for probe in _corrupt_inclusion(leaf - 1, size, expected, root, LEAF_HASHES[leaf - 1]):
        assert not verify_inclusion(*probe), probe


def _corrupt_inclusion(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[int, int, bytes, list[bytes], bytes]]:
    """The probes of transparency-dev/merkle's corruptInclusionProof."""
    probes = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, b"WrongLeaf", proof, root),
        (index, size, leaf, proof, EMPTY),
        (index, size, leaf, proof, SOME),
        (index, size, leaf, [*proof, b""], root),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [b"", *proof], root),
        (index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((index, size, leaf, wrong, root))
    if proof:
        probes.append((index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        probes.append((index, size, leaf, [SOME, proof[0], *proof[1:]], root))
    return probes


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_degenerate(index: int, size: int) -> None:
    assert not verify_inclusion(index, size, SOME, [], b"")
    assert not verify_inclusion(index, size, b"", [], EMPTY)
    assert not verify_inclusion(index, size, SOME, [], EMPTY)


def test_inclusion_single_entry() -> None:
    one = leaf_hash(b"data")
    assert verify_inclusion(0, 1, one, [], one)
    assert not verify_inclusion(0, 1, b"", [], one)
    assert not verify_inclusion(0, 1, one, [], b"")


@pytest.mark.parametrize(("size1", "size2", "proof"), v.CONSISTENCY_PROOFS)
def test_consistency_vectors(size1: int, size2: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert MerkleTree(LEAF_HASHES).consistency_proof(size1, size2) == expected
    root1, root2 = h(v.ROOTS[size1 - 1]), h(v.ROOTS[size2 - 1])
    assert verify_consistency(size1, size2, expected, root1, root2)
    if not expected:
        return
    for probe in _corrupt_consistency(size1, size2, root1, root2, expected):
        assert not verify_consistency(*probe), probe


def _corrupt_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[int, int, list[bytes], bytes, bytes]]:
    """The probes of transparency-dev/merkle's corruptConsistencyProof."""
    probes = [
        (size1 - 1, size2, proof, root1, root2),
        (size1 + 1, size2, proof, root1, root2),
        (size1 ^ 2, size2, proof, root1, root2),
        (size1, size2 * 2, proof, root1, root2),
        (size1, size2 // 2, proof, root1, root2),
        (size1, size2, proof, b"WrongRoot", root2),
        (size1, size2, proof, root1, b"WrongRoot"),
        (size1, size2, proof, root2, root1),
        (size1, size2, [], root1, root2),
        (size1, size2, [*proof, b""], root1, root2),
        (size1, size2, [*proof, root1], root1, root2),
        (size1, size2, [*proof, root2], root1, root2),
        (size1, size2, [b"", *proof], root1, root2),
        (size1, size2, [root1, *proof], root1, root2),
        (size1, size2, [root2, *proof], root1, root2),
        (size1, size2, [proof[0], *proof], root1, root2),
        (size1, size2, proof[:-1], root1, root2),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((size1, size2, wrong, root1, root2))
    return probes


def test_consistency_edge_cases() -> None:
    r1, r2 = b"don't care 1", b"don't care 2"
    assert not verify_consistency(0, 0, [], r1, r2)
    assert not verify_consistency(1, 1, [], r1, r2)
    assert verify_consistency(0, 0, [], EMPTY, EMPTY)
    assert verify_consistency(0, 1, [], EMPTY, SOME)
    assert verify_consistency(1, 1, [], SOME, SOME)
    assert not verify_consistency(1, 0, [], EMPTY, SOME)
    assert not verify_consistency(2, 1, [], EMPTY, SOME)
    assert not verify_consistency(1, 2, [], EMPTY, SOME)
    assert not verify_consistency(0, 0, [EMPTY], EMPTY, EMPTY)
    assert not verify_consistency(0, 1, [EMPTY], EMPTY, EMPTY)
    assert not verify_consistency(1, 1, [EMPTY], EMPTY, EMPTY)


def test_proof_requests_out_of_range_are_refused() -> None:
    tree = MerkleTree(LEAF_HASHES)
    with pytest.raises(ValueError, match="not below"):
        tree.inclusion_proof(8, 8)
    with pytest.raises(ValueError, match="not between"):
        tree.inclusion_proof(0, 9)
    with pytest.raises(ValueError, match="not between"):
        tree.consistency_proof(5, 4)
    with pytest.raises(ValueError, match="not between"):
        tree.root(9)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


sizes = st.integers(min_value=1, max_value=70)


@settings(max_examples=150, deadline=None)
@given(size=sizes, data=st.data())
def test_every_inclusion_proof_verifies_and_any_bit_flip_fails(
    size: int, data: st.DataObject
) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = MerkleTree(leaves)
    tree_size = data.draw(st.integers(min_value=1, max_value=size))
    index = data.draw(st.integers(min_value=0, max_value=tree_size - 1))
    root = tree.root(tree_size)
    proof = tree.inclusion_proof(index, tree_size)
    assert verify_inclusion(index, tree_size, leaves[index], proof, root)
    assert root_from_inclusion_proof(index, tree_size, leaves[index], proof) == root
    bit = data.draw(st.integers(min_value=0, max_value=256 * (len(proof) + 2) - 1))
    target, offset = divmod(bit, 256)
    if target < len(proof):
        bad = list(proof)
        bad[target] = _flip(bad[target], offset)
        assert not verify_inclusion(index, tree_size, leaves[index], bad, root)
    elif target == len(proof):
        assert not verify_inclusion(index, tree_size, _flip(leaves[index], offset), proof, root)
    else:
        assert not verify_inclusion(index, tree_size, leaves[index], proof, _flip(root, offset))


@settings(max_examples=150, deadline=None)
@given(size=sizes, data=st.data())
def test_every_consistency_proof_verifies_and_any_bit_flip_fails(
    size: int, data: st.DataObject
) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = MerkleTree(leaves)
    new = data.draw(st.integers(min_value=1, max_value=size))
    old = data.draw(st.integers(min_value=1, max_value=new))
    r1, r2 = tree.root(old), tree.root(new)
    proof = tree.consistency_proof(old, new)
    assert verify_consistency(old, new, proof, r1, r2)
    bit = data.draw(st.integers(min_value=0, max_value=256 * (len(proof) + 2) - 1))
    target, offset = divmod(bit, 256)
    if target < len(proof):
        bad = list(proof)
        bad[target] = _flip(bad[target], offset)
        assert not verify_consistency(old, new, bad, r1, r2)
    elif target == len(proof):
        assert not verify_consistency(old, new, proof, _flip(r1, offset), r2)
    else:
        assert not verify_consistency(old, new, proof, r1, _flip(r2, offset))


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=0, max_value=300))
def test_compact_range_agrees_with_the_full_tree_at_every_size(size: int) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    tree = MerkleTree(leaves)
    compact = CompactRange()
    assert compact.root() == tree.root(0)
    for i, leaf in enumerate(leaves):
        compact.append(leaf)
        assert compact.root() == tree.root(i + 1)
    assert len(compact.stack) == bin(size).count("1")
