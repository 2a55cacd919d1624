"""The RFC 6962 / RFC 9162 Merkle tree over the log's records.

Hashing (RFC 9162 §2.1.1): a leaf is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)``, the tree of no leaves ``SHA-256("")``; the tree of
``n`` leaves splits at the largest power of two smaller than ``n``.

Three pieces, each used where it fits:

* :class:`CompactRange` holds only the right edge of the tree (one hash per set bit of
  its size): the writer and the audit append leaf hashes one at a time, O(1) amortised
  (O(log n) at worst) per append, and read the root at any size they reach.
* :class:`MerkleTree` keeps every level of a finished tree, so inclusion proofs (§2.1.3.1)
  and consistency proofs (§2.1.4.1) of any size up to its own cost O(log² n) hashes.
* :func:`verify_inclusion` and :func:`verify_consistency` are the verification
  algorithms of §2.1.3.2 and §2.1.4.2, pure functions of their arguments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes | memoryview) -> bytes:
    """``SHA-256(0x00 || data)``."""
    h = _sha256(b"\x00")
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The right edge of a growing tree: the roots of its perfect subtrees, largest first."""

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (not the leaf data)."""
        h, n, stack = leaf, self.size, self.stack
        while n & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1

    def root(self) -> bytes:
        """The root of the tree of every leaf appended so far."""
        if not self.stack:
            return EMPTY_ROOT
        it = reversed(self.stack)
        h = next(it)
        for left in it:
            h = _sha256(b"\x01" + left + h).digest()
        return h

    def copy(self) -> CompactRange:
        other = CompactRange()
        other.size, other.stack = self.size, list(self.stack)
        return other


class MerkleTree:
    """Every level of the tree over ``leaves`` (leaf hashes); proofs of any size up to it."""

    def __init__(self, leaves: Iterable[bytes]) -> None:
        level = list(leaves)
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            pairs = range(0, len(level) - 1, 2)
            level = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in pairs]
            self.levels.append(level)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is not between 0 and {self.size}")

    def _hash(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), a range the RFC's recursion reaches."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first ``size`` leaves (all of them by default)."""
        size = self.size if size is None else size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, from the leaf up."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is not below tree size {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:  # descend, collecting siblings from the top
            k = _split(end - start)
            if index < start + k:
                proof.append(self._hash(start + k, end))
                end = start + k
            else:
                proof.append(self._hash(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1 (empty when the sizes are
        equal or ``old_size`` is 0)."""
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"old size {old_size} is not between 0 and {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        m, start, end, complete = old_size, 0, new_size, True
        while m != end - start:  # SUBPROOF(m, D[start:end], complete), top down
            k = _split(end - start)
            if m <= k:
                proof.append(self._hash(start + k, end))
                end = start + k
            else:
                proof.append(self._hash(start, start + k))
                m, start, complete = m - k, start + k, False
        if not complete:
            proof.append(self._hash(start, end))
        proof.reverse()
        return proof


def _hashes_ok(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """The root that ``proof`` gives for leaf hash ``leaf`` at ``index`` of ``size``
    (RFC 9162 §2.1.3.2), or None if the proof cannot belong to such a tree."""
    if not 0 <= index < size or not _hashes_ok(leaf, *proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Does ``proof`` show leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``?"""
    return _hashes_ok(root) and root_from_inclusion_proof(index, size, leaf, proof) == root


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """Does ``proof`` show the tree ``old_root`` of ``old_size`` is a prefix of the tree
    ``new_root`` of ``new_size`` (RFC 9162 §2.1.4.2)?"""
    if not 0 <= old_size <= new_size or not _hashes_ok(old_root, new_root, *proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
