"""Equivocation evidence: two messages signed by one node naming different blocks for the same
(height, view, kind). Either signature alone is harmless; together they prove the node broke the
protocol, and anyone holding the consortium keys can check that later (``decode`` + ``problem``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import codec
from ..chain.consortium import Consortium
from . import messages
from .messages import VOTE_KINDS, Signed

# At most this many (node, height, view, kind) first-votes are remembered; a Byzantine node
# sending votes for ever new views cannot grow the book past it (oldest entries are forgotten).
MAX_TRACKED = 20_000


@dataclass(frozen=True)
class Evidence:
    node: str
    kind: str
    height: int
    view: int
    first: Signed
    second: Signed

    @property
    def evidence_id(self) -> bytes:
        a, b = sorted([self.first.payload + self.first.signature, self.second.payload + self.second.signature])
        return codec.sha256(b"chainvoice-evidence-v1" + codec.encode([a, b]))

    def encode(self) -> bytes:
        return codec.encode({"node": self.node, "kind": self.kind, "height": self.height, "view": self.view,
                             "first": self.first.embedded(), "second": self.second.embedded()})

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "kind": self.kind, "height": self.height, "view": self.view,
                "first_block_hash": self.first.body.block_hash.hex(),
                "second_block_hash": self.second.body.block_hash.hex(), "evidence_id": self.evidence_id.hex()}


def decode(raw: bytes, chain_id: str) -> Evidence:
    """Read evidence back (e.g. for the API); raises MessageError on malformed bytes."""
    try:
        m = codec.decode(raw)
    except codec.EncodingError as exc:
        raise messages.MessageError(f"evidence bytes: {exc}") from None
    if type(m) is not dict or set(m) != {"node", "kind", "height", "view", "first", "second"}:
        raise messages.MessageError("evidence must be {node, kind, height, view, first, second}")
    first = messages.decode_embedded(m["first"], chain_id, 0)
    second = messages.decode_embedded(m["second"], chain_id, 0)
    return Evidence(m["node"], m["kind"], m["height"], m["view"], first, second)


def problem(ev: Evidence, consortium: Consortium) -> str | None:
    """Why ``ev`` does not prove equivocation by ``ev.node``, or None when it does."""
    for s in (ev.first, ev.second):
        if s.sender != ev.node or s.kind != ev.kind or s.kind not in VOTE_KINDS:
            return "the messages are not both by the node, of the kind named"
        if (s.body.height, s.body.view) != (ev.height, ev.view):
            return "the messages are not for the same height and view"
        if not messages.verify(s, consortium.node_keys):
            return f"a signature by {ev.node} does not verify"
    if ev.first.body.block_hash == ev.second.body.block_hash:
        return "the messages name the same block"
    return None


class EvidenceBook:
    """The first signed vote per (node, kind, height, view); a conflicting second one is evidence."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str, int, int], Signed] = {}
        self._found: dict[tuple[str, str, int, int], Evidence] = {}  # one record per slot

    def observe(self, signed: Signed) -> Evidence | None:
        """Call with verified PRE-PREPARE/PREPARE/COMMIT messages only. Returns new evidence."""
        b = signed.body
        slot = (signed.sender, signed.kind, b.height, b.view)
        first = self._first.get(slot)
        if first is None:
            if len(self._first) >= MAX_TRACKED:
                del self._first[next(iter(self._first))]
            self._first[slot] = signed
            return None
        if first.body.block_hash == b.block_hash or slot in self._found or len(self._found) >= MAX_TRACKED:
            return None
        ev = Evidence(signed.sender, signed.kind, b.height, b.view, first, signed)
        self._found[slot] = ev
        return ev

    def prune(self, below_height: int) -> None:
        self._first = {k: v for k, v in self._first.items() if k[2] >= below_height}

    @property
    def found(self) -> list[Evidence]:
        return list(self._found.values())
