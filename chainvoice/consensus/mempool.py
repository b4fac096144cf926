"""The mempool: decoded, signature-checked client transactions waiting for a block, oldest first.

Transactions are checked once when they arrive (from a client or a peer's gossip); a proposed
block's transactions are then looked up here by their raw bytes, so a backup re-executing the
block does not check their signatures again. The reverse order happens too under load: a block
arrives before the gossip of its transactions, or a transaction leaves the mempool in a block and
its gossip arrives later. Transactions verified that way are remembered (a bounded, oldest-first
cache) so that the late gossip costs a dictionary lookup, not a second Ed25519 check.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable

from ..ledger.transaction import Transaction

ADDED = "added"
KNOWN = "known"
FULL = "full"


@dataclass(slots=True)
class Waiting:
    tx: Transaction
    arrived_ms: int


class Mempool:
    def __init__(self, limit: int, recent_limit: int = 20_000) -> None:
        self.limit = limit
        self._by_id: dict[bytes, Waiting] = {}  # insertion order = arrival order (FIFO)
        self._by_raw: dict[bytes, Transaction] = {}
        self.recent_limit = recent_limit
        self._recent: dict[bytes, Transaction] = {}  # raw -> verified, insertion order = age

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._by_id

    def add(self, tx: Transaction, now_ms: int) -> str:
        """ADDED, KNOWN (already waiting) or FULL (refused: the limit is reached)."""
        if tx.tx_id in self._by_id:
            return KNOWN
        if len(self._by_id) >= self.limit:
            return FULL
        self._by_id[tx.tx_id] = Waiting(tx, now_ms)
        self._by_raw[tx.raw] = tx
        return ADDED

    def lookup(self, raw: bytes) -> Transaction | None:
        """The verified transaction with exactly these bytes, waiting or recently seen (for
        ``Chain.check(known=...)`` and for gossip of transactions verified in a block)."""
        tx = self._by_raw.get(raw)
        return tx if tx is not None else self._recent.get(raw)

    def waiting(self, raw: bytes) -> bool:
        return raw in self._by_raw

    def remember(self, txs: Iterable[Transaction]) -> None:
        """Keep these verified transactions (from a checked block) for a later ``lookup``. Those
        waiting here are skipped: their gossip has come already (it is how they got here)."""
        recent, waiting = self._recent, self._by_raw
        for tx in txs:
            raw = tx.raw
            if raw not in waiting:
                recent[raw] = tx
        excess = len(recent) - self.recent_limit
        if excess > 0:
            for raw in list(itertools.islice(recent, excess)):
                del recent[raw]

    def batch(self, max_count: int) -> list[Transaction]:
        """The oldest ``max_count`` transactions, oldest first (first come, first served)."""
        out = []
        for w in self._by_id.values():
            if len(out) >= max_count:
                break
            out.append(w.tx)
        return out

    def remove(self, tx_ids: Iterable[bytes]) -> int:
        removed = 0
        for tx_id in tx_ids:
            w = self._by_id.pop(tx_id, None)
            if w is not None:
                self._by_raw.pop(w.tx.raw, None)
                removed += 1
        return removed

    def oldest(self) -> Waiting | None:
        for w in self._by_id.values():
            return w
        return None

    def waiting_since(self, since_ms: int, max_count: int) -> list[Transaction]:
        """Up to ``max_count`` transactions that arrived at or before ``since_ms``, oldest first."""
        out = []
        for w in self._by_id.values():
            if w.arrived_ms > since_ms or len(out) >= max_count:
                break
            out.append(w.tx)
        return out
