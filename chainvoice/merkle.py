"""RFC 9162 §2.1 Merkle tree over a block's transactions and receipts: root, inclusion proofs.

Leaf hash ``SHA256(0x00 || leaf)``, node hash ``SHA256(0x01 || left || right)``, the tree split
at the largest power of two smaller than n, the empty tree ``SHA256("")``.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1."""
    if not leaves:
        return EMPTY_ROOT
    return root_of_hashes([leaf_hash(x) for x in leaves])


def root_of_hashes(level: list[bytes]) -> bytes:
    """Root from already-computed leaf hashes.

    Built bottom-up, carrying a lone last node up a level unchanged. This yields the same tree as
    RFC 9162's top-down split at the largest power of two below n: in that split the left part is
    always a perfect tree, so every unpaired node sits at the right edge of its level.
    """
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: sibling hashes from the leaf up to the root."""
    return inclusion_proof_from_hashes([leaf_hash(x) for x in leaves], index)


def inclusion_proof_from_hashes(level: list[bytes], index: int) -> list[bytes]:
    n = len(level)
    if not 0 <= index < n:
        raise IndexError(f"leaf index {index} outside a tree of size {n}")
    path: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        # else: the node is carried up unchanged, no sibling at this level
        nxt = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
        index >>= 1
    return path


def verify_inclusion(leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: verify that ``leaf`` is entry ``index`` of a tree of ``tree_size``."""
    return verify_inclusion_of_hash(leaf_hash(leaf), index, tree_size, path, root_hash)


def verify_inclusion_of_hash(
    hash_: bytes, index: int, tree_size: int, path: Sequence[bytes], root_hash: bytes
) -> bool:
    if not (0 <= index < tree_size):
        return False
    fn, sn = index, tree_size - 1
    r = hash_
    for p in path:
        if len(p) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash
