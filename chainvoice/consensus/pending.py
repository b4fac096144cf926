"""Commits handed to the shell but maybe not stored yet, readable as if they were.

``Chain.commit`` advances the tip at once, but the shell writes the block (``Commit`` action)
only after the replica's step returns. Within one step the replica may go on to build or check
the next block (several certified blocks in one catch-up answer, or the next proposal right
after a commit), which reads the new tip's state. This overlay serves those reads until the
store has caught up (its tip reaches the commit's height).

It also answers "is this transaction committed?" without the store where it can prove the
answer: it keeps the transaction ids of the last ``RECENT_BLOCKS`` blocks (more while the store
has not written them), and for each transaction the store did not hold, the height at which it
looked. A transaction found absent at height h, and in none of the blocks since (all of them
kept), is still absent: so a transaction checked when it arrived (gossip or a client) is not
looked up in the store again when its block is executed. (The store itself answers most lookups
of transactions that are not there from memory, ``store/digestfilter.py``; before it, such a lookup
was the slow kind, LevelDB searching its memtable and every level's filter, and every node made
two of them per transaction.)
"""

from __future__ import annotations

from collections import deque
from typing import Mapping

from ..chain.chain import BlockCommit
from ..store.chainstore import ChainStore


# Blocks whose transaction ids are kept once the store holds them: a transaction waits in the
# mempool a few blocks at most unless the network is overloaded; one checked longer ago is looked
# up in the store again (correct, only slower).
RECENT_BLOCKS = 32
# Transactions remembered as absent, per generation (two generations): several seconds of
# arrivals even at 3,000 tx/s, while a transaction usually executes within a second of arriving;
# small enough (~1.6 MB) to be full within the first minute at 1,000 tx/s, so it is not memory
# growth later. Under a backlog older arrivals are looked up in the store again.
ABSENT_ENTRIES = 16_384


class PendingCommits:
    """A ``chain.CommittedStore``: the store plus commits not yet written to it.

    Reads look in each pending commit's own maps (newest first) rather than in one merged copy:
    there is almost always one pending commit or none, and merging would copy every block's
    thousands of new tree nodes once more only to throw them away at the next step.

    Every commit must come through ``add``: the store is written only with commits added here."""

    def __init__(self, store: ChainStore, *, recent_blocks: int = RECENT_BLOCKS,
                 absent_entries: int = ABSENT_ENTRIES) -> None:
        self.store = store
        self._recent_limit = recent_blocks
        self._absent_limit = absent_entries
        self._commits: list[BlockCommit] = []  # oldest first
        # tx_id -> height, for every block above ``_floor`` (None: no block committed yet)
        self._recent: dict[bytes, int] = {}
        self._recent_blocks: deque[tuple[int, list[bytes]]] = deque()
        self._floor: int | None = None
        # tx_id -> the height at which neither the store nor a pending commit held it
        self._absent: dict[bytes, int] = {}
        self._absent_old: dict[bytes, int] = {}

    def add(self, commit: BlockCommit) -> None:
        self._commits.append(commit)
        height = commit.height
        if self._floor is None:
            self._floor = height - 1
        ids = [tx.tx_id for tx in commit.txs]
        self._recent.update(dict.fromkeys(ids, height))
        blocks = self._recent_blocks
        blocks.append((height, ids))
        written = self.store.tip.height
        while len(blocks) > self._recent_limit and blocks[0][0] <= written:  # never a pending one
            old, old_ids = blocks.popleft()
            recent = self._recent
            for tx_id in old_ids:
                if recent.get(tx_id) == old:
                    del recent[tx_id]
            self._floor = old

    def settle(self) -> None:
        """Forget what the store now holds (call at the start of each step)."""
        if self._commits and self.store.tip.height >= self._commits[-1].height:
            self._commits.clear()

    def state_value(self, key: bytes) -> bytes | None:
        for commit in reversed(self._commits):
            v = commit.state_writes.get(key)
            if v is not None:
                return v
        return self.store.state_value(key)

    def node(self, node_hash: bytes, at: bytes) -> bytes | None:
        for commit in reversed(self._commits):
            v = commit.nodes.get(node_hash)
            if v is not None:
                return v
        return self.store.node(node_hash, at)

    @property
    def hot_nodes(self) -> Mapping[bytes, bytes]:
        """The store's nodes in memory. Not those of the blocks held here: a read that misses
        comes to ``node``, which looks here first."""
        return self.store.hot_nodes

    def has_tx(self, tx_id: bytes) -> bool:
        if tx_id in self._recent:  # every pending commit is among the recent blocks
            return True
        at = self._absent.get(tx_id)
        if at is None:
            at = self._absent_old.get(tx_id)
        if at is not None and (self._floor is None or at >= self._floor):
            return False  # absent at `at`, and in none of the blocks since (all kept)
        if self.store.has_tx(tx_id):
            return True
        absent = self._absent
        if len(absent) >= self._absent_limit:
            self._absent_old = absent
            self._absent = absent = {}
        absent[tx_id] = self._commits[-1].height if self._commits else self.store.tip.height
        return False

    def block_hash(self, height: int) -> bytes | None:
        for commit in self._commits:
            if commit.height == height:
                return commit.block.hash
        block = self.store.block(height)
        return None if block is None else block.hash
