"""The node runtime: wires the pure replica to LevelDB, the peer transport, timers and the API.

Everything that decides lives in the replica and the chain; this shell only feeds them events
(peer messages, timer expiries, client transactions, the wall clock) and carries out the actions
they return, in order: persist safety state before the votes it protects leave, save a committed
block before anything that depends on it, then answer waiting clients and event streams.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from dataclasses import dataclass
from typing import Any, Sequence

from aiohttp import web

from . import codec
from .chain.chain import BlockCommit, Chain
from .chain.genesis import Genesis
from .config import ConfigError, NodeConfig
from .consensus.actions import Commit, Dropped, PersistSafety, RecordEvidence, Send, SetTimer
from .consensus.config import ReplicaConfig
from .consensus.replica import Replica
from .crypto import KeyFileError, SigningKey
from .ledger.codes import MalformedTransaction
from .ledger.records import Receipt, invoice_key
from .ledger.transaction import Transaction, decode
from .net.events import EventHub
from .net.metrics import NodeMetrics
from .net.peer import PeerTransport, TLSFiles
from .store.chainstore import ChainStore
from .store.leveldb import open_node_store
from .runtime import HelperThreads, tune_gc

log = logging.getLogger("chainvoice.node")

# Client submissions arriving within this window are handed to the replica (and gossiped) as one
# batch: one gossip message per few ms instead of one per transaction.
SUBMIT_COALESCE_S = 0.002
# How often new helper threads (LevelDB starts its compaction thread on first need) are looked for.
HELPER_CHECK_S = 2.0
# Crash-consistency testing: CHAINVOICE_CRASH_POINTS="before-write:0.05,after-write:0.05" makes the
# node SIGKILL itself with that probability at those points of its commit path. Unset in normal use.
CRASH_POINTS_ENV = "CHAINVOICE_CRASH_POINTS"
CRASH_POINTS = ("before-write", "between-writes", "after-write", "after-safety")


def _crash_points() -> dict[str, float]:
    spec = os.environ.get(CRASH_POINTS_ENV, "")
    points: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, prob = part.partition(":")
        if name not in CRASH_POINTS:
            raise ConfigError(f"{CRASH_POINTS_ENV}: unknown crash point {name!r} (known: {', '.join(CRASH_POINTS)})")
        points[name] = float(prob or 1)
    return points


# A client's ?wait=commit answer comes within this bound or says the transaction is still pending.
DEFAULT_WAIT_S = 15.0
MAX_WAIT_S = 60.0


@dataclass(frozen=True)
class Committed:
    tx_id: bytes
    height: int
    index: int
    receipt: Receipt


class _CommitWait:
    """The transactions one client request waits for: their results in request order, and one
    future, done when every one of them has committed or been dropped."""

    __slots__ = ("results", "positions", "done")

    def __init__(self, tx_ids: Sequence[bytes], done: asyncio.Future[None]) -> None:
        self.results: list[Committed | str | None] = [None] * len(tx_ids)
        self.positions: dict[bytes, list[int]] = {}  # tx_id -> where it is in the request, until settled
        for i, tx_id in enumerate(tx_ids):
            self.positions.setdefault(tx_id, []).append(i)
        self.done = done

    def settle(self, tx_id: bytes, result: Committed | str) -> None:
        positions = self.positions.pop(tx_id, None)
        if positions is None:
            return
        for i in positions:
            self.results[i] = result
        if not self.positions and not self.done.done():
            self.done.set_result(None)


@dataclass(frozen=True)
class Submission:
    """What happened to one submitted transaction at this node."""

    tx: Transaction
    state: str  # "pending" (in the mempool), "committed" (already on the chain)
    committed: Committed | None = None


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        try:
            self.genesis = Genesis.loads(config.genesis.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read the genesis file {config.genesis}: {exc}") from None
        self.consortium = self.genesis.consortium
        self.chain_id = self.consortium.chain_id
        self.node_id = config.node_id
        if self.node_id not in self.consortium.node_keys:
            raise ConfigError(f"{config.node_id} is not a node of consortium {self.chain_id}")
        try:
            self.key = SigningKey.load(config.key)
        except KeyFileError as exc:
            raise ConfigError(str(exc)) from None
        if self.key.public_key != self.consortium.node_keys[self.node_id]:
            raise ConfigError(f"{config.key} is not the key the genesis file lists for {self.node_id}")
        node_ids = list(self.consortium.node_ids)
        self.databases = open_node_store(config.data_dir, node_ids.index(self.node_id), len(node_ids))
        self.store = ChainStore(*self.databases)
        tip = self.store.open(self.genesis)
        self.store.between_writes = lambda: self._maybe_crash("between-writes")
        self.genesis_hash = self.genesis.block().hash
        self.chain = Chain(self.genesis, self.store, tip)
        try:
            replica_config = ReplicaConfig(**config.consensus)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{config.path}: consensus: {exc}") from None
        self.replica = Replica(self.node_id, self.key, self.chain, self.store, replica_config,
                                         self.store.load_safety())
        self.transport = PeerTransport(
            self.node_id, (config.peer_host, config.peer_port), config.peers,
            TLSFiles(config.tls_ca, config.tls_cert, config.tls_key), self._on_peer_message,
            set(self.consortium.node_ids),
        )
        self.events = EventHub()
        self.metrics = NodeMetrics(self.node_id)
        self._waiters: dict[bytes, list[_CommitWait]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._pending_submit: list[Transaction] = []
        self._submit_handle: asyncio.TimerHandle | None = None
        self._helpers = HelperThreads(keep=tuple(db.writer_thread_id for db in self.databases))
        self._helpers_handle: asyncio.TimerHandle | None = None
        self._runner: web.AppRunner | None = None
        self._stopped = asyncio.Event()
        self.started_at = time.time()
        self._crash = _crash_points()
        self._logged_view = -1
        if self._crash:
            log.warning("node %s will crash itself at %s", self.node_id, self._crash)
        log.info("node %s opened its store at height %d", self.node_id, tip.height)

    # -- lifecycle ----------------------------------------------------------------------------

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    async def start(self) -> None:
        from .net.api import build_app  # the API imports Node's types; import late to avoid a cycle

        app = build_app(self)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.api_host, self.config.api_port, reuse_address=True).start()
        await self.transport.start()
        self._lower_helpers()
        self._execute(self.replica.start(self.now_ms()))
        log.info("node %s serving %s, peers on %s:%d", self.node_id, self.config.api_url,
                 self.config.peer_host, self.config.peer_port)

    def _lower_helpers(self) -> None:
        self._helpers.lower()
        self._helpers_handle = asyncio.get_running_loop().call_later(HELPER_CHECK_S, self._lower_helpers)

    async def stop(self) -> None:
        if self._helpers_handle is not None:
            self._helpers_handle.cancel()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.events.close()
        await self.transport.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self.store.close()
        self._stopped.set()

    async def run_forever(self) -> None:
        tune_gc()
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("node %s stopping", self.node_id)
        await self.stop()

    # -- events into the replica ----------------------------------------------------------------

    def _on_peer_message(self, sender: str, raw: bytes) -> None:
        self.metrics.peer_messages.inc()
        self._execute(self.replica.on_message(sender, raw, self.now_ms()))

    def _on_timer(self, name: str) -> None:
        self._timers.pop(name, None)
        self._execute(self.replica.on_timer(name, self.now_ms()))

    def submit(self, raw: bytes) -> Submission:
        """Check a client's transaction (encoding, schema, chain, signature: once per node) and
        queue it for the replica. Raises MalformedTransaction; never lets it near a block."""
        tx = decode(raw, chain_id=self.chain_id)
        if self.replica.is_committed(tx.tx_id):
            location = self.store.tx_location(tx.tx_id)
            if location is not None:  # else in a block not written yet: the replica drops it
                return Submission(tx, "committed", self._committed_at(tx.tx_id, *location))
        self._pending_submit.append(tx)
        if self._submit_handle is None:
            self._submit_handle = asyncio.get_running_loop().call_later(SUBMIT_COALESCE_S, self._flush_submissions)
        self.metrics.submitted.inc()
        return Submission(tx, "pending")

    def submit_many(self, raws: list[bytes]) -> list[Submission | MalformedTransaction]:
        """``submit`` for a batch: one result per transaction, malformed ones as their error."""
        out: list[Submission | MalformedTransaction] = []
        for raw in raws:
            try:
                out.append(self.submit(raw))
            except MalformedTransaction as exc:
                self.metrics.rejected_input.labels(exc.code).inc()
                out.append(exc)
        return out

    def _flush_submissions(self) -> None:
        self._submit_handle = None
        batch, self._pending_submit = self._pending_submit, []
        if batch:
            self._execute(self.replica.submit(batch, self.now_ms()))

    async def wait_commit(self, tx_id: bytes, timeout_s: float) -> Committed | str | None:
        """The commit of ``tx_id``; a reason string if it was dropped; None on timeout."""
        return (await self.wait_commits([tx_id], timeout_s))[0]

    async def wait_commits(self, tx_ids: Sequence[bytes], timeout_s: float, *,
                           just_submitted: bool = False) -> list[Committed | str | None]:
        """``wait_commit`` for each of ``tx_ids``, answered in order, under one timer: a batch of
        submissions waits as one future, not as a task and a timer per transaction.
        ``just_submitted``: ``submit`` found none of them committed, in this same turn of the event
        loop (no block can have committed since), so the store is not asked again."""
        wait = _CommitWait(tx_ids, asyncio.get_running_loop().create_future())
        for tx_id in list(wait.positions):
            location = None if just_submitted else self.store.tx_location(tx_id)
            if location is not None:
                wait.settle(tx_id, self._committed_at(tx_id, *location))
            else:
                self._waiters.setdefault(tx_id, []).append(wait)
        try:
            if wait.positions:
                await asyncio.wait_for(wait.done, min(timeout_s, MAX_WAIT_S))
        except asyncio.TimeoutError:
            pass
        finally:
            for tx_id in wait.positions:  # not settled: timed out, or the request went away
                waiters = self._waiters.get(tx_id)
                if waiters is not None:
                    if wait in waiters:
                        waiters.remove(wait)
                    if not waiters:
                        del self._waiters[tx_id]
        return wait.results

    def _committed_at(self, tx_id: bytes, height: int, index: int) -> Committed:
        return Committed(tx_id, height, index, self.store.receipts(height)[index])

    # -- actions out of the replica ---------------------------------------------------------------

    def _execute(self, actions: list[Any]) -> None:
        view = self.replica.view
        if view != self._logged_view:
            self._logged_view = view
            log.info("view %d (primary %s)%s", view, self.replica.primary,
                     " - view change in progress" if self.replica.in_view_change else "")
        for action in actions:
            if isinstance(action, Send):
                self.transport.send(action.to, action.raw)
            elif isinstance(action, SetTimer):
                self._set_timer(action.name, action.at_ms)
            elif isinstance(action, PersistSafety):
                self.store.save_safety(action.state)
                self._maybe_crash("after-safety")
            elif isinstance(action, Commit):
                self._commit(action.commit)
            elif isinstance(action, RecordEvidence):
                self.store.save_evidence(action.evidence_id, action.evidence)
                self.metrics.evidence.inc()
                log.warning("node %s recorded equivocation evidence %s", self.node_id, action.evidence_id.hex()[:16])
            elif isinstance(action, Dropped):
                for tx_id in action.tx_ids:
                    for wait in self._waiters.pop(tx_id, ()):
                        wait.settle(tx_id, action.reason)
            else:  # pragma: no cover - a new action type the shell does not know
                raise AssertionError(f"unknown replica action {action!r}")

    def _set_timer(self, name: str, at_ms: int) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, (at_ms - self.now_ms()) / 1000)
        self._timers[name] = asyncio.get_running_loop().call_later(delay, self._on_timer, name)

    def _commit(self, commit: BlockCommit) -> None:
        start = time.perf_counter()
        self._maybe_crash("before-write")
        self.store.save_commit(commit)
        self._maybe_crash("after-write")
        self.metrics.observe_commit(commit, time.perf_counter() - start, self.now_ms())
        log.debug("committed block %d: %d transactions", commit.height, len(commit.txs))
        height = commit.height
        waiters = self._waiters
        if waiters:
            for i, tx in enumerate(commit.txs):
                waiting = waiters.pop(tx.tx_id, None)
                if waiting is not None:
                    done = Committed(tx.tx_id, height, i, commit.receipts[i])
                    for wait in waiting:
                        wait.settle(tx.tx_id, done)
        if self.events.has_subscribers():
            self._publish(commit)

    def _publish(self, commit: BlockCommit) -> None:
        for i, (tx, receipt) in enumerate(zip(commit.txs, commit.receipts)):
            number = tx.number
            if number is None:
                continue
            raw = self.store.state_value(invoice_key(number))
            state = None if raw is None else codec.decode(raw, canonical=False)
            holders = {tx.signer}
            sellers = set()
            if state is not None:
                holders.add(state["holder"])
                sellers.add(state["seller_tax_id"])
            event = {
                "kind": tx.kind, "number": number, "tx_id": tx.tx_id.hex(), "height": commit.height,
                "index": i, "status": receipt.status, "code": receipt.code, "message": receipt.message,
                "invoice": None if state is None else codec.to_json(state),
            }
            self.events.publish(event, holders={h.hex() for h in holders}, sellers=sellers)

    def _maybe_crash(self, point: str) -> None:
        p = self._crash.get(point)
        if p and random.random() < p:
            log.warning("node %s crashing itself at %s (height %d)", self.node_id, point, self.store.tip.height)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        tip = self.store.tip
        replica = self.replica.status()
        return {
            "node_id": self.node_id, "chain_id": self.chain_id, "height": tip.height,
            "block_hash": tip.hash.hex(), "timestamp_ms": tip.timestamp_ms, "view": replica.get("view"),
            "primary": replica.get("primary"), "mempool": replica.get("mempool"),
            "peers_connected": self.transport.connected_peers(), "replica": replica,
            "uptime_s": round(time.time() - self.started_at, 1), "pid": os.getpid(),
        }
