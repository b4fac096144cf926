"""The event loop: simulated time, replicas with their stores, message delivery, timers, crashes.

Each node instance has its own ``ChainStore`` over a ``MemoryKeyValue``, which survives a crash;
a restart builds a new replica from that store and the last safety state it persisted —
everything else (mempool, votes seen, timers, messages in flight to it) is lost. The shell
contract is honoured exactly: actions run in order, ``PersistSafety`` is saved before later
actions, ``Commit`` is stored before later actions. A crash may strike in the middle of a
replica's action list (after ``crash_after`` of them), as a real process could.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import crypto
from ..chain.chain import BlockCommit, Chain
from ..chain.genesis import Genesis
from ..consensus import messages
from ..consensus.actions import Commit, Dropped, PersistSafety, RecordEvidence, Send, SetTimer
from ..consensus.config import ReplicaConfig
from ..consensus.replica import Replica
from ..ledger.transaction import Transaction
from ..store.chainstore import ChainStore
from ..store.kv import MemoryKeyValue
from .network import Network

_MSG, _TIMER, _CALL = 0, 1, 2

# Builds what runs on a node: (node, chain, store, safety_state) -> an object with the Replica's
# start / on_message / on_timer / submit methods (an honest Replica, or a Byzantine behaviour).
Factory = Callable[["SimNode", Chain, ChainStore, "bytes | None"], Any]


@dataclass(eq=False)
class SimNode:
    name: str  # unique per instance ("node2", or "node2#twin" for a second holder of node2's key)
    node_id: str
    key: crypto.SigningKey
    honest: bool
    factory: Factory
    skew_ms: int = 0  # this node's clock minus simulated time
    kv: MemoryKeyValue = field(default_factory=MemoryKeyValue)
    store: ChainStore | None = None
    chain: Chain | None = None
    replica: Any = None
    up: bool = False
    incarnation: int = 0
    crash_after: int | None = None  # crash after this many actions of the next step
    crash_on_commit: bool = False  # crash right after the next Commit action is stored
    crashes: int = 0
    timer_gen: dict[str, int] = field(default_factory=dict)

    @property
    def height(self) -> int:
        assert self.store is not None
        return self.store.tip.height


class Simulation:
    def __init__(self, genesis: Genesis, config: ReplicaConfig, network: Network, *, start_ms: int,
                 trace: Callable[[str], None] | None = None) -> None:
        self.genesis = genesis
        self.config = config
        self.network = network
        self.now = start_ms
        self.start_ms = start_ms
        self.trace = trace
        self.nodes: list[SimNode] = []
        self.by_id: dict[str, list[SimNode]] = {}
        self.node_ids = genesis.consortium.node_ids
        self._queue: list[tuple[int, int, int, Any, Any, Any, Any]] = []
        self._seq = 0
        # tx_id -> (height, status, code, instance name): the first commit reported to a client.
        self.reported: dict[bytes, tuple[int, str, str, str]] = {}
        self.commit_listeners: list[Callable[[SimNode, BlockCommit], None]] = []
        self.drop_listeners: list[Callable[[SimNode, Dropped], None]] = []
        self.evidence: list[tuple[str, bytes]] = []
        self.counters = {"sent": 0, "delivered": 0, "events": 0, "crashes": 0}

    # -- building ---------------------------------------------------------------------------------

    def honest_factory(self) -> Factory:
        config = self.config

        def make(node: SimNode, chain: Chain, store: ChainStore, safety: bytes | None) -> Replica:
            return Replica(node.node_id, node.key, chain, store, config, safety_state=safety)

        return make

    def add_node(self, node_id: str, key: crypto.SigningKey, *, factory: Factory | None = None,
                 honest: bool = True, name: str | None = None, skew_ms: int = 0) -> SimNode:
        node = SimNode(name or node_id, node_id, key, honest, factory or self.honest_factory(), skew_ms)
        self.nodes.append(node)
        self.by_id.setdefault(node_id, []).append(node)
        return node

    def node(self, name: str) -> SimNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def start(self) -> None:
        for node in self.nodes:
            self._boot(node)

    def _boot(self, node: SimNode) -> None:
        store = ChainStore(node.kv)
        tip = store.open(self.genesis)
        chain = Chain(self.genesis, store, tip)
        node.store, node.chain = store, chain
        node.replica = node.factory(node, chain, store, store.load_safety())
        node.up = True
        node.incarnation += 1
        node.timer_gen = {}
        self._log(f"{node.name} boots at height {tip.height}")
        self._execute(node, node.replica.start(self._local(node)))

    # -- driving ----------------------------------------------------------------------------------

    def schedule(self, at_ms: int, fn: Callable[[], None]) -> None:
        self._push(at_ms, _CALL, fn, None, None, None)

    def submit(self, name: str, txs: list[Transaction], *, gossip: bool = True) -> bool:
        """A client hands ``txs`` to one node instance; False when it is down."""
        node = self.node(name)
        if not node.up:
            return False
        self._execute(node, node.replica.submit(txs, self._local(node), gossip=gossip))
        return True

    def crash(self, name: str, *, after_actions: int | None = None) -> None:
        """Crash now, or (``after_actions``) in the middle of the node's next step."""
        node = self.node(name)
        if not node.up:
            return
        if after_actions is None:
            self._crash(node)
        else:
            node.crash_after = after_actions

    def restart(self, name: str) -> None:
        node = self.node(name)
        node.crash_after = None
        node.crash_on_commit = False
        if not node.up:
            self._boot(node)

    def run_until(self, t_ms: int, stop: Callable[[], bool] | None = None) -> bool:
        """Process events up to ``t_ms``; True if ``stop()`` became true first."""
        q = self._queue
        while q and q[0][0] <= t_ms:
            at, _, kind, a, b, c, d = heapq.heappop(q)
            self.now = at
            self.counters["events"] += 1
            if kind == _MSG:
                self._deliver(a, b, c, d)
            elif kind == _TIMER:
                self._fire(a, b, c, d)
            else:
                a()
            if stop is not None and stop():
                return True
        self.now = max(self.now, t_ms)
        return stop is not None and stop()

    def idle(self) -> bool:
        return not self._queue

    # -- events -----------------------------------------------------------------------------------

    def _deliver(self, node: SimNode, src: str, raw: bytes, incarnation: int) -> None:
        if not node.up or node.incarnation != incarnation:
            return
        self.counters["delivered"] += 1
        if self.trace is not None:
            self._log(f"{node.name} <- {src} {_describe(raw, self.genesis.chain_id)}")
        self._execute(node, node.replica.on_message(src, raw, self._local(node)))

    def _fire(self, node: SimNode, name: str, gen: int, incarnation: int) -> None:
        if not node.up or node.incarnation != incarnation or node.timer_gen.get(name) != gen:
            return
        if self.trace is not None:
            self._log(f"{node.name} timer {name}")
        self._execute(node, node.replica.on_timer(name, self._local(node)))

    def emit(self, node: SimNode, actions: list[Any]) -> None:
        """Carry out actions on behalf of ``node`` (Byzantine colluders act outside a step)."""
        if node.up:
            self._execute(node, actions)

    def _execute(self, node: SimNode, actions: list[Any]) -> None:
        cut = node.crash_after
        store = node.store
        assert store is not None
        for i, a in enumerate(actions):
            if cut is not None and i >= cut:
                break
            t = type(a)
            if t is Send:
                self._send(node, a)
            elif t is SetTimer:
                gen = node.timer_gen.get(a.name, 0) + 1
                node.timer_gen[a.name] = gen
                self._push(max(self.now, a.at_ms - node.skew_ms), _TIMER, node, a.name, gen, node.incarnation)
            elif t is PersistSafety:
                store.save_safety(a.state)
            elif t is Commit:
                store.save_commit(a.commit)
                self._committed(node, a.commit)
                if node.crash_on_commit:
                    node.crash_on_commit = False
                    cut = i + 1
                    break
            elif t is RecordEvidence:
                store.save_evidence(a.evidence_id, a.evidence)
                self.evidence.append((node.name, a.evidence))
            elif t is Dropped:
                for listener in self.drop_listeners:
                    listener(node, a)
        if cut is not None:
            self._crash(node)

    def _send(self, node: SimNode, a: Send) -> None:
        targets = [a.to] if a.to is not None else [n for n in self.node_ids if n != node.node_id]
        src = node.node_id
        for dst in targets:
            for target in self.by_id.get(dst, ()):
                if target is node:
                    continue
                for delay in self.network.delays(src, dst, a.raw):
                    self.counters["sent"] += 1
                    self._push(self.now + delay, _MSG, target, src, a.raw, target.incarnation)

    def _committed(self, node: SimNode, commit: BlockCommit) -> None:
        if self.trace is not None:
            self._log(f"{node.name} COMMITS height {commit.height} ({len(commit.txs)} txs) "
                      f"{commit.block.hash.hex()[:12]}")
        if node.honest:
            h = commit.height
            for tx, receipt in zip(commit.txs, commit.receipts):
                if tx.tx_id not in self.reported:
                    self.reported[tx.tx_id] = (h, receipt.status, receipt.code, node.name)
        for listener in self.commit_listeners:
            listener(node, commit)

    def _crash(self, node: SimNode) -> None:
        node.up = False
        node.crash_after = None
        node.crashes += 1
        node.replica = None
        self.counters["crashes"] += 1
        self._log(f"{node.name} CRASHES")

    # -- helpers ----------------------------------------------------------------------------------

    def _local(self, node: SimNode) -> int:
        return self.now + node.skew_ms

    def _push(self, at: int, kind: int, a: Any, b: Any, c: Any, d: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, a, b, c, d))

    def _log(self, line: str) -> None:
        if self.trace is not None:
            self.trace(f"t=+{self.now - self.start_ms:>6}ms {line}")


def _describe(raw: bytes, chain_id: str) -> str:
    try:
        s = messages.decode(raw, chain_id)
    except messages.MessageError as exc:
        return f"garbage ({exc})"
    b = s.body
    if s.kind in messages.VOTE_KINDS:
        return f"{s.kind} v={b.view} h={b.height} {b.block_hash.hex()[:8]}"
    if s.kind == messages.VIEW_CHANGE:
        p = b.prepared
        return (f"view-change v={b.view} committed={b.committed_height}"
                + ("" if p is None else f" prepared(v={p.view} h={p.height} {p.block_hash.hex()[:8]})"))
    if s.kind == messages.NEW_VIEW:
        return f"new-view v={b.view} pp={'yes' if b.pre_prepare else 'no'}"
    if s.kind == messages.STATUS:
        return f"status h={b.height}"
    if s.kind == messages.BLOCK_REQUEST:
        return f"block-request {b.start}+{b.count}"
    if s.kind == messages.BLOCKS:
        return f"blocks x{len(b.entries)}"
    return f"txs x{len(b.txs)}"
