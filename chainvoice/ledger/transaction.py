"""The signed transaction envelope (SPEC §4): build and sign, decode and check, ``tx_id``.

Envelope ``{chain_id, kind, body, signer, nonce}``; signed message
``b"chainvoice-tx-v1" + canonical(envelope)``; wire form ``canonical(envelope + {signature})``;
``tx_id = SHA256(signed message)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .. import codec, crypto
from . import fastcheck, schema
from .codes import (
    BAD_ENCODING,
    BAD_ENVELOPE,
    BAD_SIGNATURE,
    TOO_LARGE,
    WRONG_CHAIN,
    MalformedTransaction,
)

ENVELOPE_KEYS = ("body", "chain_id", "kind", "nonce", "signer")  # canonical (sorted) order
WIRE_KEYS = frozenset(ENVELOPE_KEYS + ("signature",))
WIRE_ORDER = ("body", "chain_id", "kind", "nonce", "signature", "signer")  # the wire map's, canonical
NONCE_BYTES = 16
MAX_CHAIN_ID = 64

# The largest transaction a node accepts: an issue with MAX_LINES long lines fits in ~70 KB.
MAX_TX_BYTES = 128 * 1024

_sha256 = hashlib.sha256

# In the canonical wire map the last two entries are always "signature" (bin 64) then "signer"
# (bin 32): keys sort body < chain_id < kind < nonce < signature < signer. So the canonical
# envelope without the signature is the wire bytes with that fixed-size entry cut out and the
# map header decremented; this avoids re-encoding every transaction a node receives.
_SIGNER_ENTRY = 1 + 6 + 2 + 32  # fixstr "signer", bin8 header, 32 bytes
_SIGNATURE_ENTRY = 1 + 9 + 2 + 64  # fixstr "signature", bin8 header, 64 bytes
_SIGNATURE_PREFIX = b"\xa9signature\xc4\x40"


@dataclass(frozen=True, slots=True)
class Transaction:
    chain_id: str
    kind: str
    body: dict[str, Any]
    signer: bytes
    nonce: bytes
    signature: bytes
    raw: bytes  # canonical wire bytes, exactly as they sit in a block
    tx_id: bytes

    def envelope(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "kind": self.kind, "body": self.body,
                "signer": self.signer, "nonce": self.nonce}

    @property
    def number(self) -> str | None:
        """The invoice this transaction names, if any."""
        n = self.body.get("number")
        return n if type(n) is str else None


def sign(key: crypto.SigningKey, chain_id: str, kind: str, body: dict[str, Any], nonce: bytes) -> Transaction:
    """Build, check and sign a transaction. ``nonce`` (16 bytes) comes from the caller, so this
    function stays deterministic; shells pass ``os.urandom(16)``."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError("nonce must be 16 bytes")
    envelope = {"chain_id": chain_id, "kind": kind, "body": body, "signer": key.public_key, "nonce": nonce}
    _check_envelope(envelope)
    schema.validate(kind, envelope["body"])
    message = crypto.tx_signing_message(codec.encode(envelope))
    signature = key.sign(message)
    raw = codec.encode({**envelope, "signature": signature})
    return Transaction(chain_id, kind, codec.decode(raw)["body"], key.public_key, nonce, signature,
                       raw, _sha256(message).digest())


def decode(raw: bytes, *, chain_id: str | None = None, check_signature: bool = True) -> Transaction:
    """Parse wire bytes into a checked Transaction or raise MalformedTransaction with a code.

    Order: size, canonical encoding, envelope shape, chain, body schema, signature — cheapest
    first, and the Ed25519 check (the dominant cost) only for transactions that could be valid.
    """
    if type(raw) is not bytes:
        raw = bytes(raw)
    if len(raw) > MAX_TX_BYTES:
        raise MalformedTransaction(TOO_LARGE, f"transaction is {len(raw)} bytes; the limit is {MAX_TX_BYTES}")
    wire = _well_formed(raw, chain_id)
    if wire is None:
        wire = _checked(raw, chain_id)
    signature = wire["signature"]
    message = crypto.tx_signing_message(_envelope_bytes(raw))
    if check_signature and not crypto.verify_transaction(wire["signer"], message, signature):
        raise MalformedTransaction(BAD_SIGNATURE, "signature does not verify for the signer's key")
    return Transaction(wire["chain_id"], wire["kind"], wire["body"], wire["signer"], wire["nonce"],
                       signature, raw, _sha256(message).digest())


def _well_formed(raw: bytes, chain_id: str | None) -> dict[str, Any] | None:
    """The wire map of a transaction that is canonical, well-formed and for ``chain_id``, checked
    in one pass (``fastcheck`` for the body); None if anything is off or unsure: ``_checked`` then
    finds what, with the error a client is told. Everything accepted here ``_checked`` accepts
    (tests check both on generated and mutated transactions)."""
    try:
        wire = codec.unpack(raw)
    except codec.EncodingError:
        return None
    if type(wire) is not dict or tuple(wire) != WIRE_ORDER:
        return None
    body, cid, kind, nonce, signature, signer = wire.values()
    if (type(cid) is not str or not 0 < len(cid) <= MAX_CHAIN_ID or (chain_id is not None and cid != chain_id)
            or type(nonce) is not bytes or len(nonce) != NONCE_BYTES
            or type(signature) is not bytes or len(signature) != crypto.SIGNATURE_BYTES
            or type(signer) is not bytes or len(signer) != crypto.PUBLIC_KEY_BYTES
            or not fastcheck.accepts(kind, body) or not codec.packs_to(wire, raw)):
        return None
    return wire


def _checked(raw: bytes, chain_id: str | None) -> dict[str, Any]:
    """The wire map of a transaction after every check in order — size aside: canonical encoding,
    envelope shape, chain, body schema — or MalformedTransaction with the first problem's code."""
    try:
        wire = codec.decode(raw)
    except codec.EncodingError as exc:
        raise MalformedTransaction(BAD_ENCODING, str(exc)) from None
    if type(wire) is not dict or wire.keys() != WIRE_KEYS:
        raise MalformedTransaction(BAD_ENVELOPE, f"a transaction is a map with exactly the keys {sorted(WIRE_KEYS)}")
    _check_envelope(wire)
    signature = wire["signature"]
    if type(signature) is not bytes or len(signature) != crypto.SIGNATURE_BYTES:
        raise MalformedTransaction(BAD_ENVELOPE, "signature must be 64 bytes")
    if chain_id is not None and wire["chain_id"] != chain_id:
        raise MalformedTransaction(WRONG_CHAIN, f"transaction is for chain {wire['chain_id']!r}, this is {chain_id!r}")
    schema.validate(wire["kind"], wire["body"])
    return wire


def _envelope_bytes(raw: bytes) -> bytes:
    """Canonical envelope bytes (without the signature) cut from canonical wire bytes."""
    cut = len(raw) - _SIGNER_ENTRY - _SIGNATURE_ENTRY
    # Both assertions hold for every canonical wire map with the checked key set and sizes.
    assert raw[0] == 0x86, "a canonical wire map has six entries"
    assert raw[cut:cut + len(_SIGNATURE_PREFIX)] == _SIGNATURE_PREFIX
    return b"\x85" + raw[1:cut] + raw[cut + _SIGNATURE_ENTRY:]


def _check_envelope(m: dict[str, Any]) -> None:
    cid = m["chain_id"]
    if type(cid) is not str or not 0 < len(cid) <= MAX_CHAIN_ID:
        raise MalformedTransaction(BAD_ENVELOPE, f"chain_id must be a string of 1..{MAX_CHAIN_ID} characters")
    if type(m["kind"]) is not str:
        raise MalformedTransaction(BAD_ENVELOPE, "kind must be a string")
    if type(m["body"]) is not dict:
        raise MalformedTransaction(BAD_ENVELOPE, "body must be a map")
    if type(m["signer"]) is not bytes or len(m["signer"]) != crypto.PUBLIC_KEY_BYTES:
        raise MalformedTransaction(BAD_ENVELOPE, "signer must be a 32-byte public key")
    if type(m["nonce"]) is not bytes or len(m["nonce"]) != NONCE_BYTES:
        raise MalformedTransaction(BAD_ENVELOPE, "nonce must be 16 bytes")
