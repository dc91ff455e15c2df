"""A Merkle tree over record hashes, in the shape of RFC 9162 (Certificate Transparency v2):
leaf = H(0x00 || data), node = H(0x01 || left || right), split at the largest power of two below n.
Inclusion proofs are the audit paths of that RFC, so they can be checked with any CT-style verifier."""

from __future__ import annotations

import hashlib
from typing import Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of already-hashed leaves; the empty tree hashes the empty string."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Iterative form of the RFC's recursion: pair left to right, carry an odd node up unchanged.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Frontier:
    """The tree head kept up to date as leaves are appended, in O(log n) hashes per append and O(log n)
    memory: the roots of the perfect subtrees the leaves so far split into (one per set bit of the size,
    largest first), exactly the left-to-right pairing :func:`root` does. ``root()`` folds them from the
    right, so it equals ``root(all leaves)`` at every size."""

    __slots__ = ("size", "_nodes")

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.size = 0
        self._nodes: list[bytes] = []
        for leaf in leaves:
            self.append(leaf)

    def append(self, leaf: bytes) -> None:
        nodes, n = self._nodes, self.size
        while n & 1:  # every trailing 1 bit is a perfect subtree the new leaf completes
            leaf = node_hash(nodes.pop(), leaf)
            n >>= 1
        nodes.append(leaf)
        self.size += 1

    def root(self) -> bytes:
        nodes = self._nodes
        if not nodes:
            return hashlib.sha256(b"").digest()
        r = nodes[-1]
        for h in reversed(nodes[:-1]):
            r = node_hash(h, r)
        return r


class Roots:
    """Tree heads of prefixes of ``leaves``, for checkpoints that come in increasing size: one pass over
    the leaves in all, instead of one full recomputation per checkpoint. A size below one already asked
    for (checkpoints out of order) is computed on its own."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._leaves = leaves
        self._frontier = Frontier()

    def at(self, size: int) -> bytes:
        if not 0 <= size <= len(self._leaves):
            raise IndexError(f"no prefix of {size} leaves in a tree of {len(self._leaves)}")
        f = self._frontier
        if size < f.size:
            return root(self._leaves[:size])
        for i in range(f.size, size):
            f.append(self._leaves[i])
        return f.root()


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of ``leaves`` (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return inclusion_path(index, leaves[:k]) + [root(leaves[k:])]
    return inclusion_path(index - k, leaves[k:]) + [root(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf hash and its audit path."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root
