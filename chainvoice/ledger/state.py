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


class LedgerState:
    """A scratch view over committed state for executing transactions."""

    def __init__(self, reader: StateReader) -> None:
        self._reader = reader
        self._records: dict[bytes, Any] = {}  # key -> decoded record (or None if absent)
        self._encoders: dict[bytes, Callable[[Any], bytes]] = {}  # dirty keys -> encoder

    # -- generic --------------------------------------------------------------------------

    def _load(self, key: bytes, build: Callable[[dict[str, Any]], Any]) -> Any:
        rec = self._records.get(key, _MISSING)
        if rec is _MISSING:
            raw = self._reader.get(key)
            rec = None if raw is None else build(codec.decode(raw, canonical=False))
            self._records[key] = rec
        return rec

    def _store(self, key: bytes, record: Any, encoder: Callable[[Any], bytes]) -> None:
        self._records[key] = record
        self._encoders[key] = encoder

    def writes(self) -> dict[bytes, bytes]:
        """Every key written since this view was made, with its new canonical value."""
        return {key: enc(self._records[key]) for key, enc in self._encoders.items()}

    # -- invoices -------------------------------------------------------------------------

    def invoice(self, number: str) -> Invoice | None:
        return self._load(invoice_key(number), Invoice.from_map)

    def put_invoice(self, invoice: Invoice) -> None:
        self._store(invoice_key(invoice.number), invoice, Invoice.encode)

    # -- members --------------------------------------------------------------------------

    def member(self, public_key: bytes) -> Member | None:
        return self._load(member_key(public_key), Member.from_map)

    def put_member(self, member: Member) -> None:
        self._store(member_key(member.key), member, Member.encode)

    def tax_id_holder(self, role: str, tax_id: str) -> bytes | None:
        rec = self._load(tax_id_key(role, tax_id), _identity)
        return None if rec is None else rec["key"]

    def put_tax_id_holder(self, role: str, tax_id: str, public_key: bytes) -> None:
        self._store(tax_id_key(role, tax_id), {"key": public_key}, codec.encode_sorted)

    # -- issuance bookkeeping -------------------------------------------------------------

    def payment_ref(self, seller_tax_id: str, ref: str) -> str | None:
        rec = self._load(payment_ref_key(seller_tax_id, ref), _identity)
        return None if rec is None else rec["number"]

    def put_payment_ref(self, seller_tax_id: str, ref: str, number: str) -> None:
        self._store(payment_ref_key(seller_tax_id, ref), {"number": number}, codec.encode_sorted)

    def quota_used(self, seller_tax_id: str, month: str) -> int:
        rec = self._load(quota_key(seller_tax_id, month), _identity)
        return 0 if rec is None else rec["used"]

    def put_quota_used(self, seller_tax_id: str, month: str, used: int) -> None:
        self._store(quota_key(seller_tax_id, month), {"used": used}, codec.encode_sorted)


def _identity(m: dict[str, Any]) -> dict[str, Any]:
    return m
