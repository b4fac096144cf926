"""Executing a block's transactions: replays dropped, rules applied in order, writes collected.

Replay protection is a chain fact, not an invoice fact: a ``tx_id`` already committed (or earlier
in the same block) is never applied twice and never enters a block again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..ledger import rules
from ..ledger.records import Receipt
from ..ledger.rules import BlockContext
from ..ledger.state import DecodedValues, LedgerState, StateReader
from ..ledger.transaction import Transaction

# Why a transaction offered for a block was left out of it.
SKIP_REPLAY = "already committed"
SKIP_DUPLICATE = "appears twice in the batch"


@dataclass
class Execution:
    txs: list[Transaction] = field(default_factory=list)  # included, in block order
    receipts: list[Receipt] = field(default_factory=list)  # one per included transaction
    writes: dict[bytes, bytes] = field(default_factory=dict)  # state key -> new canonical value
    skipped: list[tuple[Transaction, str]] = field(default_factory=list)


def execute(
    reader: StateReader,
    is_committed: Callable[[bytes], bool],
    txs: Iterable[Transaction],
    block: BlockContext,
    decoded: DecodedValues | None = None,
) -> Execution:
    """Apply ``txs`` in order on a scratch view of ``reader``; nothing is written to it.
    ``decoded`` memoises value decoding across blocks (see ``DecodedValues``)."""
    state = LedgerState(reader, decoded)
    out = Execution()
    seen: set[bytes] = set()
    apply = rules.apply
    for tx in txs:
        tx_id = tx.tx_id
        if tx_id in seen:
            out.skipped.append((tx, SKIP_DUPLICATE))
            continue
        if is_committed(tx_id):
            out.skipped.append((tx, SKIP_REPLAY))
            continue
        seen.add(tx_id)
        out.txs.append(tx)
        out.receipts.append(apply(state, tx, block))
    out.writes = state.writes()
    return out
