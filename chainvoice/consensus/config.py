"""Every limit the replica obeys, as one frozen value, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaConfig:
    # A batch is cut when this many transactions wait: large enough to amortise the three
    # message rounds of a block over many transactions, and well under MAX_BLOCK_TXS (5000) so a
    # block executes in a small fraction of the view timeout.
    max_batch: int = 2000
    # ... or when the oldest waiting transaction has waited this long: a client expects its
    # invoice within about a second ("transaction-is-invoicing"), so batching may add only a
    # small part of that.
    batch_delay_ms: int = 20
    # ... and, after the primary's previous proposal, no sooner than this scaled by that block's
    # size (full from ``block_interval_full_txs`` transactions on), unless a full batch waits.
    # Under a steady stream a block was otherwise cut the moment the last one committed, so blocks
    # stayed small and their fixed cost (three vote rounds, signatures, synced writes, the state
    # tree's upper levels) dominated; a client sending one transaction after another still sees
    # only ``batch_delay_ms``. Measured at 1,000 tx/s offered (scripts/bench.py --rate 1000, 60 s,
    # 4 nodes on 2 cores) with a flat interval: 0 ms -> 26 blocks/s, 22 CPU s per node, p50/p99
    # 52/382 ms; 50 -> 18.7, 19.7 s, 61/370; 100 -> 9.9 blocks/s, 17.0 s, 100/344 ms.
    min_block_interval_ms: int = 100
    block_interval_full_txs: int = 64
    # How long a backup waits for commit progress while it has work before suspecting the
    # primary (PBFT §4.4 timer T). Several round trips plus executing a full block.
    view_timeout_ms: int = 2000
    # The timeout doubles after each view change that brings no progress (PBFT §4.5.2: so that
    # correct replicas eventually overlap in a view long enough to agree) up to this cap, so a
    # long outage never makes recovery take more than about a minute per bad primary.
    view_timeout_max_ms: int = 60_000
    # A transaction still waiting in a backup's mempool after this long means the primary ignores
    # it (censorship): the backup forwards it to the primary after half of it and suspects the
    # primary after all of it. Several view timeouts, so a busy but honest primary is not blamed.
    tx_wait_timeout_ms: int = 10_000
    # A proposed block's timestamp may be at most this far ahead of the backup's clock: block
    # time dates invoices and decides quota months, so a primary must not invent the future;
    # NTP-synchronised hosts are well within it.
    max_clock_drift_ms: int = 5_000
    # Blocks per catch-up request and answer: bounds an answer to a few MB at most.
    catchup_batch: int = 32
    # An unanswered catch-up request is retried (from another peer) after this long.
    catchup_retry_ms: int = 1_000
    # Most bytes of blocks in one catch-up answer (below codec.MAX_DECODE_BYTES = 64 MB).
    catchup_max_bytes: int = 16 * 1024 * 1024
    # Transactions waiting in the mempool at most: about 25 full blocks, ~50 MB of issues. Beyond
    # it new transactions are refused (Dropped "mempool full") rather than exhausting memory.
    mempool_limit: int = 50_000
    # Transactions per gossip message: keeps messages well under the decode limit.
    gossip_batch: int = 500
    # Messages for views further ahead than this are ignored: bounds what a Byzantine peer can
    # make us store; honest peers are never more than a few views apart.
    max_view_ahead: int = 64
    # Votes for heights this far above our tip are kept (we will catch up and use them);
    # one block is in flight at a time, so honest peers are at most one or two heights ahead.
    max_height_ahead: int = 2
    # A STATUS (our height) is sent to the same peer at most this often unless our tip moved:
    # enough to help a lagging peer quickly without answering every stale message.
    status_interval_ms: int = 500

    def __post_init__(self) -> None:
        if self.block_interval_full_txs < 1:
            raise ValueError("block_interval_full_txs must be at least 1")
