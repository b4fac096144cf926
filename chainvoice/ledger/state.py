"""Typed access to ledger state over any key-value reader, collecting one block's writes.

The reader is whatever holds committed state (an in-memory map in tests, the sparse Merkle tree
and LevelDB in a node); the ledger never sees which. Records read are cached and written back
once per block, encoded, so a block costs one encode per touched record, not per transaction.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from .. import codec
from .records import Invoice, Member, invoice_key, member_key, payment_ref_key, quota_key, tax_id_key


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class MemoryState:
    """Committed state in a dict: key -> canonical value bytes."""

    def __init__(self, values: dict[bytes, bytes] | None = None) -> None:
        self.values: dict[bytes, bytes] = dict(values or {})

    def get(self, key: bytes) -> bytes | None:
        return self.values.get(key)

    def apply(self, writes: dict[bytes, bytes]) -> None:
        self.values.update(writes)


_MISSING = object()


class DecodedValues:
    """Canonical value bytes -> the map they decode to, for the values recent blocks wrote: the
    next transaction touching an invoice (a transfer or claim soon after its issue) reads it back
    without decoding it again (an invoice's decode is several µs, per transaction, on every node).

    Keyed by the bytes themselves, so it is a pure memo: never stale, whatever the reader returns.
    The maps are shared, never changed: records copy their top level (``from_map``), and no rule
    changes a nested list or map in place. Bounded: two generations of ``limit`` entries (a full
    generation becomes the old one and the previous old one is dropped)."""

    __slots__ = ("data", "old", "limit")

    def __init__(self, limit: int = 8_000) -> None:
        self.data: dict[bytes, dict[str, Any]] = {}
        self.old: dict[bytes, dict[str, Any]] = {}
        self.limit = limit

    def get(self, raw: bytes) -> dict[str, Any] | None:
        m = self.data.get(raw)
        return m if m is not None else self.old.get(raw)

    def put(self, raw: bytes, m: dict[str, Any]) -> None:
        if len(self.data) >= self.limit:
            self.old = self.data
            self.data = {}
        self.data[raw] = m


class LedgerState:
    """A scratch view over committed state for executing transactions. With ``decoded``, values
    it reads are looked up there before being decoded, and the values it writes are put there."""

    def __init__(self, reader: StateReader, decoded: DecodedValues | None = None) -> None:
        self._reader = reader
        self._decoded = decoded
        self._records: dict[bytes, Any] = {}  # key -> decoded record (or None if absent)
        self._dirty: dict[bytes, Callable[[Any], dict[str, Any]]] = {}  # written keys -> how to map their record

    # -- generic --------------------------------------------------------------------------

    def _load(self, key: bytes, build: Callable[[dict[str, Any]], Any]) -> Any:
        rec = self._records.get(key, _MISSING)
        if rec is _MISSING:
            raw = self._reader.get(key)
            if raw is None:
                rec = None
            else:
                m = None if self._decoded is None else self._decoded.get(raw)
                rec = build(codec.decode(raw, canonical=False) if m is None else m)
            self._records[key] = rec
        return rec

    def _store(self, key: bytes, record: Any, to_map: Callable[[Any], dict[str, Any]]) -> None:
        """``to_map`` gives the record's map with its keys in sorted order (encoded as it is)."""
        self._records[key] = record
        self._dirty[key] = to_map

    def writes(self) -> dict[bytes, bytes]:
        """Every key written since this view was made, with its new canonical value."""
        out = {}
        records, decoded, pack = self._records, self._decoded, codec.encode_sorted
        for key, to_map in self._dirty.items():
            m = to_map(records[key])
            raw = out[key] = pack(m)
            if decoded is not None:
                decoded.put(raw, m)
        return out

    # -- invoices -------------------------------------------------------------------------

    def invoice(self, number: str) -> Invoice | None:
        return self._load(invoice_key(number), Invoice.from_map)

    def put_invoice(self, invoice: Invoice) -> None:
        self._store(invoice_key(invoice.number), invoice, Invoice.to_map)

    # -- members --------------------------------------------------------------------------

    def member(self, public_key: bytes) -> Member | None:
        return self._load(member_key(public_key), Member.from_map)

    def put_member(self, member: Member) -> None:
        self._store(member_key(member.key), member, Member.to_map)

    def tax_id_holder(self, role: str, tax_id: str) -> bytes | None:
        rec = self._load(tax_id_key(role, tax_id), _identity)
        return None if rec is None else rec["key"]

    def put_tax_id_holder(self, role: str, tax_id: str, public_key: bytes) -> None:
        self._store(tax_id_key(role, tax_id), {"key": public_key}, _identity)

    # -- issuance bookkeeping -------------------------------------------------------------

    def payment_ref(self, seller_tax_id: str, ref: str) -> str | None:
        rec = self._load(payment_ref_key(seller_tax_id, ref), _identity)
        return None if rec is None else rec["number"]

    def put_payment_ref(self, seller_tax_id: str, ref: str, number: str) -> None:
        self._store(payment_ref_key(seller_tax_id, ref), {"number": number}, _identity)

    def quota_used(self, seller_tax_id: str, month: str) -> int:
        rec = self._load(quota_key(seller_tax_id, month), _identity)
        return 0 if rec is None else rec["used"]

    def put_quota_used(self, seller_tax_id: str, month: str, used: int) -> None:
        self._store(quota_key(seller_tax_id, month), {"used": used}, _identity)


def _identity(m: dict[str, Any]) -> dict[str, Any]:
    return m
