"""Proof bundles (SPEC §5): "invoice N is in state S as of height H", checkable by anyone who
holds the consortium's node keys and f, without trusting the node that produced the bundle.

Bundle (JSON, bytes as lowercase hex)::

    {number, value, state, siblings, header, header_bytes, certificate}

``value`` is the canonical encoding of the invoice record (the state-tree leaf's value), ``state``
its JSON view, ``siblings`` the state-tree path (top-down), ``header_bytes`` the encoded header
whose SHA-256 is the block hash, ``certificate`` ≥ 2f+1 commit votes over that hash. For an
invoice that does not exist, ``value`` and ``state`` are null and ``other_leaf`` names the leaf
found in its place (if any): an absence proof, which is how a verifier exposes a fake invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .. import codec, smt
from ..ledger.records import invoice_key
from .block import BlockFormatError, CommitCertificate, Header, certificate_problem
from .consortium import Consortium

BUNDLE_KEYS = ("number", "value", "state", "siblings", "header", "header_bytes", "certificate")


class ProofUnavailable(LookupError):
    """The store cannot produce a proof at that height (missing block, certificate or nodes)."""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # why verification failed, or a one-line summary of what was proven
    number: str = ""
    height: int = -1
    exists: bool = False
    status: str = ""
    state: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "number": self.number, "height": self.height,
                "exists": self.exists, "status": self.status}


# -- building -----------------------------------------------------------------------------------

def build_bundle(
    number: str,
    header: Header,
    certificate: CommitCertificate | None,
    node: Callable[[bytes, bytes], bytes | None],
    value_at: Callable[[bytes, bytes, bytes], bytes | None],
) -> dict[str, Any]:
    """A bundle for ``number`` at the block ``header`` (whose ``certificate`` commits it).
    ``node(hash, version)`` reads a tree node, ``value_at(key, value_hash, version)`` the value
    its leaf (stored at that version) commits to."""
    key = invoice_key(number)
    tree = smt.SparseMerkleTree(_ReadOnlyNodes(node))
    try:
        proof = tree.prove(header.state_root, key, header.height)
        leaf = tree.find(header.state_root, key, header.height)
    except smt.MissingNodeError as exc:
        raise ProofUnavailable(f"state at height {header.height} is not available: {exc}") from None
    value = None
    if leaf is not None:
        value = value_at(key, *leaf)
        if value is None:
            raise ProofUnavailable(f"value of invoice {number} at height {header.height} is not available")
    bundle: dict[str, Any] = {
        "number": number,
        "value": None if value is None else value.hex(),
        "state": None if value is None else codec.to_json(codec.decode(value)),
        "siblings": [s.hex() for s in proof.siblings],
        "header": codec.to_json(header.to_map()),
        "header_bytes": header.encoded.hex(),
        "certificate": None if certificate is None else codec.to_json(certificate.to_map()),
    }
    if value is None:
        bundle["other_leaf"] = None if proof.other_leaf is None else {
            "key": proof.other_leaf[0].hex(), "value_hash": proof.other_leaf[1].hex()}
    return bundle


def build_consortium_proof(
    genesis: Header,
    node: Callable[[bytes, bytes], bytes | None],
    value_at: Callable[[bytes, bytes, bytes], bytes | None],
) -> dict[str, Any]:
    """The consortium as committed in the genesis state, provable against the genesis hash alone:
    ``{header_bytes, value, siblings}``. A verifier who pinned the genesis hash (from the tax
    authority, out of band) learns the node keys and f from any node without trusting it."""
    from .genesis import CONSORTIUM_KEY  # genesis imports this module's neighbours, not this one

    tree = smt.SparseMerkleTree(_ReadOnlyNodes(node))
    try:
        proof = tree.prove(genesis.state_root, CONSORTIUM_KEY)
        leaf = tree.find(genesis.state_root, CONSORTIUM_KEY)
    except smt.MissingNodeError as exc:
        raise ProofUnavailable(f"genesis state is not available: {exc}") from None
    value = None if leaf is None else value_at(CONSORTIUM_KEY, *leaf)
    if value is None:
        raise ProofUnavailable("the genesis state holds no consortium")
    return {"header_bytes": genesis.encoded.hex(), "value": value.hex(), "siblings": [x.hex() for x in proof.siblings]}


def verify_consortium_proof(proof: Any, genesis_hash: bytes) -> Consortium:
    """The consortium proven by ``proof`` against ``genesis_hash``, or ValueError saying why not."""
    from .genesis import CONSORTIUM_KEY

    try:
        header_bytes = codec.from_hex(proof["header_bytes"])
        value = codec.from_hex(proof["value"])
        siblings = tuple(codec.from_hex(x, 32) for x in proof["siblings"])
        header = Header.decode(header_bytes)
    except (KeyError, TypeError, codec.EncodingError, BlockFormatError) as exc:
        raise ValueError(f"malformed consortium proof: {exc}") from None
    if codec.sha256(header_bytes) != genesis_hash:
        raise ValueError("the genesis header does not hash to the pinned genesis hash")
    if header.height != 0:
        raise ValueError("the consortium proof is not against block 0")
    if not smt.verify_inclusion(header.state_root, CONSORTIUM_KEY, codec.sha256(value), smt.Proof(siblings, None)):
        raise ValueError("the consortium value does not fold to the genesis state root")
    return Consortium.from_map(codec.decode(value))


class _ReadOnlyNodes:
    __slots__ = ("get",)

    def __init__(self, node: Callable[[bytes, bytes], bytes | None]) -> None:
        self.get = node

    def put_many(self, nodes: Any, at: bytes) -> None:  # pragma: no cover - proofs never write
        raise AssertionError("read-only")


# -- verifying ----------------------------------------------------------------------------------

def verify_bundle(
    bundle: Any,
    consortium: Consortium,
    *,
    genesis_hash: bytes | None = None,
    number: str | None = None,
) -> Verdict:
    """Check a bundle using only the consortium's keys and f (and the genesis hash for height 0).

    Every claim is recomputed: the header from its bytes, the block hash from the header, the
    commit votes over that hash, the state root from the value and the siblings. Returns a
    Verdict whose ``reason`` says exactly what failed.
    """
    try:
        return _verify(bundle, consortium, genesis_hash, number)
    except (KeyError, TypeError, ValueError, AttributeError, codec.EncodingError, BlockFormatError,
            smt.ProofFormatError) as exc:
        return Verdict(False, f"malformed bundle: {exc.__class__.__name__}: {exc}")


def _fail(reason: str, **kw: Any) -> Verdict:
    return Verdict(False, reason, **kw)


def _verify(bundle: Any, consortium: Consortium, genesis_hash: bytes | None, number: str | None) -> Verdict:
    if not isinstance(bundle, dict):
        return _fail("a proof bundle is a JSON object")
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        return _fail(f"bundle lacks {', '.join(missing)}")
    claimed = bundle["number"]
    if not isinstance(claimed, str):
        return _fail("bundle number is not a string")
    if number is not None and claimed != number:
        return _fail(f"bundle is for invoice {claimed}, not {number}")

    header_bytes = codec.from_hex(bundle["header_bytes"])
    header = Header.decode(header_bytes)
    if codec.to_json(header.to_map()) != bundle["header"]:
        return _fail("header does not match header_bytes", number=claimed)
    if header.chain_id != consortium.chain_id:
        return _fail(f"header is for chain {header.chain_id!r}, the consortium's is {consortium.chain_id!r}", number=claimed)
    block_hash = codec.sha256(header_bytes)

    cert_json = bundle["certificate"]
    if header.height == 0:
        if genesis_hash is None or block_hash != genesis_hash:
            return _fail("height 0 is trusted only against the genesis file's block hash", number=claimed)
    else:
        if cert_json is None:
            return _fail("bundle has no commit certificate", number=claimed, height=header.height)
        certificate = CommitCertificate.from_map({
            "height": cert_json["height"], "view": cert_json["view"],
            "block_hash": codec.from_hex(cert_json["block_hash"], 32),
            "votes": [{"node": v["node"], "signature": codec.from_hex(v["signature"], 64)} for v in cert_json["votes"]],
        })
        problem = certificate_problem(certificate, consortium.chain_id, consortium.node_keys, consortium.f,
                                      expect_height=header.height, expect_hash=block_hash)
        if problem:
            return _fail(f"certificate: {problem}", number=claimed, height=header.height)

    key = invoice_key(claimed)
    siblings = [codec.from_hex(s, 32) for s in bundle["siblings"]]
    root = header.state_root
    if bundle["value"] is None:
        other = bundle.get("other_leaf")
        other_leaf = None if other is None else (codec.from_hex(other["key"], 32), codec.from_hex(other["value_hash"], 32))
        proof = smt.Proof(tuple(siblings), other_leaf)
        if bundle["state"] is not None:
            return _fail("bundle has a state but no value", number=claimed, height=header.height)
        if not smt.verify_absence(root, key, proof):
            return _fail("absence proof does not fold to the header's state root", number=claimed, height=header.height)
        return Verdict(True, f"invoice {claimed} does not exist as of height {header.height}",
                       number=claimed, height=header.height, exists=False)

    value = codec.from_hex(bundle["value"])
    if not smt.verify_inclusion(root, key, codec.sha256(value), smt.Proof(tuple(siblings), None)):
        return _fail("state proof does not fold to the header's state root", number=claimed, height=header.height)
    record = codec.decode(value)
    if not isinstance(record, dict) or record.get("number") != claimed:
        return _fail("proven value is not the record of this invoice", number=claimed, height=header.height)
    if codec.to_json(record) != bundle["state"]:
        return _fail("the bundle's state does not match its proven value", number=claimed, height=header.height)
    status = record.get("status", "")
    flagged = " (flagged)" if record.get("flagged") else ""
    return Verdict(True, f"invoice {claimed} is {status}{flagged} as of height {header.height}", number=claimed,
                   height=header.height, exists=True, status=status, state=codec.to_json(record))
