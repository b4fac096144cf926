"""What the ledger keeps: invoice and member records, receipts, and their state-tree keys.

A record's canonical encoding is the value stored under its key in the state tree (SPEC §5), so
field names here are part of the verifiable format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .. import codec

# Invoice status (SPEC §5).
ISSUED = "ISSUED"
LOCKED = "LOCKED"
REIMBURSED = "REIMBURSED"
DECLARED = "DECLARED"
REVERSED = "REVERSED"
INVOICE_STATUSES = (ISSUED, LOCKED, REIMBURSED, DECLARED, REVERSED)

# Member status (SPEC §2).
ACTIVE = "active"
FROZEN = "frozen"
DEREGISTERED = "deregistered"

# Member roles (SPEC §2).
TAX = "tax"
MERCHANT = "merchant"
PLATFORM = "platform"
ENTERPRISE = "enterprise"

RECEIPT_OK = "ok"
RECEIPT_REJECTED = "rejected"

_sha256 = hashlib.sha256


# -- state-tree keys --------------------------------------------------------------------------
# Each is a SHA-256 of a short string, asked for several times per transaction (load, then store;
# the signer's member record for every transaction). They are pure, so the recent ones are kept:
# members, taxpayer ids and quota months are few, and an invoice is usually touched again soon
# after it is issued.

_KEYS_KEPT = 1 << 14


@lru_cache(maxsize=_KEYS_KEPT)
def invoice_key(number: str) -> bytes:
    """SPEC §5: SHA256(b"invoice/" + number)."""
    return _sha256(b"invoice/" + number.encode()).digest()


@lru_cache(maxsize=_KEYS_KEPT)
def member_key(public_key: bytes) -> bytes:
    return _sha256(b"member/" + public_key).digest()


@lru_cache(maxsize=_KEYS_KEPT)
def tax_id_key(role: str, tax_id: str) -> bytes:
    """Which member holds a taxpayer id in a role (merchant ids and enterprise ids are unique)."""
    return _sha256(b"taxid/" + role.encode() + b"/" + tax_id.encode()).digest()


@lru_cache(maxsize=_KEYS_KEPT)
def payment_ref_key(seller_tax_id: str, payment_ref: str) -> bytes:
    # Taxpayer ids never contain "/", so the pair is unambiguous.
    return _sha256(b"payref/" + seller_tax_id.encode() + b"/" + payment_ref.encode()).digest()


@lru_cache(maxsize=_KEYS_KEPT)
def quota_key(seller_tax_id: str, month: str) -> bytes:
    return _sha256(b"quota/" + seller_tax_id.encode() + b"/" + month.encode()).digest()


# -- records ----------------------------------------------------------------------------------

@dataclass(slots=True)
class Invoice:
    number: str
    seller: bytes  # the issuing merchant's key
    seller_tax_id: str
    seller_name: str
    buyer_name: str
    buyer_tax_id: str
    holder: bytes
    lines: list[dict[str, Any]]
    amount: int
    tax: int
    total: int
    remaining: int  # of total, reduced only by confirmed red-letter reversals
    issued_at_ms: int
    issued_height: int
    status: str
    flagged: bool
    last_tx: bytes
    payment_ref: str = ""
    remark: str = ""
    flag_reason: str = ""
    claim: dict[str, Any] | None = None  # {"platform": key, "claim_id": str} once locked/reimbursed
    red_request: dict[str, Any] | None = None  # {"amount", "reason", "tx"} while pending
    reversed_amount: int = 0
    declared_period: str = ""

    def to_map(self) -> dict[str, Any]:
        """The state-tree value's map, keys in sorted order (so ``encode`` needs no re-sort)."""
        claim, red = self.claim, self.red_request
        return {
            "amount": self.amount, "buyer_name": self.buyer_name, "buyer_tax_id": self.buyer_tax_id,
            "claim": None if claim is None else {"claim_id": claim["claim_id"], "platform": claim["platform"]},
            "declared_period": self.declared_period, "flag_reason": self.flag_reason, "flagged": self.flagged,
            "holder": self.holder, "issued_at_ms": self.issued_at_ms, "issued_height": self.issued_height,
            "last_tx": self.last_tx,
            "lines": self.lines,  # from a decoded canonical body: already sorted
            "number": self.number, "payment_ref": self.payment_ref,
            "red_request": None if red is None else {"amount": red["amount"], "reason": red["reason"], "tx": red["tx"]},
            "remaining": self.remaining, "remark": self.remark, "reversed_amount": self.reversed_amount,
            "seller": self.seller, "seller_name": self.seller_name, "seller_tax_id": self.seller_tax_id,
            "status": self.status, "tax": self.tax, "total": self.total,
        }

    def encode(self) -> bytes:
        return codec.encode_sorted(self.to_map())

    @classmethod
    def from_map(cls, m: dict[str, Any]) -> "Invoice":
        return cls(**m)


@dataclass(slots=True)
class Member:
    key: bytes
    role: str
    name: str
    status: str
    last_tx: bytes
    tax_id: str = ""
    taxpayer_type: str = ""
    monthly_quota: int = 0
    serves: list[bytes] = field(default_factory=list)

    def to_map(self) -> dict[str, Any]:
        """Keys in sorted order (see Invoice.to_map)."""
        return {"key": self.key, "last_tx": self.last_tx, "monthly_quota": self.monthly_quota, "name": self.name,
                "role": self.role, "serves": list(self.serves), "status": self.status, "tax_id": self.tax_id,
                "taxpayer_type": self.taxpayer_type}

    def encode(self) -> bytes:
        return codec.encode_sorted(self.to_map())

    @classmethod
    def from_map(cls, m: dict[str, Any]) -> "Member":
        return cls(**m)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one transaction. ``leaf`` is what ``receipts_root`` commits to (SPEC §5);
    ``message`` and ``reference`` travel beside it in API answers."""

    tx_id: bytes
    status: str
    code: str = ""
    message: str = ""
    reference: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == RECEIPT_OK

    def leaf(self) -> bytes:
        # Keys in sorted order and canonical types only (two strings and 32 bytes), so the packed
        # map is the canonical encoding without ``codec.encode``'s recursive copy.
        return codec.encode_sorted({"code": self.code, "status": self.status, "tx_id": self.tx_id})

    def to_map(self) -> dict[str, Any]:
        """Keys in sorted order, the reference's too: a block's receipts are stored packed as they
        are (``codec.encode_sorted``), one per transaction."""
        ref = self.reference
        if ref is not None and len(ref) > 1:
            ref = dict(sorted(ref.items()))
        return {"code": self.code, "message": self.message, "reference": ref, "status": self.status,
                "tx_id": self.tx_id}

    @classmethod
    def from_map(cls, m: dict[str, Any]) -> "Receipt":
        return cls(m["tx_id"], m["status"], m["code"], m.get("message", ""), m.get("reference"))
