"""Commits handed to the shell but maybe not stored yet, readable as if they were.

``Chain.commit`` advances the tip at once, but the shell writes the block (``Commit`` action)
only after the replica's step returns. Within one step the replica may go on to build or check
the next block (several certified blocks in one catch-up answer, or the next proposal right
after a commit), which reads the new tip's state. This overlay serves those reads until the
store has caught up (its tip reaches the commit's height).
"""

from __future__ import annotations

from ..chain.chain import BlockCommit
from ..store.chainstore import ChainStore


class PendingCommits:
    """A ``chain.CommittedStore``: the store plus commits not yet written to it.

    Reads look in each pending commit's own maps (newest first) rather than in one merged copy:
    there is almost always one pending commit or none, and merging would copy every block's
    thousands of new tree nodes once more only to throw them away at the next step."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self._commits: list[BlockCommit] = []  # oldest first
        self._tx_ids: list[set[bytes]] = []  # built on first use, one per commit

    def add(self, commit: BlockCommit) -> None:
        self._commits.append(commit)
        self._tx_ids.clear()

    def settle(self) -> None:
        """Forget what the store now holds (call at the start of each step)."""
        if self._commits and self.store.tip.height >= self._commits[-1].height:
            self._commits.clear()
            self._tx_ids.clear()

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

    def has_tx(self, tx_id: bytes) -> bool:
        if self._commits:
            if not self._tx_ids:
                self._tx_ids.extend({tx.tx_id for tx in c.txs} for c in self._commits)
            for ids in self._tx_ids:
                if tx_id in ids:
                    return True
        return self.store.has_tx(tx_id)

    def block_hash(self, height: int) -> bytes | None:
        for commit in self._commits:
            if commit.height == height:
                return commit.block.hash
        block = self.store.block(height)
        return None if block is None else block.hash
