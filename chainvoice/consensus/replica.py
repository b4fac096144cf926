"""The PBFT replica (Castro & Liskov, OSDI'99 §4) as a pure state machine, one block in flight.

Heights are PBFT's sequence numbers. Inputs: ``start``, ``on_message``, ``on_timer``, ``submit``,
each with ``now_ms`` from the caller; output: a list of actions the shell executes in order
(``actions``). The same class runs in the simulator and in the node.

Normal case (§4.2): the primary of view v (``consortium.primary(v)``) cuts a batch, executes it
and sends PRE-PREPARE(v, h, block). A backup checks the sender, the proposer, the timestamp and
re-executes the block (``Chain.check``) before sending PREPARE. Prepared = the pre-prepare plus 2f
matching PREPAREs from other replicas; it then sends COMMIT, whose signature is the SPEC §5 vote.
2f+1 COMMITs for one (view, height, block) are the block's certificate: the block commits.

View change (§4.4): a backup that sees no commit progress while it has work, a proposal that
fails its checks, or a transaction ignored too long (censorship) sends VIEW-CHANGE(v+1) with its
committed height (and tip certificate) and its prepared proof for the next height. f+1
VIEW-CHANGEs for higher views make a replica join the smallest (§4.5.2). The new primary, with
2f+1, sends NEW-VIEW; the block for the next height is dictated by ``quorum.new_view_decision``
(the prepared block of the highest view, else a fresh one), so a block that committed anywhere
is never replaced. Replicas behind the highest certified height fetch certified blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .. import crypto
from ..chain.block import Block, BlockFormatError, CommitCertificate
from ..chain.chain import Candidate, Chain, InvalidBlock
from ..ledger.codes import MalformedTransaction
from ..ledger.transaction import Transaction
from ..ledger.transaction import decode as decode_tx
from ..store.chainstore import ChainStore
from . import messages, quorum
from .actions import (
    DROP_COMMITTED,
    DROP_FULL,
    Action,
    Commit,
    Dropped,
    PersistSafety,
    RecordEvidence,
    Send,
    SetTimer,
)
from .catchup import CatchUp
from .config import ReplicaConfig
from .evidence import Evidence, EvidenceBook
from .mempool import ADDED, FULL, Mempool
from .pending import PendingCommits
from .messages import (
    BLOCK_REQUEST,
    BLOCKS,
    COMMIT,
    NEW_VIEW,
    PRE_PREPARE,
    PREPARE,
    STATUS,
    TXS,
    VIEW_CHANGE,
    BlockRequest,
    Blocks,
    PreparedProof,
    Signed,
    Status,
    TxBatch,
)
from .safety import Refused, SafetyRules

__all__ = ["Replica", "ReplicaConfig"]

TIMER_BATCH = "batch"  # the primary cuts a batch
TIMER_VIEW = "view"  # no progress while work is pending / no NEW-VIEW in time
TIMER_CENSOR = "censor"  # the oldest waiting transaction: forward it, then suspect the primary
TIMER_CATCHUP = "catchup"  # an unanswered block request is retried

# Blocks (and their re-execution results) kept for the next height, from pre-prepares of any
# view and VIEW-CHANGEs: a primary of an old view cannot make us keep more than this.
MAX_BLOCKS_KEPT = 16
# Evidence records kept in memory (all are also handed to the shell to store).
MAX_EVIDENCE_KEPT = 1000
# Pre-prepares kept for a (height, view) we have not reached yet.
MAX_PENDING = 64


@dataclass
class _Proposal:
    """The pre-prepare accepted in one view for the next height, and its execution."""

    signed: Signed  # block attached
    candidate: Candidate

    @property
    def block_hash(self) -> bytes:
        return self.signed.body.block_hash


class Replica:
    def __init__(self, node_id: str, key: crypto.SigningKey, chain: Chain, store: ChainStore,
                 config: ReplicaConfig = ReplicaConfig(), safety_state: bytes | None = None) -> None:
        consortium = chain.consortium
        if node_id not in consortium.node_keys:
            raise ValueError(f"{node_id} is not a consortium node")
        self.node_id = node_id
        self.chain = chain
        self.store = store
        # Chain reads committed state through this overlay, so the next block can be built or
        # checked in the same step as the previous commit (see ``pending``).
        self._committed = PendingCommits(store)
        chain.store = self._committed
        self.config = config
        self.consortium = consortium
        self.chain_id = chain.chain_id
        self.f = consortium.f
        self.quorum = consortium.quorum
        self._keys = consortium.node_keys
        self._node_ids = consortium.node_ids
        self._safety = SafetyRules(node_id, key, consortium, self._committed_hash, safety_state)
        # Where we are: the view (entered, or being changed to) and its NEW-VIEW's dictate.
        self._view = self._safety.view
        self._normal = self._safety.entered
        self._constraint = self._safety.constraint
        self._new_view: Signed | None = None  # the NEW-VIEW that opened the current view
        self._own_vc: Signed | None = None
        self._sent_new_view = -1
        self._view_started_ms = 0
        self._attempts = 0  # view changes since the last commit: the timeout doubles with each
        # The next height: proposals, blocks seen, votes.
        self._proposals: dict[int, _Proposal] = {}
        self._pending: dict[tuple[int, int], Signed] = {}
        self._blocks: dict[bytes, Block] = {}
        self._candidates: dict[bytes, Candidate | None] = {}
        self._commit_sent: set[tuple[int, int]] = set()
        self._votes = quorum.VoteBook()
        # View changes seen: view -> sender -> message; peer -> highest view it asked for.
        self._view_changes: dict[int, dict[str, Signed]] = {}
        self._vc_views: dict[str, int] = {}
        self._checked_vcs: dict[bytes, bool] = {}
        self._helped: dict[tuple[str, int], int] = {}
        # Everything else.
        self.mempool = Mempool(config.mempool_limit)
        self._book = EvidenceBook()
        self._evidence: list[Evidence] = []
        self._catchup = CatchUp()
        self._applying_blocks = False
        self._status_sent: dict[str, tuple[int, int]] = {}
        self._forwarded_view = -1
        self._proposed_ms = -(1 << 62)  # when this replica last proposed a block
        self._proposed_txs = 0  # and how many transactions it held
        self._timers: dict[str, int] = {}
        tip = chain.tip.height
        self._tip_cert: CommitCertificate | None = store.certificate(tip) if tip > 0 else None
        self._out: list[Action] = []
        self.stats: dict[str, int] = {"commits": 0, "view_changes": 0, "views_entered": 0, "rejected": 0,
                                      "suspicions": 0, "catchup_blocks": 0}
        self._handlers: dict[str, Callable[[Signed, int], None]] = {
            PRE_PREPARE: self._on_pre_prepare, PREPARE: self._on_vote, COMMIT: self._on_vote,
            VIEW_CHANGE: self._on_view_change, NEW_VIEW: self._on_new_view, STATUS: self._on_status,
            BLOCK_REQUEST: self._on_block_request, BLOCKS: self._on_blocks, TXS: self._on_txs,
        }

    # -- read-only ---------------------------------------------------------------------------------

    @property
    def view(self) -> int:
        return self._view

    @property
    def height(self) -> int:
        """The committed height (the chain's tip)."""
        return self.chain.tip.height

    @property
    def primary(self) -> str:
        return self.consortium.primary(self._view)

    @property
    def mempool_size(self) -> int:
        return len(self.mempool)

    @property
    def evidence(self) -> list[Evidence]:
        return list(self._evidence)

    @property
    def in_view_change(self) -> bool:
        return not self._normal

    def is_committed(self, tx_id: bytes) -> bool:
        """Whether ``tx_id`` is in a committed block, written to the store or not. An answer of
        no is remembered: ``submit`` right after does not look the transaction up again."""
        return self._committed.has_tx(tx_id)

    def status(self) -> dict[str, Any]:
        tip = self.chain.tip
        return {
            "node_id": self.node_id, "view": self._view, "primary": self.primary,
            "mode": "normal" if self._normal else "view-change", "height": tip.height,
            "tip_hash": tip.hash.hex(), "mempool": len(self.mempool),
            "catching_up_to": self._catchup.target if self._catchup.behind(tip.height) else None,
            "view_timeout_ms": self._timeout(), "evidence": len(self._evidence), **self.stats,
        }

    # -- inputs ------------------------------------------------------------------------------------

    def start(self, now_ms: int) -> list[Action]:
        """Begin (or resume after a restart from the persisted safety state)."""
        self._committed.settle()
        self._view_started_ms = now_ms
        if not self._normal:
            # We had asked for this view before stopping: ask again (same view, same proof).
            self._send_view_change(self._view, now_ms)
        self._broadcast(self._safety.sign(Status(self.height, self._tip_cert)))
        self._arm_view_timer(now_ms)
        return self._flush()

    def on_message(self, sender: str, raw: bytes, now_ms: int) -> list[Action]:
        """A message from peer ``sender`` (authenticated by the transport). Anything malformed,
        mis-signed or not from ``sender`` is dropped; this never raises on bad input."""
        self._committed.settle()
        try:
            signed = messages.decode(raw, self.chain_id)
        except messages.MessageError:
            self.stats["rejected"] += 1
            return []
        if signed.sender != sender or sender == self.node_id or not messages.verify(signed, self._keys):
            self.stats["rejected"] += 1
            return []
        self._handlers[signed.kind](signed, now_ms)
        return self._flush()

    def on_timer(self, name: str, now_ms: int) -> list[Action]:
        self._committed.settle()
        at = self._timers.get(name)
        if at is None:
            return []  # cancelled, or replaced and already handled
        if at > now_ms:  # fired early: keep it pending
            self._out.append(SetTimer(name, at))
            return self._flush()
        del self._timers[name]
        if name == TIMER_BATCH:
            self._propose(now_ms)
        elif name == TIMER_VIEW:
            self._on_view_timeout(now_ms)
        elif name == TIMER_CENSOR:
            self._on_censor_timeout(now_ms)
        elif name == TIMER_CATCHUP:
            self._request_blocks(now_ms)
        return self._flush()

    def submit(self, txs: list[Transaction], now_ms: int, *, gossip: bool = True) -> list[Action]:
        """Decoded, signature-checked client transactions enter the mempool; with ``gossip`` they
        are also sent to every peer, so whichever replica is primary can include them."""
        self._committed.settle()
        added: list[Transaction] = []
        committed: list[bytes] = []
        full: list[bytes] = []
        for tx in txs:
            if self._committed.has_tx(tx.tx_id):
                committed.append(tx.tx_id)
                continue
            result = self.mempool.add(tx, now_ms)
            if result == ADDED:
                added.append(tx)
            elif result == FULL:
                full.append(tx.tx_id)
        if committed:
            self._out.append(Dropped(committed, DROP_COMMITTED))
        if full:
            self._out.append(Dropped(full, DROP_FULL))
        if added and gossip:
            step = self.config.gossip_batch
            for i in range(0, len(added), step):
                self._broadcast(self._safety.sign(TxBatch(tuple(tx.raw for tx in added[i:i + step]))))
        if added:
            self._on_new_work(now_ms)
        return self._flush()

    # -- normal case (§4.2) ----------------------------------------------------------------------------

    def _on_new_work(self, now: int) -> None:
        self._schedule_batch(now)
        self._arm_view_timer(now)
        self._arm_censor(now)

    def _schedule_batch(self, now: int) -> None:
        if not self._normal or self.primary != self.node_id or self._view in self._proposals:
            return
        oldest = self.mempool.oldest()
        if oldest is None:
            return
        if len(self.mempool) >= self.config.max_batch:
            at = now
        else:
            # The pause after our previous proposal grows with that block's size: a steady
            # stream gets full-interval blocks, a lone client's next transaction is not held up.
            c = self.config
            full = c.block_interval_full_txs
            pause = c.min_block_interval_ms * min(self._proposed_txs, full) // full
            at = max(now, oldest.arrived_ms + c.batch_delay_ms, self._proposed_ms + pause)
        if at <= now:
            self._propose(now)
        elif self._timers.get(TIMER_BATCH, at + 1) > at:
            self._set_timer(TIMER_BATCH, at)

    def _propose(self, now: int) -> None:
        """The primary cuts a batch, executes it on a scratch view and proposes the block."""
        h, v = self.height + 1, self._view
        if not self._normal or self.consortium.primary(v) != self.node_id or v in self._proposals:
            return
        if self._constraint is not None and self._constraint[0] == h:
            return  # the NEW-VIEW's re-proposal is this height's block
        if self._catchup.behind(self.height):
            return  # the chain has moved on without us: no proposal on a stale tip
        txs = self.mempool.batch(self.config.max_batch)
        if not txs:
            return
        candidate, skipped = self.chain.build(txs, now, self.node_id)
        if skipped:
            by_reason: dict[str, list[bytes]] = {}
            for tx, why in skipped:
                by_reason.setdefault(why, []).append(tx.tx_id)
            for why, ids in by_reason.items():
                self.mempool.remove(ids)
                self._out.append(Dropped(ids, why))
        block = candidate.block
        if block.header.tx_count == 0:
            return
        try:
            pp, state = self._safety.sign_pre_prepare(h, v, block)
        except Refused:
            return
        self._persist(state)
        self._broadcast(pp)
        self._proposals[v] = _Proposal(pp, candidate)
        self._proposed_ms, self._proposed_txs = now, block.header.tx_count
        self._keep_block(block, candidate)
        # Every block's transactions are remembered as verified where the block is made or
        # checked (here, ``_candidate``, ``_on_blocks``): gossip that arrives after they left the
        # mempool then costs a lookup, not a second signature check.
        self.mempool.remember(candidate.txs)
        self._arm_view_timer(now)
        self._check_prepared(h, v, block.hash, now)

    def _on_pre_prepare(self, s: Signed, now: int) -> None:
        pp = s.body
        h, v, d = pp.height, pp.view, pp.block_hash
        if s.block is None or s.block.hash != d or s.block.height != h or s.sender != self.consortium.primary(v):
            self.stats["rejected"] += 1
            return
        tip = self.height
        if h <= tip:
            self._send_status(s.sender, now)  # the primary is behind us
            return
        if v > self._view + self.config.max_view_ahead or h > tip + self.config.max_height_ahead:
            return
        self._observe(s)
        if h > tip + 1:
            self._keep_pending(s)
            self._send_status(s.sender, now)  # we are behind: the sender will tell us how far
            return
        self._keep_block(s.block)
        if v < self._view:
            self._check_commit_quorums(now)  # an old view's block may still be certified
        elif v > self._view or not self._normal:
            self._keep_pending(s)
        else:
            self._accept(s, now)

    def _accept(self, s: Signed, now: int) -> None:
        """A pre-prepare for the next height in the current view: check it, then PREPARE."""
        pp = s.body
        h, v, d = pp.height, pp.view, pp.block_hash
        block = s.block
        assert block is not None and h == self.height + 1 and v == self._view and self._normal
        if v in self._proposals:
            return  # one proposal per view; a second, different one is evidence (``_observe``)
        if self._constraint is not None and self._constraint[0] == h:
            if d != self._constraint[1]:
                self._suspect(now, "pre-prepare differs from the NEW-VIEW's block")
                return
        else:
            if block.header.proposer != s.sender:
                self._suspect(now, "block proposer is not the primary")
                return
            if block.header.timestamp_ms > now + self.config.max_clock_drift_ms:
                self._suspect(now, "block timestamp too far ahead")
                return
        candidate = self._candidate(block)
        if candidate is None:
            self._suspect(now, "proposed block fails re-execution")
            return
        self._proposals[v] = _Proposal(s, candidate)
        if s.sender != self.node_id:
            try:
                vote, state = self._safety.sign_prepare(h, v, d)
            except Refused:
                return
            self._persist(state)
            self._broadcast(vote)
            self._votes.add(vote)
        # A valid proposal for the next height is the primary's progress: the timer restarts, so
        # a busy network (a full block executing on every replica) is not mistaken for a silent
        # primary. It restarts at most once per height and view, so a primary that proposes and
        # then stalls is still suspected one timeout later.
        self._cancel(TIMER_VIEW)
        self._arm_view_timer(now)
        self._check_prepared(h, v, d, now)
        self._check_commit_quorums(now)

    def _on_vote(self, s: Signed, now: int) -> None:
        b = s.body
        h, v, d = b.height, b.view, b.block_hash
        tip = self.height
        if h <= tip:
            self._send_status(s.sender, now)
            return
        if v > self._view + self.config.max_view_ahead or h > tip + self.config.max_height_ahead:
            return
        if s.kind == PREPARE and (s.sender == self.consortium.primary(v) or v < self._view):
            return  # the primary's pre-prepare is its prepare; old views' prepares never count
        self._observe(s)
        if not self._votes.add(s):
            return
        if h > tip + 1:
            self._send_status(s.sender, now)
        elif s.kind == PREPARE:
            self._check_prepared(h, v, d, now)
        else:
            self._check_committed(h, v, d, now)

    def _check_prepared(self, h: int, v: int, d: bytes, now: int) -> None:
        """Prepared (§4.2): our accepted pre-prepare plus 2f PREPAREs from others -> COMMIT."""
        if h != self.height + 1 or v != self._view or not self._normal or (h, v) in self._commit_sent:
            return
        p = self._proposals.get(v)
        if p is None or p.block_hash != d:
            return
        prepares = self._votes.get(PREPARE, h, v, d)
        need = 2 * self.f
        if len(prepares) < need:
            return
        chosen = tuple(prepares[n] for n in self._node_ids if n in prepares)[:need]
        proof = PreparedProof(p.signed.with_block(None), chosen)
        try:
            vote, state = self._safety.sign_commit(h, v, d, proof, p.candidate.block)
        except Refused:
            return
        self._persist(state)
        self._broadcast(vote)
        self._commit_sent.add((h, v))
        self._votes.add(vote)
        self._check_committed(h, v, d, now)

    def _check_committed(self, h: int, v: int, d: bytes, now: int) -> None:
        """2f+1 COMMITs for one (view, height, block) certify it, in whatever view we are."""
        if h != self.height + 1:
            return
        commits = self._votes.get(COMMIT, h, v, d)
        if len(commits) < self.quorum:
            return
        block = self._blocks.get(d)
        if block is None:
            for node in commits:  # certified, but we never saw the block: fetch it
                if node != self.node_id:
                    self._catchup.learn(h, node)
            self._request_blocks(now)
            return
        candidate = self._candidate(block)
        if candidate is None:
            return  # a certified block that does not re-execute: impossible with <= f faults
        self._commit(candidate, quorum.commit_certificate(h, v, d, commits, self.consortium), now)

    def _check_commit_quorums(self, now: int) -> None:
        h = self.height + 1
        for v, d, votes in self._votes.at_height(COMMIT, h):
            if len(votes) >= self.quorum:
                self._check_committed(h, v, d, now)
                return

    def _commit(self, candidate: Candidate, cert: CommitCertificate, now: int) -> None:
        h = candidate.block.height
        record = self.chain.commit(candidate, cert)
        self._committed.add(record)
        self._out.append(Commit(record))
        self.stats["commits"] += 1
        self._tip_cert = cert
        self.mempool.remove(tx.tx_id for tx in record.txs)
        self._safety.committed(h)
        self._book.prune(h - 2)
        self._votes.prune(below_height=h + 1)
        self._proposals.clear()
        self._blocks.clear()
        self._candidates.clear()
        self._commit_sent = {k for k in self._commit_sent if k[0] > h}
        self._pending = {k: s for k, s in self._pending.items() if k[0] > h}
        self._attempts = 0  # progress: timeouts start again from the base (§4.5.2)
        self._cancel(TIMER_VIEW)
        self._arm_view_timer(now)
        self._arm_censor(now)
        self._after_advance(now)

    def _after_advance(self, now: int) -> None:
        """The tip or the view moved: use what was waiting for the new (height, view)."""
        h = self.height + 1
        if self._normal:
            s = self._pending.pop((h, self._view), None)
            if s is not None:
                self._keep_block(s.block)  # type: ignore[arg-type]
                self._accept(s, now)
            for v, d, _ in self._votes.at_height(PREPARE, h):
                if v == self._view:
                    self._check_prepared(h, v, d, now)
        self._check_commit_quorums(now)
        self._request_blocks(now)
        self._schedule_batch(now)

    # -- view change (§4.4) ------------------------------------------------------------------------

    def _timeout(self) -> int:
        return min(self.config.view_timeout_max_ms, self.config.view_timeout_ms << min(self._attempts, 30))

    def _work_pending(self) -> bool:
        return bool(self.mempool) or bool(self._proposals) or (
            self._constraint is not None and self._constraint[0] > self.height)

    def _arm_view_timer(self, now: int) -> None:
        if TIMER_VIEW in self._timers or (self._normal and not self._work_pending()):
            return
        self._set_timer(TIMER_VIEW, now + self._timeout())

    def _on_view_timeout(self, now: int) -> None:
        if self._catchup.behind(self.height):
            # The others are making progress; we are only slow. Fetch, do not disrupt.
            self._request_blocks(now)
            self._arm_view_timer(now)
            return
        if self._normal:
            if self._work_pending():
                self.stats["suspicions"] += 1
                self._start_view_change(self._next_view(), now)
        elif self._work_pending():
            self._start_view_change(self._next_view(), now)  # no NEW-VIEW in time: next view, 2T
        else:
            # Nothing waits on us: repeat our request (it may have been lost) instead of climbing
            # views alone.
            self._send_view_change(self._view, now)
            self._set_timer(TIMER_VIEW, now + self._timeout())

    def _next_view(self) -> int:
        """v+1, or the lowest higher view a peer already asked for: a replica that climbed views
        alone (partitioned) is met where it is instead of being waited for view by view."""
        target = self._view + 1
        higher = [w for w in self._vc_views.values() if w > self._view]
        return max(target, min(higher)) if higher else target

    def _suspect(self, now: int, reason: str) -> None:
        self.stats["suspicions"] += 1
        if self._normal:
            self._start_view_change(self._next_view(), now)

    def _start_view_change(self, target: int, now: int) -> None:
        if target < self._view or (target == self._view and not self._normal):
            return
        if not self._send_view_change(target, now):
            return
        self.stats["view_changes"] += 1
        self._view, self._normal, self._constraint, self._new_view = target, False, None, None
        self._cancel(TIMER_BATCH)
        self._cancel(TIMER_CENSOR)
        self._set_timer(TIMER_VIEW, now + self._timeout())
        self._attempts += 1
        self._proposals.clear()
        self._votes.prune(below_height=self.height + 1, below_view=target)
        self._vc_views = {p: w for p, w in self._vc_views.items() if w > target}
        self._view_changes = {w: b for w, b in self._view_changes.items() if w >= target}
        self._pending = {k: s for k, s in self._pending.items() if k[1] >= target}
        self._maybe_send_new_view(now)

    def _send_view_change(self, view: int, now: int) -> bool:
        try:
            vc, state = self._safety.sign_view_change(view, self.height, self._tip_cert)
        except Refused:
            return False
        self._persist(state)
        self._broadcast(vc)
        self._own_vc = vc
        self._view_changes.setdefault(view, {})[self.node_id] = vc
        return True

    def _on_view_change(self, s: Signed, now: int) -> None:
        vc = s.body
        if vc.view > self._view + self.config.max_view_ahead:
            return
        if not self._valid_view_change(s, need_block=True):
            self.stats["rejected"] += 1
            return
        tip = self.height
        if vc.prepared is not None:
            self._observe(vc.prepared.pre_prepare)
            if s.block is not None and vc.prepared.height == tip + 1:
                self._keep_block(s.block)
        if vc.committed_height > tip:
            self._catchup.learn(vc.committed_height, s.sender)
            self._request_blocks(now)
        elif vc.committed_height < tip:
            self._send_status(s.sender, now)
        if vc.view > self._view or (vc.view == self._view and not self._normal):
            self._view_changes.setdefault(vc.view, {})[s.sender] = s
        if vc.view > self._view:
            self._vc_views[s.sender] = max(self._vc_views.get(s.sender, 0), vc.view)
        else:
            self._help(s.sender, vc.view, now)
        higher = [w for w in self._vc_views.values() if w > self._view]
        if len(higher) >= self.f + 1:  # §4.5.2: f+1 want a higher view -> join the smallest
            self._start_view_change(min(higher), now)
        self._maybe_send_new_view(now)

    def _help(self, peer: str, their_view: int, now: int) -> None:
        """``peer`` is still changing to a view we have reached or passed: show it the NEW-VIEW
        that opened ours, or our own VIEW-CHANGE if we are changing to a higher view (PBFT
        retransmits these; without it a replica that missed the NEW-VIEW would wait forever)."""
        last = self._helped.get((peer, their_view))
        if last is not None and now - last < self.config.status_interval_ms:
            return
        if len(self._helped) > 256:
            self._helped.clear()
        self._helped[(peer, their_view)] = now
        if self._normal and self._new_view is not None:
            self._send(peer, self._new_view)
        elif not self._normal and self._own_vc is not None and their_view < self._view:
            self._send(peer, self._own_vc)

    def _valid_view_change(self, s: Signed, *, need_block: bool) -> bool:
        attached = b"" if s.block is None else s.block.hash
        key = s.payload + s.signature + (b"B" + attached if need_block else b"E")
        ok = self._checked_vcs.get(key)
        if ok is None:
            ok = quorum.view_change_problem(s, self.consortium, need_block=need_block) is None
            if len(self._checked_vcs) > 1024:
                self._checked_vcs.clear()
            self._checked_vcs[key] = ok
        return ok

    def _maybe_send_new_view(self, now: int) -> None:
        v = self._view
        if self._normal or self.consortium.primary(v) != self.node_id or self._sent_new_view == v:
            return
        book = self._view_changes.get(v, {})
        if self.node_id not in book or len(book) < self.quorum:
            return
        others = [book[n] for n in self._node_ids if n != self.node_id and n in book]
        chosen = tuple([book[self.node_id]] + others[:self.quorum - 1])
        decision = quorum.new_view_decision([s.body for s in chosen])
        constraint, block = None, None
        if decision.proof is not None:
            d = decision.proof.block_hash
            block = next((s.block for s in chosen if s.block is not None and s.block.hash == d), None)
            block = block or self._blocks.get(d)
            if block is None:
                return  # cannot happen: a valid VIEW-CHANGE carries its prepared block
            constraint = (decision.base + 1, d)
        try:
            self._persist(self._safety.enter_view(v, constraint))
            pp = None
            if block is not None:
                pp, state = self._safety.sign_pre_prepare(decision.base + 1, v, block)
                self._persist(state)
            nv = self._safety.sign_new_view(v, chosen, None if pp is None else pp.with_block(None), block)
        except Refused:
            return
        self._sent_new_view = v
        self._broadcast(nv)
        self._enter_view(v, constraint, nv, decision, chosen, now)
        if pp is not None:
            self._keep_pending(pp)
        self._after_advance(now)

    def _on_new_view(self, s: Signed, now: int) -> None:
        nv = s.body
        v = nv.view
        if s.sender != self.consortium.primary(v):
            self.stats["rejected"] += 1
            return
        if v < self._view or (v == self._view and self._normal) or v > self._view + self.config.max_view_ahead:
            return
        decision = self._new_view_problem(s)
        if decision is None:
            self.stats["rejected"] += 1
            return
        constraint = None if decision.proof is None else (decision.base + 1, decision.proof.block_hash)
        try:
            self._persist(self._safety.enter_view(v, constraint))
        except Refused:
            return
        for vc in nv.view_changes:
            if vc.body.prepared is not None:
                self._observe(vc.body.prepared.pre_prepare)
        self._enter_view(v, constraint, s, decision, nv.view_changes, now)
        if decision.base < self.height:
            self._send_status(s.sender, now)  # the new primary is behind us
        if nv.pre_prepare is not None:
            self._observe(nv.pre_prepare)
            self._keep_pending(nv.pre_prepare.with_block(s.block))
        self._after_advance(now)

    def _new_view_problem(self, s: Signed) -> quorum.NewViewDecision | None:
        """The NEW-VIEW's decision if it is valid (2f+1 valid VIEW-CHANGEs for its view from
        distinct nodes, and exactly the pre-prepare the rule dictates), else None."""
        nv = s.body
        senders = {vc.sender for vc in nv.view_changes}
        if len(senders) != len(nv.view_changes) or len(senders) < self.quorum:
            return None
        for vc in nv.view_changes:
            if vc.body.view != nv.view or not self._valid_view_change(vc, need_block=False):
                return None
        decision = quorum.new_view_decision([vc.body for vc in nv.view_changes])
        pp = nv.pre_prepare
        if decision.proof is None:
            return decision if pp is None and s.block is None else None
        if pp is None or s.block is None or pp.sender != s.sender:
            return None
        if (pp.body.view, pp.body.height, pp.body.block_hash) != (nv.view, decision.base + 1, decision.proof.block_hash):
            return None
        if s.block.hash != decision.proof.block_hash or not messages.verify(pp, self._keys):
            return None
        return decision

    def _enter_view(self, v: int, constraint: tuple[int, bytes] | None, nv: Signed,
                    decision: quorum.NewViewDecision, view_changes: tuple[Signed, ...], now: int) -> None:
        self._view, self._normal, self._constraint, self._new_view = v, True, constraint, nv
        self._view_started_ms = now
        self.stats["views_entered"] += 1
        self._view_changes = {w: b for w, b in self._view_changes.items() if w > v}
        self._vc_views = {p: w for p, w in self._vc_views.items() if w > v}
        self._proposals.clear()
        self._votes.prune(below_height=self.height + 1, below_view=v)
        self._pending = {k: s for k, s in self._pending.items() if k[1] >= v}
        if decision.base > self.height:  # heights up to base are settled: fetch them
            for vc in view_changes:
                if vc.body.committed_height == decision.base and vc.sender != self.node_id:
                    self._catchup.learn(decision.base, vc.sender)
        self._cancel(TIMER_VIEW)
        self._arm_view_timer(now)
        self._arm_censor(now)

    # -- censorship ---------------------------------------------------------------------------------

    def _arm_censor(self, now: int) -> None:
        oldest = self.mempool.oldest()
        if not self._normal or self.primary == self.node_id or oldest is None:
            self._cancel(TIMER_CENSOR)
            return
        since = max(oldest.arrived_ms, self._view_started_ms)
        wait = self.config.tx_wait_timeout_ms
        at = since + (wait // 2 if self._forwarded_view != self._view else wait)
        if self._timers.get(TIMER_CENSOR) != max(at, now):
            self._set_timer(TIMER_CENSOR, max(at, now))

    def _on_censor_timeout(self, now: int) -> None:
        oldest = self.mempool.oldest()
        if not self._normal or self.primary == self.node_id or oldest is None:
            return
        waited = now - max(oldest.arrived_ms, self._view_started_ms)
        wait = self.config.tx_wait_timeout_ms
        if waited >= wait:
            self._suspect(now, "a transaction waited too long (censorship)")
            return
        if waited >= wait // 2 and self._forwarded_view != self._view:
            # The primary may simply never have received them: forward before suspecting.
            txs = self.mempool.waiting_since(now - wait // 2, self.config.gossip_batch)
            self._send(self.primary, self._safety.sign(TxBatch(tuple(tx.raw for tx in txs))))
            self._forwarded_view = self._view
        self._arm_censor(now)

    # -- catch-up ---------------------------------------------------------------------------------

    def _send_status(self, peer: str, now: int) -> None:
        """Tell ``peer`` our height (it answers with its own if it is ahead), at most once per
        status interval unless our tip moved."""
        tip = self.height
        last = self._status_sent.get(peer)
        if last is not None and last[0] == tip and now - last[1] < self.config.status_interval_ms:
            return
        self._status_sent[peer] = (tip, now)
        self._send(peer, self._safety.sign(Status(tip, self._tip_cert)))

    def _on_status(self, s: Signed, now: int) -> None:
        st = s.body
        tip = self.height
        if st.height > tip:
            if st.certificate is None or not quorum.certificate_ok(st.certificate, self.consortium, st.height):
                self.stats["rejected"] += 1
                return
            self._catchup.learn(st.height, s.sender)
            self._request_blocks(now)
        elif st.height < tip:
            self._send_status(s.sender, now)

    def _request_blocks(self, now: int) -> None:
        if self._applying_blocks:
            return
        tip = self.height
        peer = self._catchup.next_peer(tip, now)
        if peer is None:
            return
        count = min(self.config.catchup_batch, self._catchup.target - tip)
        self._send(peer, self._safety.sign(BlockRequest(tip + 1, count)))
        retry = now + self.config.catchup_retry_ms
        self._catchup.requested(peer, retry)
        self._set_timer(TIMER_CATCHUP, retry)

    def _on_block_request(self, s: Signed, now: int) -> None:
        req = s.body
        tip = self.height
        if req.start < 1 or req.start > tip:
            self._send_status(s.sender, now)
            return
        entries: list[tuple[bytes, bytes]] = []
        size = 0
        for h in range(req.start, min(req.start + min(req.count, self.config.catchup_batch), tip + 1)):
            raw, cert = self.store.block_bytes(h), self.store.certificate(h)
            if raw is None or cert is None:
                break
            cb = cert.encode()
            if entries and size + len(raw) + len(cb) > self.config.catchup_max_bytes:
                break
            entries.append((raw, cb))
            size += len(raw) + len(cb)
        if entries:
            self._send(s.sender, self._safety.sign(Blocks(tuple(entries))))

    def _on_blocks(self, s: Signed, now: int) -> None:
        """Certified blocks from a peer: each is checked (2f+1 commit votes for exactly that block,
        and re-execution to the same roots) before it commits. The peer is not trusted."""
        self._catchup.answered(s.sender)
        self._applying_blocks = True
        try:
            for raw, cb in s.body.entries:
                tip = self.height
                try:
                    block, cert = Block.decode(raw), CommitCertificate.decode(cb)
                except BlockFormatError:
                    self._catchup.failed(s.sender, tip)
                    break
                if block.height <= tip:
                    continue
                if block.height != tip + 1:
                    break
                try:
                    candidate = self.chain.check_certified(block, cert, known=self.mempool.lookup)
                except InvalidBlock:
                    self._catchup.failed(s.sender, tip)
                    break
                self.mempool.remember(candidate.txs)
                self._catchup.learn(block.height, s.sender)
                self.stats["catchup_blocks"] += 1
                self._commit(candidate, cert, now)
        finally:
            self._applying_blocks = False
        self._request_blocks(now)

    # -- gossip -----------------------------------------------------------------------------------

    def _on_txs(self, s: Signed, now: int) -> None:
        added = 0
        for raw in s.body.txs:
            if self.mempool.waiting(raw):
                continue
            tx = self.mempool.lookup(raw)  # already verified in a block we checked
            if tx is None:
                try:
                    tx = decode_tx(raw, chain_id=self.chain_id)
                except MalformedTransaction:
                    self.stats["rejected"] += 1
                    continue
            if self._committed.has_tx(tx.tx_id):
                continue
            if self.mempool.add(tx, now) == ADDED:
                added += 1
        if added:
            self._on_new_work(now)

    # -- helpers ----------------------------------------------------------------------------------

    def _candidate(self, block: Block) -> Candidate | None:
        """The block re-executed on our tip (cached per block), or None if it is invalid."""
        if block.hash in self._candidates:
            return self._candidates[block.hash]
        try:
            candidate: Candidate | None = self.chain.check(block, known=self.mempool.lookup)
        except InvalidBlock:
            candidate = None
        else:
            self.mempool.remember(candidate.txs)
        if len(self._candidates) < MAX_BLOCKS_KEPT:
            self._candidates[block.hash] = candidate
        return candidate

    def _keep_block(self, block: Block, candidate: Candidate | None = None) -> None:
        if block.height == self.height + 1 and len(self._blocks) < MAX_BLOCKS_KEPT:
            self._blocks.setdefault(block.hash, block)
            if candidate is not None:
                self._candidates[block.hash] = candidate

    def _keep_pending(self, pp: Signed) -> None:
        key = (pp.body.height, pp.body.view)
        if key not in self._pending and len(self._pending) < MAX_PENDING:
            self._pending[key] = pp

    def _observe(self, s: Signed) -> None:
        ev = self._book.observe(s)
        if ev is not None:
            if len(self._evidence) < MAX_EVIDENCE_KEPT:
                self._evidence.append(ev)
            self._out.append(RecordEvidence(ev.evidence_id, ev.encode()))

    def _committed_hash(self, height: int) -> bytes | None:
        tip = self.chain.tip
        if height > tip.height:
            return None
        if height == tip.height:
            return tip.hash
        return self._committed.block_hash(height)

    def _persist(self, state: bytes | None) -> None:
        if state is not None:
            self._out.append(PersistSafety(state))

    def _broadcast(self, s: Signed) -> None:
        self._out.append(Send(None, s.encode()))

    def _send(self, peer: str, s: Signed) -> None:
        self._out.append(Send(peer, s.encode()))

    def _set_timer(self, name: str, at: int) -> None:
        self._timers[name] = at
        self._out.append(SetTimer(name, at))

    def _cancel(self, name: str) -> None:
        self._timers.pop(name, None)

    def _flush(self) -> list[Action]:
        out, self._out = self._out, []
        return out
