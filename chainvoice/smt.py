"""The state tree of SPEC §5: a compressed sparse Merkle tree over 256-bit keys, its
content-addressed node storage, batched updates, and inclusion / absence proofs.

Hashing (SPEC §5, exact; an independent verifier checks these byte for byte):

- leaf hash ``SHA256(0x00 || key || value_hash)``, where ``value_hash = SHA256(value)``; the
  tree deals only in value hashes, callers hash the canonical value themselves;
- internal node hash ``SHA256(0x01 || left || right)``;
- an empty subtree is ``EMPTY`` (32 zero bytes), so the empty tree's root is ``EMPTY``;
- a subtree holding exactly one leaf *is* that leaf's hash: the leaf sits at the shallowest depth
  where it is alone. An internal node exists only where its subtree holds >= 2 leaves. There is no
  other compression: where two keys share a long prefix, every shared depth has an internal node
  with one ``EMPTY`` child.
- key bits are read most significant bit first: bit i of ``key`` is
  ``(key[i // 8] >> (7 - i % 8)) & 1``; bit i chooses the child (0 left, 1 right) at depth i+1.

Because the shape is canonical, the root depends only on the final key -> value_hash set, never on
insertion order or on how writes were split into blocks.

Storage: a node's hash is SHA256 of its first 65 bytes, the hash preimage above (a leaf is
``0x00 || key || value_hash``, an internal node ``0x01 || left || right``). Nodes are stored by
*version* and hash: each update makes its new nodes at one version (the node stores the block
height), and an internal node's stored bytes carry its children's versions after the preimage,
``0x01 || left || right || left_version || right_version`` (8 bytes big-endian each; zero beside
an EMPTY child). So a walk from a root whose version it knows names every node's full storage key
without any index, and the nodes of one update are written together under one version (as
Diem's Jellyfish Merkle tree does) instead of scattered over a hash-ordered key space. Nothing is
overwritten or pruned, so every root ever produced stays readable and provable.

Entries of several levels: the store holds *entries*, not single nodes. A leaf, and an internal
node at a depth that is a multiple of ``LEVELS_PER_ENTRY``, has an entry of its own (under its
version and hash); an internal node at any other depth lives inside the entry of the nearest
such ancestor. Above the deepest level of an entry, a node's stored bytes are followed by a flags
byte (bit 0: the left child is an internal node stored here, bit 1: the right one) and then
those children's stored bytes (each the same way), left first. So one read brings
``LEVELS_PER_ENTRY`` levels of a path, and an update writes that many times fewer entries; what
it pays is copying an unchanged sibling's few nodes into the rewritten entry. An entry's first 81
bytes are its root node's stored bytes, so reading a node's hash and children is the same for
every node, inside an entry or not.

API::

    EMPTY: bytes
    leaf_hash(key, value_hash) -> bytes
    node_hash(left, right) -> bytes
    value_hash(value) -> bytes                          # SHA256(value)
    state_key(prefix, ident) -> bytes                   # SHA256(prefix + ident), e.g. b"invoice/"

    version(n) -> bytes                                 # a version as stored: 8 bytes big-endian
    class NodeStore(Protocol):                          # get(h, version) -> bytes | None
                                                        # put_many({h: stored bytes}, version)
    MemoryNodeStore()                                   # a dict by hash (versions not needed)
    LEVELS_PER_ENTRY                                    # tree levels per stored entry
    inline_children(stored, depth % LEVELS_PER_ENTRY)   # (left, right) stored inside, or None

    tree = SparseMerkleTree(store)
    tree.update(root, {key: value_hash | None}, at=V, root_at=R) -> (new_root, new_nodes)
    tree.get(root, key, root_at=R) -> value_hash | None
    tree.prove(root, key, root_at=R) -> Proof

    Proof(siblings: tuple[bytes, ...], other_leaf: tuple[key, value_hash] | None)
    Proof.to_json() -> {"siblings": [hex, ...], "other_leaf": {"key": hex, "value_hash": hex} | None}
    Proof.from_json(d) -> Proof                         # raises ProofFormatError
    verify_inclusion(root, key, value_hash, proof) -> bool
    verify_absence(root, key, proof) -> bool            # never raise on malformed proofs

    ProofFormatError(ValueError)                        # bad proof JSON
    MissingNodeError(LookupError)                       # a root or node not in the store
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

_sha256 = hashlib.sha256

# Keys and hashes are SHA-256 outputs: 256 bits, so a path is at most 256 levels deep.
KEY_BYTES = 32
KEY_BITS = 256
HASH_BYTES = 32

# SPEC §5: the empty subtree is 32 zero bytes (not SHA256 of anything, so no node can hash to it
# short of a preimage of zero).
EMPTY = b"\x00" * HASH_BYTES

# Node tags, the first byte of a node's stored bytes and of its hash preimage (SPEC §5). Distinct
# tags keep a leaf from ever being read as an internal node and vice versa.
_LEAF_TAG = b"\x00"
_NODE_TAG = b"\x01"
NODE_BYTES = 1 + 2 * HASH_BYTES  # 65: tag + key + value_hash, or tag + left + right (the preimage)
VERSION_BYTES = 8
# An internal node as stored: the preimage, then its children's versions.
STORED_NODE_BYTES = NODE_BYTES + 2 * VERSION_BYTES  # 81
# Entries (see the module's docstring): a node above an entry's deepest level is stored as its
# stored bytes, a flags byte, then the stored bytes of each child that is an internal node (bit
# 0 the left, bit 1 the right). Three levels per entry: with 1,000,000 invoices preloaded
# (scripts/bench.py --preload 1000000, 2026-12-07) the network committed 3,359.7 tx/s with 3
# levels, 3,236.3 with 4 and 3,283.2 and 3,329.8 with 2 (one hour, single runs), and on three
# later pairs alternating with single nodes 3,156.6-3,296.6 against 2,733.2-2,936.5 (figures in
# docs/performance.md). What it costs: an update copies an unchanged sibling's inline nodes into
# the rewritten entry (at 400,000 keys, 2,734 bytes per written key against 1,591).
_WITH_FLAGS = STORED_NODE_BYTES + 1
LEVELS_PER_ENTRY = 3
assert LEVELS_PER_ENTRY >= 2
_LAST = LEVELS_PER_ENTRY - 1  # depth % LEVELS_PER_ENTRY of an entry's deepest level
_FLAGS = (b"\x00", b"\x01", b"\x02", b"\x03")
# The version beside an EMPTY child (never read).
_NO_VERSION = b"\x00" * VERSION_BYTES

# A path ends at depth <= 256 (two keys sharing 255 bits split at depth 255 into leaves at 256),
# so an honest proof never has more siblings than this; a longer one is rejected unread.
MAX_SIBLINGS = KEY_BITS

# What the update pass knows about a subtree it returns. UNKNOWN: untouched, not loaded; only
# resolved (one store read) if the sibling became empty and a lone leaf might have to be lifted.
_K_EMPTY = 0
_K_LEAF = 1
_K_NODE = 2
_K_UNKNOWN = 3


class ProofFormatError(ValueError):
    """A proof's JSON form is malformed (wrong keys, types, hex or lengths)."""


class MissingNodeError(LookupError):
    """A node the walk needs is not in the store: an unknown root, or a store that lost data."""

    def __init__(self, node_hash: bytes) -> None:
        super().__init__(f"state tree node {node_hash.hex()} is not in the store")
        self.node_hash = node_hash


# --- hashing -------------------------------------------------------------------------------------


def leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    """SHA256(0x00 || key || value_hash) (SPEC §5)."""
    return _sha256(_LEAF_TAG + key + value_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA256(0x01 || left || right) (SPEC §5)."""
    return _sha256(_NODE_TAG + left + right).digest()


def value_hash(value: bytes) -> bytes:
    """SHA256(value): what the tree stores for a value (SPEC §5)."""
    return _sha256(value).digest()


def state_key(prefix: bytes, ident: bytes) -> bytes:
    """A state key, SHA256(prefix + ident); an invoice's is ``state_key(b"invoice/", number)``."""
    return _sha256(prefix + ident).digest()


# --- storage -------------------------------------------------------------------------------------


class NodeStore(Protocol):
    """Tree entries by (version, hash). ``get(h, at)`` is the entry (see the module's docstring)
    whose top node has hash ``h``, stored at version ``at`` (8 bytes); ``put_many(entries, at)``
    stores ``{hash: entry}`` at version ``at``. A hash always names the same preimage, so any
    order and repetition of writes is harmless."""

    def get(self, node_hash: bytes, at: bytes) -> bytes | None: ...

    def put_many(self, nodes: Mapping[bytes, bytes], at: bytes) -> None: ...


def _hot_get(store: Any) -> Any:
    """The ``get`` of the store's ``hot`` mapping (hash -> stored bytes), if it has one: nodes it
    holds in memory, which an update reads first with a bare dict lookup before calling the
    store's ``get``. Any stored copy of a node will do (a hash names one preimage, and every copy's
    child versions are valid), so the mapping need not know versions."""
    hot = getattr(store, "hot", None)
    return _NO_HOT.get if hot is None else hot.get


_NO_HOT: dict[bytes, bytes] = {}


def version(n: int) -> bytes:
    """A version as nodes store it: 8 bytes big-endian (the block height that wrote the node)."""
    return n.to_bytes(VERSION_BYTES, "big")


class MemoryNodeStore:
    """A NodeStore in a dict by hash (tests, simulation, benchmarks): a hash alone finds a node,
    so versions are not needed to read; any stored copy's child versions are valid."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get(self, node_hash: bytes, at: bytes = b"") -> bytes | None:
        return self.nodes.get(node_hash)

    def put_many(self, nodes: Mapping[bytes, bytes], at: bytes = b"") -> None:
        self.nodes.update(nodes)

    def __len__(self) -> int:
        return len(self.nodes)


# --- proofs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """A path from the root towards ``key`` (SPEC §5).

    ``siblings[i]`` is the sibling hash at depth i+1 on the key's path (top-down). The path ends
    where the walk meets a leaf or ``EMPTY``. ``other_leaf`` is ``(key, value_hash)`` of the
    *different* leaf found there (an absence proof); it is ``None`` for an inclusion proof and for
    an absence proof that ends in an empty slot.
    """

    siblings: tuple[bytes, ...]
    other_leaf: tuple[bytes, bytes] | None = None

    def to_json(self) -> dict[str, Any]:
        other = None
        if self.other_leaf is not None:
            other = {"key": self.other_leaf[0].hex(), "value_hash": self.other_leaf[1].hex()}
        return {"siblings": [s.hex() for s in self.siblings], "other_leaf": other}

    @classmethod
    def from_json(cls, d: Any) -> Proof:
        """Parse the form ``to_json`` writes, exactly; anything else raises ProofFormatError."""
        if not isinstance(d, dict):
            raise ProofFormatError("proof must be a JSON object")
        if set(d) != {"siblings", "other_leaf"}:
            raise ProofFormatError(
                f"proof must have exactly the keys 'siblings' and 'other_leaf', got {sorted(map(str, d))}"
            )
        raw_siblings = d["siblings"]
        if not isinstance(raw_siblings, list):
            raise ProofFormatError("proof 'siblings' must be a list of hex strings")
        if len(raw_siblings) > MAX_SIBLINGS:
            raise ProofFormatError(f"proof has {len(raw_siblings)} siblings, at most {MAX_SIBLINGS}")
        siblings = tuple(_hash_from_hex(s, f"siblings[{i}]") for i, s in enumerate(raw_siblings))
        raw_other = d["other_leaf"]
        if raw_other is None:
            return cls(siblings, None)
        if not isinstance(raw_other, dict) or set(raw_other) != {"key", "value_hash"}:
            raise ProofFormatError(
                "proof 'other_leaf' must be null or an object with exactly 'key' and 'value_hash'"
            )
        other = (
            _hash_from_hex(raw_other["key"], "other_leaf.key"),
            _hash_from_hex(raw_other["value_hash"], "other_leaf.value_hash"),
        )
        return cls(siblings, other)


def _hash_from_hex(text: Any, where: str) -> bytes:
    # Lowercase only: SPEC §6 writes bytes as lowercase hex, and one spelling per proof keeps
    # proofs comparable as text.
    if not isinstance(text, str) or len(text) != 2 * HASH_BYTES:
        raise ProofFormatError(f"proof {where} must be {2 * HASH_BYTES} lowercase hex characters")
    if text != text.lower():
        raise ProofFormatError(f"proof {where} must be lowercase hex")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ProofFormatError(f"proof {where} is not hex: {text!r}") from None


def verify_inclusion(root: bytes, key: bytes, value_hash: bytes, proof: Proof) -> bool:
    """True iff ``proof`` shows ``key -> value_hash`` in the tree with root ``root`` (SPEC §5)."""
    if proof.other_leaf is not None or not _is_hash(key) or not _is_hash(value_hash):
        return False
    start = _sha256(_LEAF_TAG + key + value_hash).digest()
    return _folds_to(root, key, start, proof.siblings)


def verify_absence(root: bytes, key: bytes, proof: Proof) -> bool:
    """True iff ``proof`` shows ``key`` has no value in the tree with root ``root`` (SPEC §5)."""
    if not _is_hash(key):
        return False
    siblings = proof.siblings
    other = proof.other_leaf
    if other is None:
        return _folds_to(root, key, EMPTY, siblings)
    if type(other) is not tuple or len(other) != 2:
        return False
    other_key, other_value_hash = other
    if not _is_hash(other_key) or not _is_hash(other_value_hash) or other_key == key:
        return False
    # The other leaf must sit on the queried key's path: it shares the first len(siblings) bits.
    # Otherwise a real leaf could be presented at a position it does not occupy.
    depth = len(siblings)
    if depth > MAX_SIBLINGS:
        return False
    diff = int.from_bytes(key, "big") ^ int.from_bytes(other_key, "big")
    if diff >> (KEY_BITS - depth):
        return False
    start = _sha256(_LEAF_TAG + other_key + other_value_hash).digest()
    return _folds_to(root, key, start, siblings)


def _folds_to(root: bytes, key: bytes, h: bytes, siblings: Sequence[bytes]) -> bool:
    """Fold ``h`` up the key's path with ``siblings`` (last to first) and compare with ``root``."""
    n = len(siblings)
    if n > MAX_SIBLINGS or not _is_hash(root):
        return False
    # Canonical form: the node at the end of an honest path is a leaf or EMPTY whose parent holds
    # >= 2 leaves, so the last sibling is never EMPTY. Refusing it costs nothing and leaves each
    # (root, key) exactly one valid proof.
    if n and siblings[-1] == EMPTY:
        return False
    k = int.from_bytes(key, "big")
    sha = _sha256
    for i in range(n - 1, -1, -1):
        s = siblings[i]
        if type(s) is not bytes or len(s) != HASH_BYTES:
            return False
        if (k >> (255 - i)) & 1:
            h = sha(_NODE_TAG + s + h).digest()
        else:
            h = sha(_NODE_TAG + h + s).digest()
    return h == root


# --- the tree ------------------------------------------------------------------------------------


class SparseMerkleTree:
    """Reads and batch-updates state trees kept in ``store``. Holds no root itself: every call
    names the root it works on (and the version that stored it), so any committed or speculative
    root can be used."""

    def __init__(self, store: NodeStore) -> None:
        self.store = store

    def update(
        self, root: bytes, writes: Mapping[bytes, bytes | None], *, at: int = 0, root_at: int = 0
    ) -> tuple[bytes, dict[bytes, bytes]]:
        """Apply ``writes`` (key -> new value_hash, or None to delete) to the tree at ``root``
        (stored at version ``root_at``), making the nodes of version ``at``.

        All writes go in one top-down pass: keys are sorted, partitioned by bit at each depth, and
        each node of the old tree is read at most once. Returns ``(new_root, new_nodes)``, where
        ``new_nodes`` maps hash -> entry of every entry stored at version ``at``; they are
        also written to the store with one ``put_many``. Deleting an absent key changes nothing.

        The new root (unless EMPTY) is always among them, even when it is an older node (no
        change, or a leaf lifted to the top by deletes): so the root of version ``at`` is always
        found at ``at``, and the caller needs to know no other version.
        """
        _check_hash(root, "root")
        at_bytes = version(at)
        items = sorted(writes.items())
        for k, v in items:
            _check_hash(k, "key")
            if v is not None:
                _check_hash(v, "value hash")
        batch = _Batch(
            self.store.get,
            _hot_get(self.store),
            at_bytes,
            [int.from_bytes(k, "big") for k, _ in items],
            [k for k, _ in items],
            [v for _, v in items],
        )
        if not items:
            new_root, new_root_at = root, version(root_at)
        elif len(items) == 1:
            new_root, _, new_root_at, _ = batch.apply_one(root, version(root_at), 0, 0, None)
        else:
            new_root, _, new_root_at, _ = batch.apply(root, version(root_at), 0, 0, len(items), None)
        if new_root != EMPTY and new_root_at != at_bytes:
            batch.new_nodes[new_root] = batch.load(new_root, new_root_at)
        if batch.new_nodes:
            self.store.put_many(batch.new_nodes, at_bytes)
        return new_root, batch.new_nodes

    def get(self, root: bytes, key: bytes, root_at: int = 0) -> bytes | None:
        """The value hash stored under ``key`` in the tree ``root`` (stored at version ``root_at``),
        or None."""
        found = self.find(root, key, root_at)
        return None if found is None else found[0]

    def find(self, root: bytes, key: bytes, root_at: int = 0) -> tuple[bytes, bytes] | None:
        """``(value hash, version)`` of ``key``'s leaf in the tree ``root``, or None. The version
        is the one that wrote the leaf, i.e. the value (a leaf moved by later writes keeps its
        version), except for a root copied forward to a later version."""
        _, leaf, at = self._walk(root, root_at, key, None)
        if leaf is not None and leaf[1:33] == key:
            return leaf[33:65], at
        return None

    def prove(self, root: bytes, key: bytes, root_at: int = 0) -> Proof:
        """Inclusion proof if ``key`` is present at ``root``, else absence proof (SPEC §5)."""
        siblings: list[bytes] = []
        _, leaf, _ = self._walk(root, root_at, key, siblings)
        other = None
        if leaf is not None and leaf[1:33] != key:
            other = (leaf[1:33], leaf[33:65])
        return Proof(tuple(siblings), other)

    def _walk(
        self, root: bytes, root_at: int, key: bytes, siblings: list[bytes] | None
    ) -> tuple[int, bytes | None, bytes]:
        """Follow ``key``'s path from ``root`` to a leaf or EMPTY; return (depth, leaf bytes or
        None, the leaf's version), collecting the siblings on the way if asked."""
        _check_hash(root, "root")
        _check_hash(key, "key")
        k = int.from_bytes(key, "big")
        get = self.store.get
        h = root
        at = version(root_at)
        depth = 0
        inline = None  # an internal node's stored bytes when it lives inside its parent's
        while h != EMPTY:
            node = inline or get(h, at)
            if node is None:
                raise MissingNodeError(h)
            if node[0] == 0:
                return depth, node, at
            assert depth < KEY_BITS, "internal node below depth 255: corrupt store"
            r = depth % LEVELS_PER_ENTRY
            li, ri = (None, None) if r == _LAST else inline_children(node, r)
            if (k >> (255 - depth)) & 1:
                if siblings is not None:
                    siblings.append(node[1:33])
                h = node[33:65]
                at = node[73:81]
                inline = ri
            else:
                if siblings is not None:
                    siblings.append(node[33:65])
                h = node[1:33]
                at = node[65:73]
                inline = li
            depth += 1
        return depth, None, at


def _is_hash(b: Any) -> bool:
    return type(b) is bytes and len(b) == HASH_BYTES


def _check_hash(b: Any, what: str) -> None:
    if type(b) is not bytes or len(b) != HASH_BYTES:
        raise ValueError(f"{what} must be {HASH_BYTES} bytes, got {type(b).__name__}")


def inline_children(entry: bytes, r: int) -> tuple[bytes | None, bytes | None]:
    """The inline children (left, right) of a node at a depth ``r`` mod LEVELS_PER_ENTRY
    (< _LAST), from its stored bytes with their flags: each child that is an internal node is
    stored inside it, or None."""
    if len(entry) == _WITH_FLAGS:
        return None, None
    flags = entry[STORED_NODE_BYTES]
    if flags == 3:
        n = _inline_length(entry, _WITH_FLAGS, r + 1)
        return entry[_WITH_FLAGS:_WITH_FLAGS + n], entry[_WITH_FLAGS + n:]
    if flags == 1:
        return entry[_WITH_FLAGS:], None
    return None, entry[_WITH_FLAGS:]


def _inline_length(entry: bytes, at: int, r: int) -> int:
    """The length of the inline node starting at ``at`` (at a depth ``r`` mod LEVELS_PER_ENTRY)."""
    if r == _LAST:
        return STORED_NODE_BYTES
    flags = entry[at + STORED_NODE_BYTES]
    n = _WITH_FLAGS
    if flags & 1:
        n += _inline_length(entry, at + n, r + 1)
    if flags & 2:
        n += _inline_length(entry, at + n, r + 1)
    return n


class _Batch:
    """One batched update: the sorted writes and the nodes created so far.

    ``keys`` (ints, ascending), ``key_bytes`` and ``values`` (value hash or None) are parallel
    lists; a subtree's writes are always a contiguous range ``[lo, hi)`` of them, split at each
    depth by bisecting for the first key whose bit at that depth is 1.

    Every subtree is handled as (hash, version, inline): the version its node is stored at, read
    from its parent's stored bytes on the way down, and for an internal node without an entry of
    its own (not at a multiple of LEVELS_PER_ENTRY) its stored bytes, taken from its parent's. A
    result is ``(hash, kind, version, inline)``: an untouched or lifted subtree keeps its old
    version, a rebuilt one has the batch's ``at``.
    """

    def __init__(
        self,
        get: Any,
        hot_get: Any,
        at: bytes,
        keys: list[int],
        key_bytes: list[bytes],
        values: list[bytes | None],
    ) -> None:
        self.get = get
        self.hot_get = hot_get  # see _hot_get: tried first, with no Python call
        self.at = at
        self.keys = keys
        self.key_bytes = key_bytes
        self.values = values
        self.new_nodes: dict[bytes, bytes] = {}

    def load(self, h: bytes, at: bytes) -> bytes:
        node = self.get(h, at)
        if node is None:
            raise MissingNodeError(h)
        return node

    def make(self, depth: int, left: bytes, lv: bytes, li: bytes | None, right: bytes, rv: bytes,
             ri: bytes | None) -> tuple[bytes, bytes | None]:
        """A new internal node at ``depth``: (hash, its stored bytes if it lives inside its
        parent, else None). A node at a multiple of LEVELS_PER_ENTRY is stored as an entry, with
        the internal nodes of the levels below it inside."""
        node = _NODE_TAG + left + right
        h = _sha256(node).digest()
        stored = node + lv + rv
        r = depth % LEVELS_PER_ENTRY
        if r == _LAST:
            return h, stored
        if li is None:
            stored = stored + _FLAGS[0] if ri is None else stored + _FLAGS[2] + ri
        else:
            stored = stored + _FLAGS[1] + li if ri is None else stored + _FLAGS[3] + li + ri
        if r:
            return h, stored
        self.new_nodes[h] = stored
        return h, None

    def kind_of(self, h: bytes, hv: bytes, inline: bytes | None, depth: int) -> int:
        """Leaf or internal node, for a non-EMPTY subtree at ``depth`` the batch did not touch."""
        if depth % LEVELS_PER_ENTRY:
            return _K_LEAF if inline is None else _K_NODE
        return _K_LEAF if self.load(h, hv)[0] == 0 else _K_NODE

    def apply(self, h: bytes, hv: bytes, depth: int, lo: int, hi: int,
              inline: bytes | None) -> tuple[bytes, int, bytes, bytes | None]:
        """New (hash, kind, version, inline) of the subtree ``h`` (version ``hv``; its stored
        bytes ``inline`` if it lives in its parent's entry) at ``depth`` after >= 2 writes
        ``[lo, hi)``."""
        if h == EMPTY:
            return self.build_from(depth, lo, hi, None)
        node = inline or self.hot_get(h) or self.get(h, hv)
        if node is None:
            raise MissingNodeError(h)
        if node[0] == 0:
            return self.build_from(depth, lo, hi, node)
        keys = self.keys
        shift = 255 - depth
        # First key in [lo, hi) whose bit `depth` is 1: they share the first `depth` bits.
        mid = bisect_left(keys, ((keys[lo] >> shift) | 1) << shift, lo, hi)
        old_left = left = node[1:33]
        old_right = right = node[33:65]
        lv = node[65:73]
        rv = node[73:81]
        r = depth % LEVELS_PER_ENTRY
        li, ri = (None, None) if r == _LAST else inline_children(node, r)
        lk = rk = _K_UNKNOWN
        below = depth + 1
        if mid - lo == 1:
            left, lk, lv, li = self.apply_one(left, lv, below, lo, li)
        elif mid > lo:
            left, lk, lv, li = self.apply(left, lv, below, lo, mid, li)
        if hi - mid == 1:
            right, rk, rv, ri = self.apply_one(right, rv, below, mid, ri)
        elif mid < hi:
            right, rk, rv, ri = self.apply(right, rv, below, mid, hi, ri)
        if left == old_left and right == old_right:
            return h, _K_NODE, hv, inline  # nothing changed below: no node to rewrite
        if left == EMPTY or right == EMPTY:
            return self.join(depth, left, lk, lv, li, right, rk, rv, ri)
        h, made = self.make(depth, left, lv, li, right, rv, ri)
        return h, _K_NODE, self.at, made

    def join(self, depth: int, left: bytes, lk: int, lv: bytes, li: bytes | None, right: bytes, rk: int,
             rv: bytes, ri: bytes | None) -> tuple[bytes, int, bytes, bytes | None]:
        """The canonical node at ``depth`` over two subtrees: a lone leaf beside EMPTY is lifted
        (SPEC §5)."""
        if left == EMPTY:
            if right == EMPTY:
                return EMPTY, _K_EMPTY, _NO_VERSION, None
            if rk == _K_UNKNOWN:
                rk = self.kind_of(right, rv, ri, depth + 1)
            if rk == _K_LEAF:
                return right, _K_LEAF, rv, None
        elif right == EMPTY:
            if lk == _K_UNKNOWN:
                lk = self.kind_of(left, lv, li, depth + 1)
            if lk == _K_LEAF:
                return left, _K_LEAF, lv, None
        h, made = self.make(depth, left, lv, li, right, rv, ri)
        return h, _K_NODE, self.at, made

    def apply_one(self, h: bytes, hv: bytes, depth: int, i: int,
                  inline: bytes | None) -> tuple[bytes, int, bytes, bytes | None]:
        """One write into subtree ``h`` (version ``hv``, stored bytes ``inline`` if it lives in
        its parent's entry): walk down to a leaf or EMPTY, replace it, fold back up.

        Most writes of a block end up alone in their subtree a few levels down, so this path is
        the hot one; it avoids recursion and bisection.
        """
        k = self.keys[i]
        get = self.get
        hot_get = self.hot_get
        h0, hv0, inline0 = h, hv, inline
        at = self.at
        # What each internal node on the way down contributes to its rebuilt version, as
        # (sibling part, sibling version, sibling inline): for a step right (bit 1) its first 33
        # bytes (tag + left child), so the new node is that + the new right child; for a step
        # left (bit 0) its right child (32 bytes), the new node being tag + new left + that. The
        # length of the part tells the two apart on the way back up. The sibling's inline bytes
        # are its stored bytes if it is an internal node inside this node's entry.
        path: list[tuple[bytes, bytes, bytes | None]] = []
        append = path.append
        shift = 255 - depth  # bit `depth` of k is (k >> shift) & 1
        while h != EMPTY:
            bottom = inline or hot_get(h) or get(h, hv)
            if bottom is None:
                raise MissingNodeError(h)
            if bottom[0] == 0:
                break  # a leaf
            r = (255 - shift) % LEVELS_PER_ENTRY
            if r == _LAST:
                li = ri = None  # its children are entries of their own
            else:
                li, ri = inline_children(bottom, r)
            if k >> shift & 1:
                append((bottom[:33], bottom[65:73], li))
                h = bottom[33:65]
                hv = bottom[73:81]
                inline = ri
            else:
                append((bottom[33:65], bottom[73:81], ri))
                h = bottom[1:33]
                hv = bottom[65:73]
                inline = li
            shift -= 1
        else:
            bottom = None  # an empty slot

        kb = self.key_bytes[i]
        vh = self.values[i]
        new_nodes = self.new_nodes
        cur_v = at
        cur_i = None
        if bottom is None:
            if vh is None:
                return h0, (_K_NODE if path else _K_EMPTY), hv0, inline0  # deleting an absent key
            leaf = _LEAF_TAG + kb + vh
            cur = _sha256(leaf).digest()
            new_nodes[cur] = leaf
            kind = _K_LEAF
        elif bottom[1:33] == kb:  # the key's own leaf
            if vh is None:
                cur = EMPTY
                kind = _K_EMPTY
                cur_v = _NO_VERSION
            else:
                if bottom[33:65] == vh:
                    return h0, (_K_NODE if path else _K_LEAF), hv0, inline0  # unchanged value
                leaf = _LEAF_TAG + kb + vh
                cur = _sha256(leaf).digest()
                new_nodes[cur] = leaf
                kind = _K_LEAF
        else:  # another key's leaf occupies the slot: both go under a new subtree here
            if vh is None:
                return h0, (_K_NODE if path else _K_LEAF), hv0, inline0
            leaf = _LEAF_TAG + kb + vh
            mine = _sha256(leaf).digest()
            new_nodes[mine] = leaf
            cur, cur_i = self.pair(255 - shift, k, mine, int.from_bytes(bottom[1:33], "big"), h, hv)
            kind = _K_NODE

        # Fold back up to `depth`. While the new subtree is EMPTY or a lone leaf (after a delete,
        # or at the bottom) keep the shape canonical; from the first level where it meets a
        # sibling, every level above is a new internal node: just rehash.
        j = len(path)
        while j and kind != _K_NODE:
            part, part_v, part_i = path[j - 1]
            s = part[1:] if len(part) == 33 else part
            if s == EMPTY:
                j -= 1
                continue  # EMPTY or a lone leaf beside EMPTY rises a level unchanged
            if kind == _K_EMPTY and self.kind_of(s, part_v, part_i, depth + j) == _K_LEAF:
                cur = s  # the sibling leaf is now alone here: lift it, with its version
                cur_v = part_v
                kind = _K_LEAF
                j -= 1
                continue
            break  # a sibling to pair with: from here up every level is a new internal node
        del path[j:]
        if path:
            kind = _K_NODE
        sha = _sha256
        flags = _FLAGS
        levels = LEVELS_PER_ENTRY
        last = _LAST
        d = depth + j  # the depth of `cur`
        for part, part_v, part_i in reversed(path):
            d -= 1
            if len(part) == 33:
                node = part + cur
                stored = node + part_v + cur_v
                li, ri = part_i, cur_i
            else:
                node = _NODE_TAG + cur + part
                stored = node + cur_v + part_v
                li, ri = cur_i, part_i
            cur = sha(node).digest()
            cur_v = at
            r = d % levels
            if r == last:
                cur_i = stored
                continue
            if li is None:
                stored = stored + flags[0] if ri is None else stored + flags[2] + ri
            else:
                stored = stored + flags[1] + li if ri is None else stored + flags[3] + li + ri
            if r:
                cur_i = stored
                continue
            cur_i = None
            new_nodes[cur] = stored
        return cur, kind, cur_v, cur_i

    def pair(self, depth: int, k1: int, h1: bytes, k2: int, h2: bytes, v2: bytes) -> tuple[bytes, bytes | None]:
        """The subtree at ``depth`` holding exactly the two leaves ``h1`` (key k1, new) and ``h2``
        (key k2, stored at ``v2``), which share their first ``depth`` bits: an internal node where
        they split, and above it one internal node with an EMPTY child per shared bit. Returns
        (hash, inline bytes) as ``make`` does."""
        split = KEY_BITS - (k1 ^ k2).bit_length()  # first bit where they differ
        assert depth <= split < KEY_BITS
        at = self.at
        if (k1 >> (255 - split)) & 1:
            top = self.make(split, h2, v2, None, h1, at, None)
        else:
            top = self.make(split, h1, at, None, h2, v2, None)
        return self.chain(top, k1, split, depth)

    def chain(self, top: tuple[bytes, bytes | None], k: int, split: int, depth: int) -> tuple[bytes, bytes | None]:
        """Wrap the node ``top`` (hash, inline) made at depth ``split`` in single-child parents up
        to ``depth``, following the bits of ``k``; return the top (hash, inline)."""
        cur, cur_i = top
        at = self.at
        make = self.make
        for d in range(split - 1, depth - 1, -1):
            if (k >> (255 - d)) & 1:
                cur, cur_i = make(d, EMPTY, _NO_VERSION, None, cur, at, cur_i)
            else:
                cur, cur_i = make(d, cur, at, cur_i, EMPTY, _NO_VERSION, None)
        return cur, cur_i

    def build_from(
        self, depth: int, lo: int, hi: int, leaf: bytes | None
    ) -> tuple[bytes, int, bytes, bytes | None]:
        """Subtree at ``depth`` that was EMPTY or the single leaf ``leaf``, after writes [lo, hi)."""
        keys = self.keys[lo:hi]
        key_bytes = self.key_bytes[lo:hi]
        values = self.values[lo:hi]
        if leaf is not None:
            kb = leaf[1:33]
            k = int.from_bytes(kb, "big")
            at = bisect_left(keys, k)
            if at == len(keys) or keys[at] != k:  # not overwritten by this batch: keep it
                keys.insert(at, k)
                key_bytes.insert(at, kb)
                values.insert(at, leaf[33:65])
        if None in values:
            live = [i for i, v in enumerate(values) if v is not None]
            keys = [keys[i] for i in live]
            key_bytes = [key_bytes[i] for i in live]
            values = [values[i] for i in live]
        n = len(keys)
        if n == 0:
            return EMPTY, _K_EMPTY, _NO_VERSION, None
        if n == 1:
            node = _LEAF_TAG + key_bytes[0] + values[0]  # type: ignore[operator]
            h = _sha256(node).digest()
            self.new_nodes[h] = node
            return h, _K_LEAF, self.at, None
        h, made = self.build(keys, key_bytes, values, 0, n, depth)  # type: ignore[arg-type]
        return h, _K_NODE, self.at, made

    def build(
        self,
        keys: list[int],
        key_bytes: list[bytes],
        values: list[bytes],
        lo: int,
        hi: int,
        depth: int,
    ) -> tuple[bytes, bytes | None]:
        """Fresh subtree at ``depth`` of the >= 1 live entries [lo, hi) (all share ``depth`` bits);
        every node in it is new (version ``at``). Returns (hash, inline bytes) as ``make`` does."""
        if hi - lo == 1:
            node = _LEAF_TAG + key_bytes[lo] + values[lo]
            h = _sha256(node).digest()
            self.new_nodes[h] = node
            return h, None
        first = keys[lo]
        split = KEY_BITS - (first ^ keys[hi - 1]).bit_length()
        shift = 255 - split
        mid = bisect_left(keys, ((first >> shift) | 1) << shift, lo, hi)
        left, li = self.build(keys, key_bytes, values, lo, mid, split + 1)
        right, ri = self.build(keys, key_bytes, values, mid, hi, split + 1)
        at = self.at
        return self.chain(self.make(split, left, at, li, right, at, ri), first, split, depth)
