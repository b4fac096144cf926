"""The mempool: decoded, signature-checked client transactions waiting for a block, oldest first.

Transactions are checked once when they arrive (from a client or a peer's gossip); a proposed
block's transactions are then looked up here by their raw bytes, so a backup re-executing the
block does not check their signatures again.
"""

from __future__ import annotations

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
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_id: dict[bytes, Waiting] = {}  # insertion order = arrival order (FIFO)
        self._by_raw: dict[bytes, Transaction] = {}

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
        """The verified transaction with exactly these bytes (for ``Chain.check(known=...)``)."""
        return self._by_raw.get(raw)

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
