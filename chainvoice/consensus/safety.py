"""Safety rules: the one component that holds the node key and signs consensus messages.

Like DiemBFT's safety rules (and CometBFT's privval), it refuses any vote that could break
safety, whatever the rest of the replica asks, and returns its new state to be persisted BEFORE
the vote is released:

* never two different blocks for the same (height, view, kind) — no equivocation, even across a
  crash, because what was signed is persisted first;
* never a vote in a view other than the one it has entered, and never in a view lower than one
  it has moved to (a VIEW-CHANGE for v+1 ends all voting in v, PBFT §4.4);
* never a PREPARE or COMMIT for a block at a height where another block is already committed;
* never a COMMIT without its own PREPARE (or PRE-PREPARE) for the same block in the same view;
* after a NEW-VIEW, never a vote at the dictated height for anything but the dictated block.

It also keeps the prepared proof of the highest view (with its block) that it sent a COMMIT
for, so a restarted replica still reports it in its VIEW-CHANGE — the NEW-VIEW rule needs every
replica that helped commit a block to remember it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .. import codec, crypto
from ..chain.block import Block, BlockFormatError, CommitCertificate
from ..chain.consortium import Consortium
from . import messages
from .messages import (
    COMMIT,
    PRE_PREPARE,
    PREPARE,
    VOTE_KINDS,
    CommitVote,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Signed,
    ViewChange,
)

STATE_VERSION = 1


class Refused(Exception):
    """The safety rules will not sign this: doing so could break safety."""


class SafetyStateCorrupt(ValueError):
    """Persisted safety state that cannot be read: the node must not start (it could equivocate)."""


@dataclass
class SafetyState:
    view: int = 0  # the highest view moved to (VIEW-CHANGE sent) or entered
    entered: bool = True  # voting in ``view`` is open (view 0, or a valid NEW-VIEW was accepted)
    constraint: tuple[int, bytes] | None = None  # (height, block hash) the NEW-VIEW of ``view`` dictates
    votes: dict[tuple[int, int, str], bytes] = field(default_factory=dict)  # (height, view, kind) -> hash
    prepared: PreparedProof | None = None  # highest-view prepared proof we sent COMMIT for
    prepared_block: Block | None = None
    _prepared_cache: tuple[PreparedProof, bytes] | None = field(default=None, repr=False, compare=False)

    def encode(self) -> bytes:
        return codec.encode({
            "version": STATE_VERSION,
            "view": self.view,
            "entered": self.entered,
            "constraint": None if self.constraint is None else list(self.constraint),
            "votes": [[h, v, k, d] for (h, v, k), d in sorted(self.votes.items())],
            "prepared": self._prepared_bytes(),
        })

    def _prepared_bytes(self) -> bytes | None:
        # Encoded once per proof (the state is persisted on every vote; the proof rarely changes).
        if self.prepared is None:
            return None
        cached = self._prepared_cache
        if cached is None or cached[0] is not self.prepared:
            assert self.prepared_block is not None
            raw = codec.encode({"proof": self.prepared.to_map(), "block": self.prepared_block.encoded})
            self._prepared_cache = cached = (self.prepared, raw)
        return cached[1]

    @classmethod
    def decode(cls, raw: bytes, chain_id: str) -> "SafetyState":
        try:
            m = codec.decode(raw)
            if m["version"] != STATE_VERSION:
                raise SafetyStateCorrupt(f"safety state version {m['version']} is not {STATE_VERSION}")
            state = cls(view=int(m["view"]), entered=bool(m["entered"]))
            c = m["constraint"]
            state.constraint = None if c is None else (int(c[0]), bytes(c[1]))
            for h, v, k, d in m["votes"]:
                if k not in VOTE_KINDS or type(d) is not bytes:
                    raise SafetyStateCorrupt("bad vote record")
                state.votes[(int(h), int(v), k)] = d
            if m["prepared"] is not None:
                p = codec.decode(m["prepared"])
                state.prepared = PreparedProof.from_map(p["proof"], chain_id, 0)
                state.prepared_block = Block.decode(p["block"])
            return state
        except SafetyStateCorrupt:
            raise
        except (codec.EncodingError, messages.MessageError, BlockFormatError, KeyError, TypeError, ValueError,
                IndexError) as exc:
            raise SafetyStateCorrupt(f"unreadable safety state: {exc!r}") from None


class SafetyRules:
    """Signs for ``node_id``. Every ``sign_*`` returns ``(message, state)`` where ``state`` is the
    encoded safety state to persist before the message is sent (None when nothing changed)."""

    def __init__(self, node_id: str, key: crypto.SigningKey, consortium: Consortium,
                 committed_hash: Callable[[int], bytes | None], state: bytes | None = None) -> None:
        if consortium.node_keys.get(node_id) != key.public_key:
            raise ValueError(f"the key is not node {node_id}'s consortium key")
        self.node_id = node_id
        self.consortium = consortium
        self.chain_id = consortium.chain_id
        self._key = key
        self._committed_hash = committed_hash
        self.state = SafetyState() if state is None else SafetyState.decode(state, self.chain_id)

    # -- what it remembers ---------------------------------------------------------------------

    @property
    def view(self) -> int:
        return self.state.view

    @property
    def entered(self) -> bool:
        return self.state.entered

    @property
    def constraint(self) -> tuple[int, bytes] | None:
        return self.state.constraint

    def prepared_for(self, height: int) -> tuple[PreparedProof, Block] | None:
        s = self.state
        if s.prepared is None or s.prepared.height != height:
            return None
        assert s.prepared_block is not None
        return s.prepared, s.prepared_block

    def voted(self, height: int, view: int, kind: str) -> bytes | None:
        return self.state.votes.get((height, view, kind))

    # -- votes -------------------------------------------------------------------------------------

    def sign_pre_prepare(self, height: int, view: int, block: Block) -> tuple[Signed, bytes | None]:
        if self.consortium.primary(view) != self.node_id:
            raise Refused(f"not the primary of view {view}")
        changed = self._vote(PRE_PREPARE, height, view, block.hash)
        return self._sign(PrePrepare(view, height, block.hash), block), self._persist(changed)

    def sign_prepare(self, height: int, view: int, block_hash: bytes) -> tuple[Signed, bytes | None]:
        if self.consortium.primary(view) == self.node_id:
            raise Refused("the primary's pre-prepare is its prepare")
        changed = self._vote(PREPARE, height, view, block_hash)
        return self._sign(Prepare(view, height, block_hash)), self._persist(changed)

    def sign_commit(self, height: int, view: int, block_hash: bytes, proof: PreparedProof,
                    block: Block) -> tuple[Signed, bytes | None]:
        if (proof.height, proof.view, proof.block_hash) != (height, view, block_hash) or block.hash != block_hash:
            raise Refused("the prepared proof is for another block")
        own = self.state.votes.get((height, view, PREPARE)) or self.state.votes.get((height, view, PRE_PREPARE))
        if own != block_hash:
            raise Refused("no own prepare for this block in this view")
        changed = self._vote(COMMIT, height, view, block_hash)
        s = self.state
        if s.prepared is None or (s.prepared.height, s.prepared.view) < (height, view):
            s.prepared, s.prepared_block = proof, block
            changed = True
        return self._sign(CommitVote(view, height, block_hash)), self._persist(changed)

    # -- views -------------------------------------------------------------------------------------

    def sign_view_change(self, view: int, committed_height: int,
                         certificate: CommitCertificate | None) -> tuple[Signed, bytes | None]:
        """Move to ``view`` (or re-send the VIEW-CHANGE for the view being changed to)."""
        s = self.state
        if view < s.view or (view == s.view and s.entered):
            raise Refused(f"already in view {s.view}")
        changed = view != s.view
        s.view, s.entered, s.constraint = view, False, None
        held = self.prepared_for(committed_height + 1)
        proof, block = held if held else (None, None)
        vc = ViewChange(view, committed_height, certificate, proof)
        return self._sign(vc, block), self._persist(changed)

    def enter_view(self, view: int, constraint: tuple[int, bytes] | None) -> bytes | None:
        """Open voting in ``view`` after a valid NEW-VIEW, bound by the block it dictates."""
        s = self.state
        if view < s.view or (view == s.view and s.entered):
            raise Refused(f"view {view} is not ahead of view {s.view}")
        s.view, s.entered, s.constraint = view, True, constraint
        return self._persist(True)

    def sign_new_view(self, view: int, view_changes: tuple[Signed, ...], pre_prepare: Signed | None,
                      block: Block | None) -> Signed:
        s = self.state
        if self.consortium.primary(view) != self.node_id or s.view != view or not s.entered:
            raise Refused("only the primary that entered the view sends its NEW-VIEW")
        return self._sign(NewView(view, view_changes, pre_prepare), block)

    def sign(self, body: Any) -> Signed:
        """Messages that are not votes (status, block requests and answers, gossip)."""
        if body.TYPE in VOTE_KINDS or body.TYPE in (messages.VIEW_CHANGE, messages.NEW_VIEW):
            raise Refused(f"{body.TYPE} must go through its own rule")
        return self._sign(body)

    def committed(self, height: int) -> None:
        """Forget votes at heights now settled by the chain (the committed-block rule covers them)."""
        s = self.state
        s.votes = {k: d for k, d in s.votes.items() if k[0] > height}
        if s.prepared is not None and s.prepared.height <= height:
            s.prepared, s.prepared_block = None, None

    # -- helpers -----------------------------------------------------------------------------------

    def _vote(self, kind: str, height: int, view: int, block_hash: bytes) -> bool:
        s = self.state
        if view != s.view or not s.entered:
            raise Refused(f"not voting in view {view} (at view {s.view}, entered={s.entered})")
        committed = self._committed_hash(height)
        if committed is not None and committed != block_hash:
            raise Refused(f"another block is committed at height {height}")
        if s.constraint is not None and s.constraint[0] == height and s.constraint[1] != block_hash:
            raise Refused(f"the NEW-VIEW of view {view} dictates another block at height {height}")
        prior = s.votes.get((height, view, kind))
        if prior is not None:
            if prior != block_hash:
                raise Refused(f"already signed a {kind} for another block at height {height} view {view}")
            return False
        s.votes[(height, view, kind)] = block_hash
        return True

    def _sign(self, body: Any, block: Block | None = None) -> Signed:
        u = messages.prepare(body, self.chain_id, self.node_id)
        return u.signed(self._key.sign(u.message), block)

    def _persist(self, changed: bool) -> bytes | None:
        return self.state.encode() if changed else None
