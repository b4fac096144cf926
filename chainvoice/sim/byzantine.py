"""Byzantine replicas: an honest ``Replica`` inside (so the node keeps following the chain), with
what it sends altered. They sign with the node key directly: no safety rules hold them back.

* ``Equivocator``  as primary sends one block to some peers and a different one to the others;
  in a ``Cabal`` its accomplices also vote for both, each to its half (beyond f: breaks safety).
* ``BadRoot``      as primary proposes blocks whose state root is wrong.
* ``SilentPrimary`` never proposes and never sends NEW-VIEW.
* ``Garbage``      also sends random bytes, mangled messages and well-signed absurd ones.
* ``Replayer``     also re-sends old messages (its own and other nodes').
A *twin* (two processes holding one node's key) needs no class: the simulation runs two honest
replicas under one node id, each with its own store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..chain.block import Block, CommitCertificate, Vote
from ..consensus import messages
from ..consensus.actions import Send
from ..consensus.messages import (
    BlockRequest,
    Blocks,
    CommitVote,
    NewView,
    Prepare,
    PrePrepare,
    Signed,
    Status,
    TxBatch,
    ViewChange,
)
from ..consensus.replica import Replica
from ..ledger.transaction import decode as decode_tx
from .prng import Prng
from .simulation import SimNode, Simulation

BEHAVIOURS = ("equivocate", "bad-root", "silent-primary", "garbage", "replay", "twin")


class Behaviour:
    """Wraps an honest replica and rewrites its outgoing actions in ``alter``."""

    def __init__(self, inner: Replica, node: SimNode, sim: Simulation, prng: Prng) -> None:
        self.inner = inner
        self.node = node
        self.sim = sim
        self.prng = prng
        self.chain_id = inner.chain_id
        self.peers = [n for n in inner.consortium.node_ids if n != node.node_id]

    def start(self, now_ms: int) -> list[Any]:
        return self.alter(self.inner.start(now_ms), now_ms)

    def on_message(self, sender: str, raw: bytes, now_ms: int) -> list[Any]:
        self.observe(sender, raw)
        return self.alter(self.inner.on_message(sender, raw, now_ms), now_ms)

    def on_timer(self, name: str, now_ms: int) -> list[Any]:
        return self.alter(self.inner.on_timer(name, now_ms), now_ms)

    def submit(self, txs: list[Any], now_ms: int, *, gossip: bool = True) -> list[Any]:
        return self.alter(self.inner.submit(txs, now_ms, gossip=gossip), now_ms)

    def __getattr__(self, name: str) -> Any:  # view, height, status(), ... of the inner replica
        return getattr(self.inner, name)

    def alter(self, actions: list[Any], now_ms: int) -> list[Any]:
        return actions

    def observe(self, sender: str, raw: bytes) -> None:
        pass

    def seal(self, body: Any, block: Block | None = None) -> Signed:
        return messages.seal(body, self.chain_id, self.node.node_id, self.node.key.sign, block)

    def own(self, a: Any, *kinds: str) -> Signed | None:
        """The decoded message if ``a`` sends one of ours of these kinds."""
        if type(a) is not Send:
            return None
        try:
            s = messages.decode(a.raw, self.chain_id)
        except messages.MessageError:
            return None
        return s if s.kind in kinds and s.sender == self.node.node_id else None


class Cabal:
    """Colluding equivocators: when one proposes two blocks, all vote for each block to the honest
    replicas that were shown it. With f+1 members this makes two honest replicas commit different
    blocks — the negative control proving the checker can see a safety violation."""

    def __init__(self, sim: Simulation, members: list[str]) -> None:
        self.sim = sim
        self.members = members
        self.forked: set[int] = set()  # heights where the cabal showed two blocks

    def honest_halves(self) -> tuple[list[str], list[str]]:
        honest = [n for n in self.sim.node_ids if n not in self.members]
        half = max(1, len(honest) // 2)
        return honest[:half], honest[half:]

    def fork(self, primary: str, view: int, height: int, a: Block, b: Block, groups: tuple[list[str], list[str]]) -> None:
        self.forked.add(height)
        for member_id in self.members:
            for node in self.sim.by_id[member_id]:
                acts: list[Any] = []
                for block, group in ((a, groups[0]), (b, groups[1])):
                    bodies: list[Any] = [CommitVote(view, height, block.hash)]
                    if member_id != primary:
                        bodies.insert(0, Prepare(view, height, block.hash))
                    for body in bodies:
                        raw = messages.seal(body, self.sim.genesis.chain_id, member_id, node.key.sign).encode()
                        acts.extend(Send(p, raw) for p in group)
                self.sim.schedule(self.sim.now, lambda n=node, acts=acts: self.sim.emit(n, acts))


class Equivocator(Behaviour):
    def __init__(self, inner: Replica, node: SimNode, sim: Simulation, prng: Prng, *,
                 cabal: Cabal | None = None, sloppy: bool = False) -> None:
        super().__init__(inner, node, sim, prng)
        self.cabal = cabal
        self.sloppy = sloppy  # also show both blocks to one peer (immediate evidence)

    def alter(self, actions: list[Any], now_ms: int) -> list[Any]:
        out = []
        for a in actions:
            s = self.own(a, messages.PRE_PREPARE, messages.PREPARE, messages.COMMIT)
            if s is None:
                out.append(a)
            elif s.kind == messages.PRE_PREPARE and a.to is None:
                out.extend(self._equivocate(s))
            elif self.cabal is not None and s.body.height in self.cabal.forked:
                continue  # the cabal votes on forked heights itself, to each half
            else:
                out.append(a)
        return out

    def _equivocate(self, s: Signed) -> list[Any]:
        block = s.block
        assert block is not None
        other = self._other_block(block)
        if other is None:
            return [Send(None, s.encode())]
        pp2 = self.seal(PrePrepare(s.body.view, s.body.height, other.hash), other)
        if self.cabal is not None:
            first, second = self.cabal.honest_halves()
            first = first + [m for m in self.cabal.members if m != self.node.node_id]
            self.cabal.fork(self.node.node_id, s.body.view, s.body.height, block, other, (first, second))
        else:
            peers = list(self.peers)
            self.prng.shuffle(peers)
            half = max(1, len(peers) // 2)
            first, second = peers[:half], peers[half:]
        out = [Send(p, s.encode()) for p in first] + [Send(p, pp2.encode()) for p in second]
        if self.sloppy and first:
            out.append(Send(first[0], pp2.encode()))
        return out

    def _other_block(self, block: Block) -> Block | None:
        """The same transactions a millisecond later: a valid block with another hash."""
        chain = self.inner.chain
        if chain.tip.hash != block.header.prev_hash:
            return None
        txs = [self.inner.mempool.lookup(r) or decode_tx(r, check_signature=False) for r in block.txs]
        candidate, _ = chain.build(txs, block.header.timestamp_ms + 1, self.node.node_id)
        return candidate.block


class BadRoot(Behaviour):
    def alter(self, actions: list[Any], now_ms: int) -> list[Any]:
        out = []
        for a in actions:
            s = self.own(a, messages.PRE_PREPARE)
            if s is None or a.to is not None:
                out.append(a)
                continue
            block = s.block
            assert block is not None
            bad = Block(dataclasses.replace(block.header, state_root=bytes(32 - 1) + b"\x01"), block.txs)
            out.append(Send(None, self.seal(PrePrepare(s.body.view, s.body.height, bad.hash), bad).encode()))
        return out


class SilentPrimary(Behaviour):
    def alter(self, actions: list[Any], now_ms: int) -> list[Any]:
        return [a for a in actions if self.own(a, messages.PRE_PREPARE, messages.NEW_VIEW) is None]


class Garbage(Behaviour):
    """Honest, plus a stream of things that must be rejected without harm."""

    def alter(self, actions: list[Any], now_ms: int) -> list[Any]:
        out = list(actions)
        if self.prng.chance(0.3):
            for _ in range(self.prng.randint(1, 2)):
                out.append(Send(self.prng.choice(self.peers), self._junk(actions)))
        return out

    def _junk(self, actions: list[Any]) -> bytes:
        p = self.prng
        real = [a.raw for a in actions if type(a) is Send]
        kind = p.below(10)
        if kind == 0 or not real and kind < 3:
            return p.bytes(p.below(200))
        if kind == 1:
            raw = bytearray(p.choice(real))
            i = p.below(len(raw))
            raw[i] ^= 1 << p.below(8)
            return bytes(raw)
        if kind == 2:
            raw = p.choice(real)
            return raw[:p.below(len(raw))]
        huge = 2**63 - 1 - p.below(1000)
        tip = self.inner.height
        if kind == 3:
            return self.seal(PrePrepare(huge, tip + 1, p.bytes(32))).encode()
        if kind == 4:
            return self.seal(ViewChange(huge - p.below(10), huge, None, None)).encode()
        if kind == 5:
            fake = CommitCertificate(huge, 0, p.bytes(32), (Vote(self.node.node_id, p.bytes(64)),))
            return self.seal(Status(huge, fake)).encode()
        if kind == 6:
            return self.seal(BlockRequest(p.below(3), huge)).encode()
        if kind == 7:
            return self.seal(Blocks(((p.bytes(40), p.bytes(40)),))).encode()
        if kind == 8:
            return self.seal(TxBatch((p.bytes(60), b""))).encode()
        return self.seal(NewView(self.inner.view + 1, (), None)).encode()


class Replayer(Behaviour):
    """Honest, plus old messages re-sent: its own (validly signed, stale) and other nodes' (which
    the transport attributes to it, so they must fail the sender check)."""

    KEEP = 200

    def __init__(self, inner: Replica, node: SimNode, sim: Simulation, prng: Prng) -> None:
        super().__init__(inner, node, sim, prng)
        self._old: list[bytes] = []

    def observe(self, sender: str, raw: bytes) -> None:
        self._remember(raw)

    def alter(self, actions: list[Any], now_ms: int) -> list[Any]:
        out = list(actions)
        for a in actions:
            if type(a) is Send:
                self._remember(a.raw)
        if self._old and self.prng.chance(0.4):
            for _ in range(self.prng.randint(1, 3)):
                out.append(Send(self.prng.choice(self.peers), self.prng.choice(self._old)))
        return out

    def _remember(self, raw: bytes) -> None:
        if len(self._old) >= self.KEEP:
            self._old[self.prng.below(self.KEEP)] = raw
        else:
            self._old.append(raw)
