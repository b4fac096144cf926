"""Consensus messages: what they carry, their canonical signed encoding, decoding and verification.

Wire form of every message: ``canonical([payload, signature, attachment])`` where

* ``payload`` = ``canonical({type, chain_id, sender, body})``;
* ``signature`` = Ed25519 by the sender's node key over ``b"chainvoice-consensus-v1" + payload``,
  except COMMIT, whose signature is exactly the SPEC §5 commit vote
  (``msgpack([“chainvoice-commit-v1”, chain_id, height, view, block_hash])``) so that 2f+1
  COMMIT messages are the block's CommitCertificate as they stand;
* ``attachment`` = the canonical bytes of a block, or ``b""``. As in PBFT §4.2 (the request rides
  beside the signed ``<PRE-PREPARE, v, n, d>``) the block is not signed: it is authenticated by
  its hash, which the signed body names.

Messages embedded in others (the pre-prepare and prepares of a prepared proof inside a
VIEW-CHANGE, the VIEW-CHANGEs inside a NEW-VIEW) travel as ``[payload, signature]`` and are
verified on their own, so they can be forwarded by anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256 as _sha256
from typing import Any, Callable, ClassVar, Union

from .. import codec, crypto
from ..chain.block import Block, BlockFormatError, CommitCertificate

DOMAIN = b"chainvoice-consensus-v1"

PRE_PREPARE = "pre-prepare"
PREPARE = "prepare"
COMMIT = "commit"
VIEW_CHANGE = "view-change"
NEW_VIEW = "new-view"
STATUS = "status"
BLOCK_REQUEST = "block-request"
BLOCKS = "blocks"
TXS = "txs"

# Bounds on lists inside a message, checked before anything is built from them. A consortium has
# a handful of nodes; these are generous and still keep a hostile message's cost bounded.
MAX_LIST = 1024
MAX_TXS_PER_MESSAGE = 10_000
MAX_NODE_ID = 64
# NEW-VIEW > VIEW-CHANGE > pre-prepare/prepare: nothing nests deeper.
MAX_NESTING = 2

# Positive signature checks remembered (a pure function of its inputs, so remembering results
# never changes a decision): duplicates, forwarded copies and, in the simulator, the same
# broadcast verified by every replica cost one Ed25519 check instead of many. An entry is keyed
# by the message's SHA-256, not the message: a gossip batch or a pre-prepare is ~10 KB, and a
# node at 1,000 tx/s kept ~120 MB more of them after 5 minutes than after 90 s (tracemalloc)
# when the message itself was the key.
VERIFY_CACHE_SIZE = 1 << 14
_verified: dict[tuple[bytes, bytes, bytes], bool] = {}
# Decoded messages remembered by their bytes, for the same reason (decoding is a pure function
# and messages are immutable values). Only small messages, so the cache stays a few MB at most.
DECODE_CACHE_SIZE = 2048
DECODE_CACHE_MAX_BYTES = 16 * 1024
_decoded: dict[tuple[str, bytes], "Signed"] = {}


class MessageError(ValueError):
    """Bytes that are not a well-formed consensus message of this chain."""


# -- bodies -------------------------------------------------------------------------------------


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise MessageError(what)


def _uint(m: dict[str, Any], key: str) -> int:
    v = m.get(key)
    _need(type(v) is int and 0 <= v <= codec.INT64_MAX, f"{key} must be a non-negative integer")
    return v  # type: ignore[return-value]


def _hash(m: dict[str, Any], key: str) -> bytes:
    v = m.get(key)
    _need(type(v) is bytes and len(v) == 32, f"{key} must be 32 bytes")
    return v  # type: ignore[return-value]


def _keys(m: Any, keys: set[str], what: str) -> dict[str, Any]:
    _need(type(m) is dict and set(m) == keys, f"{what} must be a map with keys {sorted(keys)}")
    return m


def _list(v: Any, what: str, limit: int = MAX_LIST) -> list[Any]:
    _need(type(v) is list and len(v) <= limit, f"{what} must be a list of at most {limit}")
    return v


@dataclass(frozen=True)
class _Vote:
    """PRE-PREPARE, PREPARE and COMMIT name a block by (view, height, block hash) (PBFT §4.2)."""

    TYPE: ClassVar[str] = ""
    view: int
    height: int
    block_hash: bytes

    def to_map(self) -> dict[str, Any]:
        return {"view": self.view, "height": self.height, "block_hash": self.block_hash}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> Any:
        m = _keys(m, {"view", "height", "block_hash"}, cls.TYPE)
        return cls(_uint(m, "view"), _uint(m, "height"), _hash(m, "block_hash"))


@dataclass(frozen=True)
class PrePrepare(_Vote):
    """The primary of ``view`` proposes the block ``block_hash`` at ``height`` (block attached)."""

    TYPE: ClassVar[str] = PRE_PREPARE


@dataclass(frozen=True)
class Prepare(_Vote):
    """A backup re-executed the proposed block and agrees to it in ``view``."""

    TYPE: ClassVar[str] = PREPARE


@dataclass(frozen=True)
class CommitVote(_Vote):
    """The sender is prepared; its signature is the SPEC §5 commit vote."""

    TYPE: ClassVar[str] = COMMIT


@dataclass(frozen=True)
class PreparedProof:
    """PBFT's prepared certificate: a pre-prepare and 2f matching prepares from other replicas."""

    pre_prepare: "Signed"
    prepares: tuple["Signed", ...]

    @property
    def view(self) -> int:
        return self.pre_prepare.body.view

    @property
    def height(self) -> int:
        return self.pre_prepare.body.height

    @property
    def block_hash(self) -> bytes:
        return self.pre_prepare.body.block_hash

    def to_map(self) -> dict[str, Any]:
        return {"pre_prepare": self.pre_prepare.embedded(), "prepares": [p.embedded() for p in self.prepares]}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> "PreparedProof":
        m = _keys(m, {"pre_prepare", "prepares"}, "prepared proof")
        pp = decode_embedded(m["pre_prepare"], chain_id, depth + 1)
        _need(pp.kind == PRE_PREPARE, "a prepared proof starts with a pre-prepare")
        prepares = tuple(decode_embedded(x, chain_id, depth + 1) for x in _list(m["prepares"], "prepares"))
        _need(all(p.kind == PREPARE for p in prepares), "a prepared proof's votes are prepares")
        return cls(pp, prepares)


def _cert_to_map(cert: CommitCertificate | None) -> Any:
    return None if cert is None else cert.to_map()


def _cert_from_map(v: Any) -> CommitCertificate | None:
    if v is None:
        return None
    try:
        return CommitCertificate.from_map(v)
    except BlockFormatError as exc:
        raise MessageError(str(exc)) from None


@dataclass(frozen=True)
class ViewChange:
    """VIEW-CHANGE (PBFT §4.4): the sender moves to ``view``. It proves its committed height (the
    certificate of its tip; none for genesis) and carries its prepared proof for the next height
    from the highest view it prepared in, if any (the prepared block attached)."""

    TYPE: ClassVar[str] = VIEW_CHANGE
    view: int
    committed_height: int
    certificate: CommitCertificate | None
    prepared: PreparedProof | None

    def to_map(self) -> dict[str, Any]:
        return {"view": self.view, "committed_height": self.committed_height,
                "certificate": _cert_to_map(self.certificate),
                "prepared": None if self.prepared is None else self.prepared.to_map()}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> "ViewChange":
        m = _keys(m, {"view", "committed_height", "certificate", "prepared"}, VIEW_CHANGE)
        prepared = None if m["prepared"] is None else PreparedProof.from_map(m["prepared"], chain_id, depth)
        return cls(_uint(m, "view"), _uint(m, "committed_height"), _cert_from_map(m["certificate"]), prepared)


@dataclass(frozen=True)
class NewView:
    """NEW-VIEW (PBFT §4.4): the primary of ``view`` shows 2f+1 VIEW-CHANGEs and the pre-prepare
    they dictate: the prepared block of the highest view for the next height (attached), or none
    (the primary then proposes a fresh block in the ordinary way)."""

    TYPE: ClassVar[str] = NEW_VIEW
    view: int
    view_changes: tuple["Signed", ...]
    pre_prepare: "Signed | None"

    def to_map(self) -> dict[str, Any]:
        return {"view": self.view, "view_changes": [s.embedded() for s in self.view_changes],
                "pre_prepare": None if self.pre_prepare is None else self.pre_prepare.embedded()}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> "NewView":
        m = _keys(m, {"view", "view_changes", "pre_prepare"}, NEW_VIEW)
        vcs = tuple(decode_embedded(x, chain_id, depth + 1) for x in _list(m["view_changes"], "view_changes"))
        _need(all(s.kind == VIEW_CHANGE for s in vcs), "a NEW-VIEW carries VIEW-CHANGEs")
        pp = None if m["pre_prepare"] is None else decode_embedded(m["pre_prepare"], chain_id, depth + 1)
        _need(pp is None or pp.kind == PRE_PREPARE, "a NEW-VIEW's proposal is a pre-prepare")
        return cls(_uint(m, "view"), vcs, pp)


@dataclass(frozen=True)
class Status:
    """The sender's committed height with its certificate: lets a lagging peer know what to fetch."""

    TYPE: ClassVar[str] = STATUS
    height: int
    certificate: CommitCertificate | None

    def to_map(self) -> dict[str, Any]:
        return {"height": self.height, "certificate": _cert_to_map(self.certificate)}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> "Status":
        m = _keys(m, {"height", "certificate"}, STATUS)
        return cls(_uint(m, "height"), _cert_from_map(m["certificate"]))


@dataclass(frozen=True)
class BlockRequest:
    """Ask for certified blocks ``start``, ``start+1``, ... (at most ``count``)."""

    TYPE: ClassVar[str] = BLOCK_REQUEST
    start: int
    count: int

    def to_map(self) -> dict[str, Any]:
        return {"start": self.start, "count": self.count}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> "BlockRequest":
        m = _keys(m, {"start", "count"}, BLOCK_REQUEST)
        return cls(_uint(m, "start"), _uint(m, "count"))


@dataclass(frozen=True)
class Blocks:
    """Committed blocks with their certificates, in height order: ``(block bytes, cert bytes)``.
    Each is checked by the receiver with ``chain.check_certified``; the sender is not trusted."""

    TYPE: ClassVar[str] = BLOCKS
    entries: tuple[tuple[bytes, bytes], ...]

    def to_map(self) -> dict[str, Any]:
        return {"entries": [[b, c] for b, c in self.entries]}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> "Blocks":
        m = _keys(m, {"entries"}, BLOCKS)
        entries = []
        for e in _list(m["entries"], "entries"):
            _need(type(e) is list and len(e) == 2 and type(e[0]) is bytes and type(e[1]) is bytes,
                  "a block entry is [block bytes, certificate bytes]")
            entries.append((e[0], e[1]))
        return cls(tuple(entries))


@dataclass(frozen=True)
class TxBatch:
    """Client transactions gossiped so that any primary can include them (each is self-signed)."""

    TYPE: ClassVar[str] = TXS
    txs: tuple[bytes, ...]

    def to_map(self) -> dict[str, Any]:
        return {"txs": list(self.txs)}

    @classmethod
    def from_map(cls, m: Any, chain_id: str, depth: int) -> "TxBatch":
        m = _keys(m, {"txs"}, TXS)
        txs = _list(m["txs"], "txs", MAX_TXS_PER_MESSAGE)
        _need(all(type(t) is bytes for t in txs), "txs are byte strings")
        return cls(tuple(txs))


Body = Union[PrePrepare, Prepare, CommitVote, ViewChange, NewView, Status, BlockRequest, Blocks, TxBatch]

BODY_TYPES: dict[str, Any] = {cls.TYPE: cls for cls in
                              (PrePrepare, Prepare, CommitVote, ViewChange, NewView, Status, BlockRequest, Blocks, TxBatch)}
# Only these may carry a block beside the signed payload.
CARRIES_BLOCK = frozenset({PRE_PREPARE, VIEW_CHANGE, NEW_VIEW})
VOTE_KINDS = (PRE_PREPARE, PREPARE, COMMIT)


# -- the signed envelope -----------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """A signed consensus message as received or sent (``block``: the unsigned attachment)."""

    body: Any  # one of the Body classes
    chain_id: str
    sender: str
    payload: bytes
    signature: bytes
    block: Block | None = None

    @property
    def kind(self) -> str:
        return self.body.TYPE

    def signing_message(self) -> bytes:
        return signing_message(self.body, self.chain_id, self.payload)

    def encode(self) -> bytes:
        return codec.encode([self.payload, self.signature, b"" if self.block is None else self.block.encoded])

    def embedded(self) -> list[bytes]:
        return [self.payload, self.signature]

    def with_block(self, block: Block | None) -> "Signed":
        return Signed(self.body, self.chain_id, self.sender, self.payload, self.signature, block)


@dataclass(frozen=True)
class Unsigned:
    """A message ready to be signed: ``message`` is exactly what the sender's key signs."""

    body: Any
    chain_id: str
    sender: str
    payload: bytes
    message: bytes

    def signed(self, signature: bytes, block: Block | None = None) -> Signed:
        return Signed(self.body, self.chain_id, self.sender, self.payload, signature, block)


def prepare(body: Any, chain_id: str, sender: str) -> Unsigned:
    """Encode ``body`` as ``sender``'s message; the caller (the safety rules) signs ``.message``."""
    payload = codec.encode({"type": body.TYPE, "chain_id": chain_id, "sender": sender, "body": body.to_map()})
    return Unsigned(body, chain_id, sender, payload, signing_message(body, chain_id, payload))


def seal(body: Any, chain_id: str, sender: str, sign: Callable[[bytes], bytes], block: Block | None = None) -> Signed:
    """Encode and sign in one step (tests and the simulator's Byzantine nodes, which have no
    safety rules to obey)."""
    u = prepare(body, chain_id, sender)
    return u.signed(sign(u.message), block)


def signing_message(body: Any, chain_id: str, payload: bytes) -> bytes:
    if body.TYPE == COMMIT:
        return crypto.commit_message(chain_id, body.height, body.view, body.block_hash)
    return DOMAIN + payload


# -- decoding and verification -------------------------------------------------------------------


def decode(raw: bytes, chain_id: str) -> Signed:
    """Parse a message of chain ``chain_id`` (structure only; see ``verify``) or raise MessageError."""
    small = type(raw) is bytes and len(raw) <= DECODE_CACHE_MAX_BYTES
    if small:
        hit = _decoded.get((chain_id, raw))
        if hit is not None:
            return hit
    signed = _decode(raw, chain_id)
    if small and DECODE_CACHE_SIZE:
        if len(_decoded) >= DECODE_CACHE_SIZE:
            _decoded.clear()
        _decoded[(chain_id, raw)] = signed
    return signed


def _decode(raw: bytes, chain_id: str) -> Signed:
    try:
        outer = codec.decode(raw)
    except codec.EncodingError as exc:
        raise MessageError(f"message bytes: {exc}") from None
    _need(type(outer) is list and len(outer) == 3 and all(type(x) is bytes for x in outer),
          "a message is [payload, signature, attachment]")
    signed = _from_parts(outer[0], outer[1], chain_id, 0)
    if outer[2]:
        _need(signed.kind in CARRIES_BLOCK, f"a {signed.kind} message carries no block")
        try:
            block = Block.decode(outer[2])
        except BlockFormatError as exc:
            raise MessageError(f"attached block: {exc}") from None
        signed = signed.with_block(block)
    return signed


def decode_embedded(item: Any, chain_id: str, depth: int) -> Signed:
    _need(depth <= MAX_NESTING, "messages nest too deeply")
    _need(type(item) is list and len(item) == 2 and type(item[0]) is bytes and type(item[1]) is bytes,
          "an embedded message is [payload, signature]")
    return _from_parts(item[0], item[1], chain_id, depth)


def _from_parts(payload: bytes, signature: bytes, chain_id: str, depth: int) -> Signed:
    _need(len(signature) == crypto.SIGNATURE_BYTES, "signature must be 64 bytes")
    try:
        m = codec.decode(payload)
    except codec.EncodingError as exc:
        raise MessageError(f"payload: {exc}") from None
    m = _keys(m, {"type", "chain_id", "sender", "body"}, "payload")
    _need(m["chain_id"] == chain_id, "message is for another chain")
    sender = m["sender"]
    _need(type(sender) is str and 0 < len(sender) <= MAX_NODE_ID, "sender must be a node id")
    cls = BODY_TYPES.get(m["type"]) if type(m["type"]) is str else None
    _need(cls is not None, "unknown message type")
    body = cls.from_map(m["body"], chain_id, depth)
    return Signed(body, chain_id, sender, payload, signature)


def verify(signed: Signed, node_keys: dict[str, bytes]) -> bool:
    """True when ``signed`` carries a valid signature by the node it names as sender."""
    key = node_keys.get(signed.sender)
    return key is not None and verify_signature(key, signed.signing_message(), signed.signature)


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    k = (public_key, signature, _sha256(message).digest())
    if k in _verified:
        return True
    if not crypto.verify(public_key, message, signature):
        return False
    if len(_verified) >= VERIFY_CACHE_SIZE:
        _verified.clear()
    _verified[k] = True
    return True
