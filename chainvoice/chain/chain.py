"""The committed chain as the pure core sees it: build, check and commit blocks.

``Chain`` holds the tip and reads committed state through ``CommittedStore``. It executes a batch
on a scratch view (nothing is written until commit), computes the header's three roots, checks a
proposed block by re-executing it (execute-then-vote: a primary cannot get a wrong state root
committed), and turns a certified block into one ``BlockCommit`` — everything the store writes
for that block, in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from .. import codec, merkle, smt
from ..ledger import codes
from ..ledger.codes import MalformedTransaction
from ..ledger.records import Receipt
from ..ledger.rules import BlockContext
from ..ledger.state import DecodedValues
from ..ledger.transaction import Transaction, decode
from .block import MAX_BLOCK_TXS, Block, CommitCertificate, Header, certificate_problem
from .execution import Execution, execute
from .genesis import Genesis

_sha256 = codec.sha256


class InvalidBlock(ValueError):
    """A proposed or fetched block that an honest replica must not vote for or commit."""


class CommittedStore(Protocol):
    """Read access to committed data: the only storage the pure core sees."""

    def state_value(self, key: bytes) -> bytes | None: ...  # latest value of a state key
    def node(self, node_hash: bytes, at: bytes) -> bytes | None: ...  # a state-tree node by hash and version
    def has_tx(self, tx_id: bytes) -> bool: ...  # is this transaction committed?
    @property
    def hot_nodes(self) -> Mapping[bytes, bytes]: ...  # tree nodes in memory, by hash (read first)


@dataclass(frozen=True)
class Candidate:
    """A block with the result of executing it, kept until it commits or is abandoned."""

    block: Block
    txs: tuple[Transaction, ...]
    receipts: tuple[Receipt, ...]
    state_writes: dict[bytes, bytes]
    nodes: dict[bytes, bytes]

    @property
    def hash(self) -> bytes:
        return self.block.hash


@dataclass(frozen=True)
class BlockCommit:
    """Everything one committed block adds to the store, written in one synced batch."""

    block: Block
    certificate: CommitCertificate | None
    txs: tuple[Transaction, ...]
    receipts: tuple[Receipt, ...]
    state_writes: dict[bytes, bytes]  # state key -> new value
    nodes: dict[bytes, bytes] = field(default_factory=dict)  # new state-tree nodes

    @property
    def height(self) -> int:
        return self.block.height


class _Reader:
    """The ledger's view of committed state (latest values)."""

    __slots__ = ("get",)

    def __init__(self, store: CommittedStore) -> None:
        self.get = store.state_value


class _StoreNodes:
    """Committed tree nodes as an smt.NodeStore for one block's update. The update pass reads only
    nodes of the tree it starts from, and hands the nodes it creates back to the caller (they
    become ``Candidate.nodes``, written by the store at commit), so nothing is kept here: reads
    go straight to the store, with no overlay in between (a node read per level of every path);
    the store's nodes in memory are read first as a dict (``hot``), without a call."""

    __slots__ = ("get", "hot")

    def __init__(self, store: CommittedStore) -> None:
        self.get = store.node
        self.hot = store.hot_nodes

    def put_many(self, nodes: dict[bytes, bytes], at: bytes) -> None:
        pass


def genesis_commit(genesis: Genesis) -> BlockCommit:
    writes, _, nodes = genesis.state()
    return BlockCommit(genesis.block(), None, (), (), writes, nodes)


class Chain:
    def __init__(self, genesis: Genesis, store: CommittedStore, tip: Header) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.consortium = genesis.consortium
        self.store = store
        self.tip = tip
        self.decoded = DecodedValues()  # values recent blocks wrote, already decoded

    # -- building (the primary) ---------------------------------------------------------------

    def build(self, txs: Sequence[Transaction], timestamp_ms: int, proposer: str) -> tuple[Candidate, list[tuple[Transaction, str]]]:
        """Execute ``txs`` on top of the tip and make the next block. Replays are left out and
        returned so the caller can drop them from its mempool."""
        timestamp_ms = max(timestamp_ms, self.tip.timestamp_ms)
        ctx = BlockContext(self.tip.height + 1, timestamp_ms)
        result = execute(_Reader(self.store), self.store.has_tx, txs[:MAX_BLOCK_TXS], ctx, self.decoded)
        candidate = self._finish(result, ctx, proposer, None)
        return candidate, result.skipped

    # -- checking (backups, and catch-up) -------------------------------------------------------

    def check(
        self,
        block: Block,
        known: Callable[[bytes], Transaction | None] = lambda raw: None,
    ) -> Candidate:
        """Re-execute a proposed block and compare every root, or raise InvalidBlock.

        ``known`` returns an already verified Transaction for raw bytes (the mempool), so a
        signature is checked once per node, never twice.
        """
        h = block.header
        tip = self.tip
        if h.chain_id != self.chain_id:
            raise InvalidBlock(f"block is for chain {h.chain_id!r}")
        if h.height != tip.height + 1:
            raise InvalidBlock(f"block height {h.height} does not follow the tip {tip.height}")
        if h.prev_hash != tip.hash:
            raise InvalidBlock("block does not extend the tip (prev_hash)")
        if h.timestamp_ms < tip.timestamp_ms:
            raise InvalidBlock("block timestamp goes backwards")
        if h.tx_count != len(block.txs) or h.tx_count > MAX_BLOCK_TXS:
            raise InvalidBlock("block tx_count is wrong or too large")
        txs = []
        for raw in block.txs:
            tx = known(raw)
            if tx is None:
                try:
                    tx = decode(raw, chain_id=self.chain_id)
                except MalformedTransaction as exc:
                    raise InvalidBlock(f"block carries a malformed transaction: {exc}") from None
            txs.append(tx)
        ctx = BlockContext(h.height, h.timestamp_ms)
        result = execute(_Reader(self.store), self.store.has_tx, txs, ctx, self.decoded)
        if result.skipped:
            tx, why = result.skipped[0]
            raise InvalidBlock(f"block carries transaction {tx.tx_id.hex()} that {why}")
        candidate = self._finish(result, ctx, h.proposer, block)
        mine = candidate.block.header
        for name in ("tx_root", "receipts_root", "state_root"):
            if getattr(mine, name) != getattr(h, name):
                raise InvalidBlock(f"{name} differs from re-execution")
        return candidate

    def check_certified(self, block: Block, certificate: CommitCertificate,
                        known: Callable[[bytes], Transaction | None] = lambda raw: None) -> Candidate:
        """A block fetched from a peer: its certificate must carry 2f+1 valid commit votes for
        exactly this block, and it must re-execute to the same roots. No single peer is trusted."""
        problem = certificate_problem(certificate, self.chain_id, self.consortium.node_keys, self.consortium.f,
                                      expect_height=block.height, expect_hash=block.hash)
        if problem:
            raise InvalidBlock(f"certificate: {problem}")
        return self.check(block, known)

    # -- committing ---------------------------------------------------------------------------

    def commit(self, candidate: Candidate, certificate: CommitCertificate | None) -> BlockCommit:
        """Advance the tip to ``candidate``; the caller must persist the returned record."""
        assert candidate.block.header.prev_hash == self.tip.hash, "commit must extend the tip"
        self.tip = candidate.block.header
        return BlockCommit(candidate.block, certificate, candidate.txs, candidate.receipts,
                           candidate.state_writes, candidate.nodes)

    # -- helpers --------------------------------------------------------------------------------

    def _finish(self, result: Execution, ctx: BlockContext, proposer: str, given: Block | None) -> Candidate:
        raws = [tx.raw for tx in result.txs] if given is None else list(given.txs)
        tree = smt.SparseMerkleTree(_StoreNodes(self.store))
        writes = result.writes
        value_hashes = {k: _sha256(v) for k, v in writes.items()}
        # The tip's root was stored at the tip's height (smt.update stores every root at its own
        # version); this block's nodes are stored at its height.
        state_root, nodes = tree.update(self.tip.state_root, value_hashes, at=ctx.height, root_at=self.tip.height)
        header = Header(
            chain_id=self.chain_id, height=ctx.height, prev_hash=self.tip.hash, timestamp_ms=ctx.timestamp_ms,
            proposer=proposer, tx_count=len(raws), tx_root=merkle.root(raws),
            receipts_root=merkle.root([r.leaf() for r in result.receipts]), state_root=state_root,
        )
        block = given if given is not None and given.header == header else Block(header, tuple(raws))
        return Candidate(block, tuple(result.txs), tuple(result.receipts), writes, nodes)


def decode_batch(raws: Iterable[bytes], chain_id: str) -> tuple[list[Transaction], list[tuple[bytes, MalformedTransaction]]]:
    """Decode and verify transactions, separating the malformed ones (used at the edges)."""
    good, bad = [], []
    for raw in raws:
        try:
            good.append(decode(raw, chain_id=chain_id))
        except MalformedTransaction as exc:
            bad.append((raw, exc))
    return good, bad


__all__ = ["Chain", "Candidate", "BlockCommit", "CommittedStore", "InvalidBlock", "genesis_commit",
           "decode_batch", "codes"]
