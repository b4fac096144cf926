"""Block headers, blocks and commit certificates, and their exact encodings (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .. import codec, crypto

HASH_BYTES = 32
ZERO_HASH = b"\x00" * HASH_BYTES

HEADER_KEYS = frozenset(
    {"chain_id", "height", "prev_hash", "timestamp_ms", "proposer", "tx_count", "tx_root",
     "receipts_root", "state_root"}
)

# A block carries at most this many transactions; a primary proposing more is misbehaving. The
# value bounds a block's encoding to a few MB and its execution to well under a view timeout.
MAX_BLOCK_TXS = 5000


class BlockFormatError(ValueError):
    """Bytes or a map that are not a well-formed header, block or certificate."""


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise BlockFormatError(what)


def _is_hash(value: Any) -> bool:
    return type(value) is bytes and len(value) == HASH_BYTES


def _is_uint(value: Any) -> bool:
    return type(value) is int and value >= 0


@dataclass(frozen=True)
class Header:
    """A block header: exactly the SPEC §5 keys. ``state_root`` is the state after the block."""

    chain_id: str
    height: int
    prev_hash: bytes
    timestamp_ms: int
    proposer: str
    tx_count: int
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes

    def to_map(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "prev_hash": self.prev_hash,
            "timestamp_ms": self.timestamp_ms,
            "proposer": self.proposer,
            "tx_count": self.tx_count,
            "tx_root": self.tx_root,
            "receipts_root": self.receipts_root,
            "state_root": self.state_root,
        }

    @cached_property
    def encoded(self) -> bytes:
        return codec.encode(self.to_map())

    @cached_property
    def hash(self) -> bytes:
        """Block hash = SHA-256 of the encoded header."""
        return codec.sha256(self.encoded)

    @classmethod
    def from_map(cls, m: Any) -> "Header":
        _need(type(m) is dict, "header is not a map")
        _need(set(m) == HEADER_KEYS, f"header keys must be exactly {sorted(HEADER_KEYS)}")
        _need(type(m["chain_id"]) is str and 0 < len(m["chain_id"]) <= 64, "header chain_id")
        _need(_is_uint(m["height"]), "header height")
        _need(_is_hash(m["prev_hash"]), "header prev_hash")
        _need(_is_uint(m["timestamp_ms"]), "header timestamp_ms")
        _need(type(m["proposer"]) is str and 0 < len(m["proposer"]) <= 64, "header proposer")
        _need(_is_uint(m["tx_count"]) and m["tx_count"] <= MAX_BLOCK_TXS, "header tx_count")
        for k in ("tx_root", "receipts_root", "state_root"):
            _need(_is_hash(m[k]), f"header {k}")
        return cls(**m)

    @classmethod
    def decode(cls, raw: bytes) -> "Header":
        try:
            m = codec.decode(raw)
        except codec.EncodingError as exc:
            raise BlockFormatError(f"header bytes: {exc}") from None
        return cls.from_map(m)


@dataclass(frozen=True)
class Block:
    """A header and the canonical bytes of its transactions, in block order."""

    header: Header
    txs: tuple[bytes, ...]

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def hash(self) -> bytes:
        return self.header.hash

    def to_map(self) -> dict[str, Any]:
        return {"header": self.header.to_map(), "txs": list(self.txs)}

    @cached_property
    def encoded(self) -> bytes:
        return codec.encode(self.to_map())

    @classmethod
    def from_map(cls, m: Any) -> "Block":
        _need(type(m) is dict and set(m) == {"header", "txs"}, "block must be {header, txs}")
        header = Header.from_map(m["header"])
        txs = m["txs"]
        _need(type(txs) is list and all(type(t) is bytes for t in txs), "block txs")
        _need(len(txs) == header.tx_count, "block tx_count does not match its transactions")
        return cls(header, tuple(txs))

    @classmethod
    def decode(cls, raw: bytes) -> "Block":
        try:
            m = codec.decode(raw)
        except codec.EncodingError as exc:
            raise BlockFormatError(f"block bytes: {exc}") from None
        return cls.from_map(m)


@dataclass(frozen=True)
class Vote:
    """One node's COMMIT signature inside a certificate."""

    node: str
    signature: bytes


@dataclass(frozen=True)
class CommitCertificate:
    """≥ 2f+1 COMMIT signatures by distinct consortium nodes for one block in one view."""

    height: int
    view: int
    block_hash: bytes
    votes: tuple[Vote, ...] = field(default_factory=tuple)

    def to_map(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "view": self.view,
            "block_hash": self.block_hash,
            "votes": [{"node": v.node, "signature": v.signature} for v in self.votes],
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_map())

    @classmethod
    def from_map(cls, m: Any) -> "CommitCertificate":
        _need(type(m) is dict and set(m) == {"height", "view", "block_hash", "votes"},
              "certificate must be {height, view, block_hash, votes}")
        _need(_is_uint(m["height"]) and _is_uint(m["view"]), "certificate height/view")
        _need(_is_hash(m["block_hash"]), "certificate block_hash")
        votes = m["votes"]
        _need(type(votes) is list and len(votes) <= 1024, "certificate votes")
        out = []
        for v in votes:
            _need(type(v) is dict and set(v) == {"node", "signature"}, "certificate vote")
            _need(type(v["node"]) is str and type(v["signature"]) is bytes, "certificate vote")
            out.append(Vote(v["node"], v["signature"]))
        return cls(m["height"], m["view"], m["block_hash"], tuple(out))

    @classmethod
    def decode(cls, raw: bytes) -> "CommitCertificate":
        try:
            m = codec.decode(raw)
        except codec.EncodingError as exc:
            raise BlockFormatError(f"certificate bytes: {exc}") from None
        return cls.from_map(m)


def sign_commit(key: crypto.SigningKey, chain_id: str, height: int, view: int, block_hash: bytes) -> bytes:
    return key.sign(crypto.commit_message(chain_id, height, view, block_hash))


def certificate_problem(
    cert: CommitCertificate,
    chain_id: str,
    node_keys: dict[str, bytes],
    f: int,
    *,
    expect_height: int | None = None,
    expect_hash: bytes | None = None,
) -> str | None:
    """Why ``cert`` does not prove its block committed, or None when it does.

    Counts only valid signatures by distinct consortium nodes; needs 2f+1 of them (PBFT §4.2: any
    two quorums of 2f+1 among 3f+1 intersect in an honest node).
    """
    if expect_height is not None and cert.height != expect_height:
        return f"certificate is for height {cert.height}, not {expect_height}"
    if expect_hash is not None and cert.block_hash != expect_hash:
        return "certificate is for a different block hash"
    message = crypto.commit_message(chain_id, cert.height, cert.view, cert.block_hash)
    seen: set[str] = set()
    for vote in cert.votes:
        if vote.node in seen:
            return f"certificate has two votes from node {vote.node}"
        seen.add(vote.node)
        key = node_keys.get(vote.node)
        if key is None:
            return f"certificate vote from {vote.node!r}, which is not a consortium node"
        if not crypto.verify(key, message, vote.signature):
            return f"certificate vote from {vote.node} has an invalid signature"
    if len(seen) < 2 * f + 1:
        return f"certificate has {len(seen)} valid votes; 2f+1 = {2 * f + 1} are needed"
    return None
