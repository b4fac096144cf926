"""The chain store: one atomic, synced write per committed block, and the indexes the API serves.

Layout (one byte prefix per table; heights big-endian so keys sort by height):

    m<name>                     meta: tip, genesis hash, layout; the safety state (msafety)
    t<tx_id>                    [height, index] of a committed transaction
    s<state key>                <height> of the latest state value (under z<height>v<state key>)
    h<number><height><index>    invoice history: every transaction naming it, accepted or not
                                (empty: the entry is the index-th of z<height>x)
    w<holder><number>           wallet: invoices a key currently holds
    e<id>                       consensus evidence (conflicting signed messages)
    a<...>                      audit index for tax supervision (see chainvoice.audit)
    z<height>b                  block (canonical bytes)
    z<height>c                  commit certificate
    z<height>n<node hash>       state-tree node, under the height that wrote it (smt's versions:
                                a parent names its children's, so no index is needed)
    z<height>r                  receipts of the block, with messages and references
    z<height>v<state key>       state value written at that height (the latest, and earlier ones
                                for proofs). A leaf of the tree stored at version V commits to the
                                value of its key under z<V>v, so proofs need no index by hash
    z<height>x                  history entries of the block's transactions, in block order (one
                                value a block: LevelDB's cost is per entry as much as per byte)

Everything a block adds for good is under ``z<height>``: the bulk of the store (tree nodes and
values) is appended at one point, the end of the key space. LevelDB then moves those tables down
its levels without rewriting them; only the small indexes under random keys (transactions, state
keys) are merged level after level, so they hold as few bytes as they can: the state index only
a height, the history only its keys. (Separate tables per kind, each appended at its own point,
were rewritten at every level: the table file that holds the end of one and the start of the
next overlaps every new table.)

The ``z`` entries can live in a key-value store of their own (``blocks``), so that the indexes'
random keys never share a table file, or a compaction, with them; and the safety state in one of
its own (``safety``), so that its versions, a block's size each, rewritten before every vote, do
not fill the indexes' memtable (see ``leveldb.SAFETY_DIR``). A block is then written in two
synced writes: its ``z`` entries first, then the indexes with the new tip. A crash between the
two leaves entries above the tip, which ``open`` drops: the block commits again.

Every block's index entries, including the new tip, go in one write batch, so after a crash the
store is always exactly at a block boundary: the last block either fully committed or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .. import audit, codec
from ..chain.block import Block, CommitCertificate, Header
from ..chain.chain import BlockCommit, genesis_commit
from ..chain.genesis import Genesis
from ..ledger.records import Receipt
from ..smt import EMPTY
from .kv import KeyValue
from .digestfilter import DigestFilter

_TIP = b"mtip"
_GENESIS = b"mgenesis"
_SAFETY = b"msafety"
_FORMAT = b"mformat"
# The layout above. 9: the safety state may be kept in a store of its own (a layout-8 store's is
# moved there when it opens); 8: the state tree's nodes are stored in entries of several levels
# (``smt.LEVELS_PER_ENTRY``; format 7 stored each node on its own); 7: ``s`` holds a height and ``h`` nothing, their values moved under ``z``
# (format 6 kept a value hash in ``s``, keyed values by hash and history entries in ``h``); 6:
# what a block adds is keyed height first (format 5 had a table per kind: b, c, r, n<height>,
# v<height>); 5: no index of values by hash (format 4 wrote ``x<value hash>``);
# 4: tree nodes keyed by version (format 3 keyed them by hash alone); 3: values are keyed by
# height (format 2 keyed them by hash alone, random keys that every compaction rewrote); 2: ``s``
# holds the value's hash (format 1 stored the value twice).
FORMAT = b"9"
# Opened and brought up to FORMAT in place (the others are refused).
_MIGRATED_FROM = b"8"

_H = 8  # bytes of a height in keys
_I = 4  # bytes of a position in a block


_NIL = b"\xc0"  # MessagePack nil: no history entry at this position


def _array_header(n: int) -> bytes:
    """The MessagePack header of an array of ``n`` items (whose packed bytes follow)."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _nothing() -> None:
    pass


class StoreCorrupt(RuntimeError):
    """The store is inconsistent or belongs to another chain: the node must not start on it."""


def _height(h: int) -> bytes:
    return h.to_bytes(_H, "big")


def _added(at: bytes, kind: bytes) -> bytes:
    """The key prefix of what the block at height ``at`` (8 bytes) added for good, of one kind:
    b block, c certificate, r receipts, n<node hash> tree nodes, v<value hash> values."""
    return b"z" + at + kind


@dataclass(frozen=True)
class HistoryEntry:
    height: int
    index: int
    tx_id: bytes
    kind: str
    signer: bytes
    status: str
    code: str


class _ReadCache:
    """A bounded map in front of the key-value store, in two generations: when the current one is
    full it becomes the old one (the previous old one is dropped) and a hit in the old one, read
    through ``get``, moves the entry forward. So whatever was used since the last turnover
    survives it (members, invoices being worked on), at a dict lookup per hit and no recency
    bookkeeping. Only committed data goes in, so it is never stale. (The tree's nodes are read
    around ``get``: see ``ChainStore.node``.)"""

    __slots__ = ("data", "old", "limit")

    def __init__(self, limit: int) -> None:
        self.data: dict[bytes, bytes] = {}
        self.old: dict[bytes, bytes] = {}
        self.limit = limit

    def put(self, key: bytes, value: bytes) -> None:
        if len(self.data) >= self.limit:
            self.old = self.data
            self.data = {}
        self.data[key] = value

    def put_many(self, items: dict[bytes, bytes]) -> None:
        """``put`` for a block's worth at once (a turnover comes a little early rather than
        splitting the block's entries over two generations)."""
        if len(self.data) + len(items) > self.limit:
            self.old = self.data
            self.data = {}
        self.data.update(items)

    def get(self, key: bytes) -> bytes | None:
        """The value from the old generation, moved to the current one; or None. (Callers look
        in ``data`` first, inline: that is the common hit.)"""
        value = self.old.get(key)
        if value is not None:
            self.put(key, value)
        return value


class _EntryCache(_ReadCache):
    """The state tree's entries, in two generations bounded by bytes, not by count: an entry
    holds up to LEVELS_PER_ENTRY levels, and the deeper the tree, the fuller its lower entries, so
    a count bound lets the cache's memory grow with the state."""

    __slots__ = ("size",)

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.size = 0

    def put_many(self, items: dict[bytes, bytes]) -> None:
        n = sum(map(len, items.values())) + ENTRY_OVERHEAD_BYTES * len(items)
        if self.size + n > self.limit:
            self.old = self.data
            self.data = {}
            self.size = 0
        self.data.update(items)
        self.size += n


# What a cached entry costs beside its bytes: the key (a 32-byte bytes object), the value's
# object header, the dict's slot. Measured (tracemalloc and sys.getsizeof, 80,000 entries put a
# block at a time): 131 B as requested; the allocator's rounding comes on top (the 65-byte key
# takes an 80-byte block), so 32 MB of counted bytes is a little more in memory.
ENTRY_OVERHEAD_BYTES = 140
# Per generation. An entry-count bound (80,000 and 60,000 entries) let a node's own memory grow
# +11.6-15.4 % and +7.8-13.1 % from 1 to 10 min at 1,000 tx/s (scripts/bench.py --rate 1000
# --duration 600): the lower entries fill as the tree deepens, so a count bound's bytes grow
# with the state. 32 MB: RssAnon +6.4-9.3 % and +6.1-9.1 % in two such runs, inside the
# 10 % target but with a thin margin on one node; 2026-12-07, docs/performance.md.
NODE_CACHE_BYTES = 32 * 1024 * 1024

# Latest state values per generation (invoices and members being worked on; ~600 B each).
STATE_CACHE_ENTRIES = 20_000


class ChainStore:
    """Implements ``chain.CommittedStore`` and the node's read indexes over a KeyValue."""

    def __init__(self, kv: KeyValue, blocks: KeyValue | None = None, safety: KeyValue | None = None) -> None:
        self.kv = kv
        self.blocks = kv if blocks is None else blocks  # the z<height> entries (see the layout)
        self.safety = kv if safety is None else safety  # the replica's safety state
        # Called between a block's two writes (crash-consistency testing kills the node there).
        self.between_writes: Callable[[], None] = _nothing
        self._tip: Header | None = None
        self._nodes = _EntryCache(NODE_CACHE_BYTES)
        self._state = _ReadCache(STATE_CACHE_ENTRIES)
        # Committed transaction ids and written state keys in memory, approximately: most replay
        # checks are of new ids, and most state reads that miss the cache are of new invoices'
        # keys; the filters say no to them without a read (filled at open, then by every commit).
        self._tx_ids = DigestFilter()
        self._state_keys = DigestFilter()

    # -- opening ------------------------------------------------------------------------------

    def open(self, genesis: Genesis) -> Header:
        """Start a fresh store at genesis, or check an existing one and return its tip."""
        genesis_hash = genesis.block().hash
        stored = self.kv.get(_GENESIS)
        if stored is None:
            if self.kv.get(_TIP) is not None:
                raise StoreCorrupt("store has a tip but no genesis record")
            if self.blocks.get(_added(_height(1), b"b")) is not None:
                raise StoreCorrupt("the blocks database holds a chain but the index is empty")
            self.save_commit(genesis_commit(genesis), genesis_hash=genesis_hash)
        elif stored != genesis_hash:
            raise StoreCorrupt("this store belongs to a different chain (genesis hash differs)")
        elif (found_format := self.kv.get(_FORMAT) or b"1") == _MIGRATED_FROM:
            self._move_safety_state()
        elif found_format != FORMAT:
            found = found_format.decode(errors="replace")
            raise StoreCorrupt(f"this store has layout {found}, this node reads layout {FORMAT.decode()}: "
                               "move it aside and let the node catch up from its peers")
        tip = codec.decode(self.kv.get(_TIP) or b"\xc0")
        if not isinstance(tip, dict):
            raise StoreCorrupt("store has no tip record")
        block = self.block(tip["height"])
        if block is None or block.hash != tip["hash"]:
            raise StoreCorrupt(f"tip block {tip['height']} is missing or does not match the tip record")
        above = [key for key, _ in self.blocks.scan(_added(_height(tip["height"] + 1), b""))]
        if above:
            if self.blocks is self.kv:
                raise StoreCorrupt(f"a block above the tip ({tip['height'] + 1}) exists")
            # The node stopped between a block's two writes: its entries without its tip.
            self.blocks.write({}, above, sync=True)
        root = block.header.state_root
        if root != EMPTY and self.node(root, _height(tip["height"])) is None:
            raise StoreCorrupt("the tip's state root is not in the store")
        self._tip = block.header
        self._tx_ids = self._index_filter(b"t")
        self._state_keys = self._index_filter(b"s")
        return block.header

    def _move_safety_state(self) -> None:
        """Layout 8 -> 9: the safety state into its own store. Copied first, then removed from
        the index with the new layout mark in one write: a crash between the two copies it again
        (the same bytes: no vote can have been persisted before the store opened)."""
        state = self.kv.get(_SAFETY)
        if state is not None and self.safety is not self.kv:
            self.safety.write({_SAFETY: state}, sync=True)
            self.kv.write({_FORMAT: FORMAT}, [_SAFETY], sync=True)
        else:
            self.kv.write({_FORMAT: FORMAT}, sync=True)

    def _index_filter(self, prefix: bytes) -> DigestFilter:
        """The filter of every digest keyed under ``prefix`` (``t``: committed transaction ids,
        ``s``: written state keys); when it had to grow layers while filling, filled again at
        once at its final size (one layer to ask)."""
        def digests() -> Iterator[bytes]:
            return (key[1:] for key, _ in self.kv.scan(prefix))
        found = DigestFilter.of(digests())
        return found if found.layers == 1 else DigestFilter.of(digests(), expected=len(found))

    @property
    def tip(self) -> Header:
        assert self._tip is not None, "open() the store first"
        return self._tip

    # -- chain.CommittedStore ------------------------------------------------------------------

    def state_value(self, key: bytes) -> bytes | None:
        value = self._state.data.get(key)
        if value is None:
            value = self._state.get(key)
            if value is None:
                if key not in self._state_keys:
                    return None  # certainly never written
                at = self.kv.get(b"s" + key)  # the height that wrote it
                if at is None:
                    return None
                value = self.blocks.get(_added(at, b"v") + key)
                if value is None:
                    raise StoreCorrupt(f"the value of state key {key.hex()} at height {int.from_bytes(at, 'big')} is missing")
                self._state.put(key, value)
        return value

    def node(self, node_hash: bytes, at: bytes) -> bytes | None:
        # Inlined cache lookups: the state tree reads a node per level of every path it walks.
        # Only commits fill the node cache, never reads: an update reads just the nodes on its
        # paths, and its block replaces every one of them, so a node cached (or moved forward)
        # on a read would be dead weight as soon as the block commits, pushing live nodes out.
        # (In process, scripts/bench_store.py --blocks 400: the main thread 38.7 -> 33.5 CPU s.)
        node = self._nodes.data.get(node_hash)
        if node is None:
            node = self._nodes.old.get(node_hash)
            if node is None:
                node = self.blocks.get(_added(at, b"n") + node_hash)
        return node

    def has_tx(self, tx_id: bytes) -> bool:
        if tx_id not in self._tx_ids:
            return False  # certainly never committed
        return self.kv.get(b"t" + tx_id) is not None

    @property
    def hot_nodes(self) -> dict[bytes, bytes]:
        """The current generation of the node cache: committed tree entries by their top
        node's hash, which the state tree reads as a plain dict before calling ``node``
        (content-addressed, so never stale; a later turnover only makes this mapping an older
        one)."""
        return self._nodes.data

    # -- writing -------------------------------------------------------------------------------

    def save_commit(self, commit: BlockCommit, *, genesis_hash: bytes | None = None) -> None:
        """Write one committed block and everything it changes in one synced batch."""
        block = commit.block
        h = block.height
        if self._tip is not None:
            assert h == self._tip.height + 1 and block.header.prev_hash == self._tip.hash, "blocks commit in order"
        hb = _height(h)
        added: dict[bytes, bytes] = {  # the z<height> entries
            _added(hb, b"b"): block.encoded,
            _added(hb, b"r"): codec.encode_sorted([r.to_map() for r in commit.receipts]),  # type: ignore[arg-type]
        }
        if commit.certificate is not None:
            added[_added(hb, b"c")] = commit.certificate.encode()
        puts: dict[bytes, bytes] = {_TIP: codec.encode({"height": h, "hash": block.hash})}
        if genesis_hash is not None:
            puts[_GENESIS] = genesis_hash
            puts[_FORMAT] = FORMAT
        values = _added(hb, b"v")
        for key, value in commit.state_writes.items():
            puts[b"s" + key] = hb
            added[values + key] = value
        nodes = _added(hb, b"n")
        for node_hash, node in commit.nodes.items():
            added[nodes + node_hash] = node
        root = commit.nodes.get(block.header.state_root)
        if root is not None and root[0] == 0 and root[1:33] not in commit.state_writes:
            # A one-leaf tree's root copied forward to this height (smt.update stores every root
            # at its own version): its value must be found under this height too.
            value = self.state_value(root[1:33])
            if value is None or codec.sha256(value) != root[33:65]:
                raise StoreCorrupt("the value of the state root's leaf is missing")
            added[values + root[1:33]] = value
        wallet: dict[bytes, bool] = {}  # w-key -> present after this block
        history: list[bytes] = []  # the entries of z<height>x, packed one by one
        for i, (tx, receipt) in enumerate(zip(commit.txs, commit.receipts)):
            # Per-transaction index entries are built in canonical (sorted-key) order and packed
            # directly: this loop runs for every transaction of every block.
            puts[b"t" + tx.tx_id] = codec.encode_sorted([h, i])
            number = tx.number
            if number is None:
                history.append(_NIL)
                continue
            history.append(codec.encode_sorted(
                {"code": receipt.code, "kind": tx.kind, "signer": tx.signer, "status": receipt.status, "tx_id": tx.tx_id}))
            position = hb + i.to_bytes(_I, "big")
            puts[b"h" + number.encode() + position] = b""
            # A rejection that names another invoice (a retried payment pointing at the invoice
            # it already produced) is evidence about that invoice too.
            ref = receipt.reference.get("number") if receipt.reference else None
            if isinstance(ref, str) and ref != number:
                puts[b"h" + ref.encode() + position] = b""
            if receipt.ok and tx.kind == "issue":
                wallet[b"w" + tx.body["holder"] + number.encode()] = True
            elif receipt.ok and tx.kind == "transfer":
                wallet[b"w" + tx.signer + number.encode()] = False
                wallet[b"w" + tx.body["to"] + number.encode()] = True
        if any(e is not _NIL for e in history):
            added[_added(hb, b"x")] = _array_header(len(history)) + b"".join(history)
        puts.update(audit.index_updates(commit, self.kv.get, self.state_value))
        deletes = []
        for key, present in wallet.items():
            if present:
                puts[key] = b""
            else:
                deletes.append(key)
        if self.blocks is self.kv:
            puts.update(added)
        else:
            self.blocks.write(added, sync=True)  # first: until the tip names it, open() drops it
            self.between_writes()
        self.kv.write(puts, deletes, sync=True)
        # Only after the write is durable: the caches never hold what the disk does not.
        self._state.put_many(commit.state_writes)
        self._nodes.put_many(commit.nodes)
        self._tx_ids.add_many([tx.tx_id for tx in commit.txs])
        self._state_keys.add_many(commit.state_writes)
        self._tip = block.header

    def save_safety(self, state: bytes) -> None:
        """The replica's safety state; synced before any vote it protects is sent."""
        self.safety.write({_SAFETY: state}, sync=True)

    def load_safety(self) -> bytes | None:
        return self.safety.get(_SAFETY)

    def save_evidence(self, evidence_id: bytes, evidence: bytes) -> None:
        self.kv.write({b"e" + evidence_id: evidence}, sync=True)

    def evidence(self) -> list[bytes]:
        return [v for _, v in self.kv.scan(b"e")]

    # -- reading -------------------------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        raw = self.blocks.get(_added(_height(height), b"b"))
        return None if raw is None else Block.decode(raw)

    def block_bytes(self, height: int) -> bytes | None:
        return self.blocks.get(_added(_height(height), b"b"))

    def certificate(self, height: int) -> CommitCertificate | None:
        raw = self.blocks.get(_added(_height(height), b"c"))
        return None if raw is None else CommitCertificate.decode(raw)

    def receipts(self, height: int) -> list[Receipt]:
        raw = self.blocks.get(_added(_height(height), b"r"))
        return [] if raw is None else [Receipt.from_map(m) for m in codec.decode(raw, canonical=False)]

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        raw = self.kv.get(b"t" + tx_id)
        if raw is None:
            return None
        height, index = codec.decode(raw, canonical=False)
        return height, index

    def value(self, key: bytes, value_hash: bytes, at: bytes) -> bytes | None:
        """The value of state ``key`` with that hash written at version ``at`` (8 bytes): the one
        a tree leaf stored at ``at`` commits to (see ``smt.SparseMerkleTree.find``); None if no
        such value was written there."""
        value = self.blocks.get(_added(at, b"v") + key)
        return value if value is not None and codec.sha256(value) == value_hash else None

    def history(self, number: str) -> list[HistoryEntry]:
        prefix = b"h" + number.encode()
        out = []
        entries: dict[bytes, list[Any]] = {}  # height -> its block's entries (read once)
        for key, _ in self.kv.scan(prefix):
            at, position = key[len(prefix):len(prefix) + _H], int.from_bytes(key[len(prefix) + _H:], "big")
            block = entries.get(at)
            if block is None:
                raw = self.blocks.get(_added(at, b"x"))
                block = entries[at] = [] if raw is None else codec.decode(raw, canonical=False)
            m = block[position] if position < len(block) else None
            if not isinstance(m, dict):
                raise StoreCorrupt(f"history entry {number} at height {int.from_bytes(at, 'big')} is missing")
            out.append(HistoryEntry(int.from_bytes(at, "big"), position,
                                    m["tx_id"], m["kind"], m["signer"], m["status"], m["code"]))
        return out

    def wallet(self, holder: bytes) -> list[str]:
        prefix = b"w" + holder
        return [key[len(prefix):].decode() for key, _ in self.kv.scan(prefix)]

    def blocks(self, start: int, stop: int) -> Iterator[tuple[Block, CommitCertificate | None]]:
        for h in range(start, stop):
            block = self.block(h)
            if block is None:
                return
            yield block, self.certificate(h)

    def audit_view(self) -> audit.AuditView:
        return audit.AuditView(self.kv.scan, self.kv.get, self.state_value)

    def close(self) -> None:
        for kv in (self.safety, self.blocks):
            if kv is not self.kv:
                kv.close()
        self.kv.close()
