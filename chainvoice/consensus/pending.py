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
    """A ``chain.CommittedStore``: the store plus commits not yet written to it."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self._commits: list[BlockCommit] = []
        self._writes: dict[bytes, bytes] = {}
        self._nodes: dict[bytes, bytes] = {}
        self._txs: set[bytes] = set()
        self._hashes: dict[int, bytes] = {}

    def add(self, commit: BlockCommit) -> None:
        self._commits.append(commit)
        self._writes.update(commit.state_writes)
        self._nodes.update(commit.nodes)
        self._txs.update(tx.tx_id for tx in commit.txs)
        self._hashes[commit.height] = commit.block.hash

    def settle(self) -> None:
        """Forget what the store now holds (call at the start of each step)."""
        if self._commits and self.store.tip.height >= self._commits[-1].height:
            self._commits.clear()
            self._writes.clear()
            self._nodes.clear()
            self._txs.clear()
            self._hashes.clear()

    def state_value(self, key: bytes) -> bytes | None:
        v = self._writes.get(key)
        return v if v is not None else self.store.state_value(key)

    def node(self, node_hash: bytes, at: bytes) -> bytes | None:
        v = self._nodes.get(node_hash)
        return v if v is not None else self.store.node(node_hash, at)

    def has_tx(self, tx_id: bytes) -> bool:
        return tx_id in self._txs or self.store.has_tx(tx_id)

    def block_hash(self, height: int) -> bytes | None:
        h = self._hashes.get(height)
        if h is not None:
            return h
        block = self.store.block(height)
        return None if block is None else block.hash
