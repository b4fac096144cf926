"""Canonical MessagePack encoding, SHA-256 hashing and hex for JSON (SPEC §5).

Canonical means: msgpack with ``use_bin_type=True``, map keys sorted recursively, no floats,
integers in the signed 64-bit range. Two honest nodes that encode the same value always produce
the same bytes, so hashes and signatures over encodings are well defined.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# A canonical value nests maps and lists; anything deeper than this is an attack, not an invoice.
MAX_DEPTH = 32

# Upper bound on anything we are asked to decode (a block of transactions included). Keeps a
# hostile peer or client from making the unpacker allocate without limit.
MAX_DECODE_BYTES = 64 * 1024 * 1024

_sha256 = hashlib.sha256
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack


class EncodingError(ValueError):
    """A value cannot be encoded canonically, or bytes are not a canonical encoding."""


def _canonical(value: Any, depth: int) -> Any:
    """Return a copy of ``value`` whose maps are key-sorted, checking every type on the way.

    Scalars inside maps and lists are handled inline (no call per scalar): this runs for every
    transaction a node encodes, so the recursion is only per container."""
    if depth > MAX_DEPTH:
        raise EncodingError("value nests too deeply")
    t = type(value)
    if t is dict:
        items = []
        for k, v in value.items():
            if type(k) is not str:
                raise EncodingError(f"map key {k!r} is not a string")
            tv = type(v)
            if tv is str or tv is bytes or tv is bool or v is None:
                items.append((k, v))
            elif tv is int:
                if v < INT64_MIN or v > INT64_MAX:
                    raise EncodingError(f"integer {v} is outside the signed 64-bit range")
                items.append((k, v))
            else:
                items.append((k, _canonical(v, depth + 1)))
        items.sort(key=_first)
        return dict(items)
    if t is list or t is tuple:
        out = []
        for v in value:
            tv = type(v)
            if tv is str or tv is bytes or tv is bool or v is None:
                out.append(v)
            elif tv is int:
                if v < INT64_MIN or v > INT64_MAX:
                    raise EncodingError(f"integer {v} is outside the signed 64-bit range")
                out.append(v)
            else:
                out.append(_canonical(v, depth + 1))
        return out
    if t is str or t is bytes or t is bool or value is None:
        return value
    if t is int:
        if value < INT64_MIN or value > INT64_MAX:
            raise EncodingError(f"integer {value} is outside the signed 64-bit range")
        return value
    if t is bytearray or t is memoryview:
        return bytes(value)
    if t is float:
        raise EncodingError("floats are not allowed in canonical encoding")
    raise EncodingError(f"type {t.__name__} cannot be encoded canonically")


def _is_canonical_value(value: Any, depth: int) -> bool:
    """True iff a freshly decoded value is already canonical: maps in sorted key order (a decoded
    dict keeps the wire order), string keys, only canonical scalar types, 64-bit integers. Checks
    in place, without the copy ``_canonical`` makes; packing such a value gives its canonical
    encoding."""
    if depth > MAX_DEPTH:
        return False
    t = type(value)
    if t is dict:
        prev = None
        for k in value:
            if type(k) is not str or (prev is not None and k <= prev):
                return False
            prev = k
        items: Any = value.values()
    elif t is list:
        items = value
    else:
        items = None
    if items is not None:
        for v in items:  # scalars inline: no call per scalar
            tv = type(v)
            if tv is str or tv is bytes or tv is bool or v is None:
                continue
            if tv is int:
                if v < INT64_MIN or v > INT64_MAX:
                    return False
            elif not _is_canonical_value(v, depth + 1):
                return False
        return True
    if t is str or t is bytes or t is bool or value is None:
        return True
    if t is int:
        return INT64_MIN <= value <= INT64_MAX
    return False


def _first(pair: tuple[str, Any]) -> str:
    # Python orders str by code point, which is the order of their UTF-8 bytes.
    return pair[0]


def encode(value: Any) -> bytes:
    """Canonical MessagePack bytes of ``value`` (SPEC §5)."""
    return _packb(_canonical(value, 0))


def encode_sorted(value: dict[str, Any]) -> bytes:
    """Encode a map the caller has built canonically: keys already in sorted order at every level,
    only canonical types inside. Skips the recursive copy ``encode`` makes; ledger records use it
    on the hot path, and tests check it equals ``encode`` for every record shape."""
    return _packb(value)


def decode(raw: bytes, *, canonical: bool = True) -> Any:
    """Decode MessagePack bytes; with ``canonical`` (the default) refuse any non-canonical form.

    Refusing non-canonical bytes matters: a transaction or block has exactly one byte string, so
    its hash (tx_id, block hash) cannot be changed by re-encoding it.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise EncodingError("expected bytes")
    if len(raw) > MAX_DECODE_BYTES:
        raise EncodingError("encoding too large")
    value = unpack(raw)
    if canonical:
        if not _is_canonical_value(value, 0):
            try:  # say precisely what is wrong
                encode(value)
            except EncodingError as exc:
                raise EncodingError(f"not canonical: {exc}") from None
            raise EncodingError("not canonical: map keys not in sorted order")
        if _packb(value) != raw:
            raise EncodingError("not canonical: keys unsorted or integers not minimally encoded")
    return value


def unpack(raw: bytes) -> Any:
    """Decode MessagePack bytes (strings as str, arrays as lists, only str or bytes map keys),
    checking nothing about form: ``decode`` checks that next; a caller that checks the value's
    shape itself then asks ``packs_to``. Raises EncodingError on bytes that are not MessagePack."""
    try:
        return msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise EncodingError(f"not valid MessagePack: {exc.__class__.__name__}") from None


def packs_to(value: Any, raw: bytes) -> bool:
    """Whether packing ``value`` (already known canonical in shape: sorted string keys, canonical
    types) gives exactly ``raw``: then ``raw`` is its canonical encoding (minimal integer, length
    and header forms), as ``decode`` requires."""
    return _packb(value) == raw


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


def hash_value(value: Any) -> bytes:
    """SHA-256 of the canonical encoding of ``value``."""
    return _sha256(encode(value)).digest()


def to_json(value: Any) -> Any:
    """Turn a decoded value into JSON-ready form: bytes become lowercase hex, recursively."""
    t = type(value)
    if t is bytes:
        return value.hex()
    if t is dict:
        return {k: to_json(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [to_json(v) for v in value]
    return value


def from_hex(text: str, length: int | None = None) -> bytes:
    """Parse lowercase or uppercase hex, optionally of an exact byte length."""
    if not isinstance(text, str):
        raise EncodingError("expected a hex string")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise EncodingError(f"not hex: {text[:80]!r}") from None
    if length is not None and len(raw) != length:
        raise EncodingError(f"expected {length} bytes of hex, got {len(raw)}")
    return raw
