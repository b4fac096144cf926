"""The ledger's state rules (SPEC §4): ``apply(state, tx, block) -> Receipt``, one function per kind.

Each rule checks every precondition before it writes anything, so a rejected transaction changes
nothing but its own receipt. Checks run in a fixed, documented order so every honest node gives
the same code for the same transaction. Codes for double claims (DOUBLE_REIMBURSEMENT,
DOUBLE_DECLARATION) are decided before the actor's authorisation, because that is the evidence a
tax officer looks for: whoever tries to claim an invoice twice is recorded as having tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import amounts, calendar, codes, taxid
from .records import (
    ACTIVE,
    DECLARED,
    DEREGISTERED,
    ENTERPRISE,
    ISSUED,
    LOCKED,
    MERCHANT,
    PLATFORM,
    RECEIPT_OK,
    RECEIPT_REJECTED,
    REIMBURSED,
    REVERSED,
    TAX,
    Invoice,
    Member,
    Receipt,
)
from .state import LedgerState
from .transaction import Transaction


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What a rule may know about the block it runs in: nothing else is deterministic."""

    height: int
    timestamp_ms: int
    month: str = field(init=False)  # 'YYYY-MM' in Beijing time, computed once per block
    year: int = field(init=False)

    def __post_init__(self) -> None:
        y, m, _ = calendar.beijing_date(self.timestamp_ms)
        object.__setattr__(self, "month", f"{y:04d}-{m:02d}")
        object.__setattr__(self, "year", y)


class Rejected(Exception):
    """Raised inside a rule; turned into a ``rejected`` receipt by ``apply``."""

    def __init__(self, code: str, message: str, reference: dict[str, Any] | None = None) -> None:
        self.code = code
        self.message = message
        self.reference = reference


def apply(state: LedgerState, tx: Transaction, block: BlockContext) -> Receipt:
    """Apply one schema-valid, signature-checked transaction; return its receipt."""
    rule = RULES[tx.kind]
    try:
        reference = rule(state, tx, block)
    except Rejected as r:
        return Receipt(tx.tx_id, RECEIPT_REJECTED, r.code, r.message, r.reference)
    return Receipt(tx.tx_id, RECEIPT_OK, "", "", reference)


# -- shared checks ------------------------------------------------------------------------------

def _acting_member(state: LedgerState, signer: bytes, *roles: str) -> Member:
    """The signer as an active member in one of ``roles``."""
    member = state.member(signer)
    if member is None or member.role not in roles:
        raise Rejected(codes.NOT_AUTHORIZED, f"signer is not a registered {' or '.join(roles)}")
    if member.status != ACTIVE:
        raise Rejected(codes.MEMBER_INACTIVE, f"signer is {member.status}")
    return member


def _not_inactive(state: LedgerState, key: bytes, who: str = "signer") -> None:
    """A plain wallet key may act; a registered member may act only while active."""
    member = state.member(key)
    if member is not None and member.status != ACTIVE:
        raise Rejected(codes.MEMBER_INACTIVE, f"{who} is a {member.status} member")


def _existing(state: LedgerState, number: str) -> Invoice:
    invoice = state.invoice(number)
    if invoice is None:
        raise Rejected(codes.UNKNOWN_INVOICE, f"no invoice {number} on the chain")
    return invoice


def _not_reversed(inv: Invoice) -> None:
    if inv.status == REVERSED:
        raise Rejected(codes.REVERSED, f"invoice {inv.number} has been reversed (red letter)")


def _not_flagged(inv: Invoice) -> None:
    if inv.flagged:
        raise Rejected(codes.FLAGGED, f"invoice {inv.number} is flagged by the tax authority: {inv.flag_reason}")


def _no_red_pending(inv: Invoice) -> None:
    if inv.red_request is not None:
        raise Rejected(codes.RED_PENDING, f"invoice {inv.number} has a red-letter request awaiting the holder")


def _status(inv: Invoice, *allowed: str) -> None:
    if inv.status not in allowed:
        raise Rejected(codes.INVALID_STATUS, f"invoice {inv.number} is {inv.status}; this needs {' or '.join(allowed)}")


def _serving_platform(state: LedgerState, platform: Member, inv: Invoice) -> None:
    """The invoice's holder is an active enterprise this platform serves."""
    holder = state.member(inv.holder)
    if holder is None or holder.role != ENTERPRISE:
        raise Rejected(codes.NOT_AUTHORIZED, f"invoice {inv.number} is not held by an enterprise")
    if inv.holder not in platform.serves:
        raise Rejected(codes.NOT_AUTHORIZED, f"platform does not serve the enterprise holding invoice {inv.number}")
    if holder.status != ACTIVE:
        raise Rejected(codes.MEMBER_INACTIVE, f"the holding enterprise is {holder.status}")


def _enterprises(state: LedgerState, keys: list[bytes]) -> None:
    for key in keys:
        m = state.member(key)
        if m is None or m.role != ENTERPRISE:
            raise Rejected(codes.UNKNOWN_MEMBER, f"{key.hex()} is not a registered enterprise")
    if len(set(keys)) != len(keys):
        raise Rejected(codes.NOT_APPLICABLE, "serves lists an enterprise twice")


def _touch(inv: Invoice, tx: Transaction) -> None:
    inv.last_tx = tx.tx_id


# -- members ------------------------------------------------------------------------------------

def register_member(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    b = tx.body
    _acting_member(state, tx.signer, TAX)
    if state.member(b["key"]) is not None:
        raise Rejected(codes.ALREADY_REGISTERED, f"key {b['key'].hex()} is already a member")
    role = b["role"]
    tax_id = b.get("tax_id", "")
    if role in (MERCHANT, ENTERPRISE):
        problem = taxid.problem(tax_id)
        if problem is not None:
            raise Rejected(codes.BAD_TAX_ID, problem)
        if state.tax_id_holder(role, tax_id) is not None:
            raise Rejected(codes.DUPLICATE_TAX_ID, f"taxpayer id {tax_id} already belongs to a registered {role}")
    serves = list(b.get("serves", []))
    _enterprises(state, serves)
    member = Member(key=b["key"], role=role, name=b["name"], status=ACTIVE, last_tx=tx.tx_id,
                    tax_id=tax_id, taxpayer_type=b.get("taxpayer_type", ""),
                    monthly_quota=b.get("monthly_quota", 0), serves=serves)
    state.put_member(member)
    if tax_id:
        state.put_tax_id_holder(role, tax_id, member.key)


def update_member(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    b = tx.body
    _acting_member(state, tx.signer, TAX)
    member = state.member(b["key"])
    if member is None:
        raise Rejected(codes.UNKNOWN_MEMBER, f"key {b['key'].hex()} is not a member")
    assert member is not None
    if member.status == DEREGISTERED:
        raise Rejected(codes.MEMBER_INACTIVE, "a deregistered member cannot be changed")
    status = b.get("status", member.status)
    if member.key == tx.signer and status != ACTIVE:
        raise Rejected(codes.NOT_AUTHORIZED, "a tax authority cannot freeze or deregister itself")
    for name, role in (("monthly_quota", MERCHANT), ("taxpayer_type", MERCHANT), ("serves", PLATFORM)):
        if name in b and member.role != role:
            raise Rejected(codes.NOT_APPLICABLE, f"{name} applies to a {role}, not a {member.role}")
    if "serves" in b:
        _enterprises(state, list(b["serves"]))
        member.serves = list(b["serves"])
    member.status = status
    member.name = b.get("name", member.name)
    member.monthly_quota = b.get("monthly_quota", member.monthly_quota)
    member.taxpayer_type = b.get("taxpayer_type", member.taxpayer_type)
    member.last_tx = tx.tx_id
    state.put_member(member)


# -- issue ----------------------------------------------------------------------------------------

def issue(state: LedgerState, tx: Transaction, block: BlockContext) -> dict[str, Any]:
    b = tx.body
    merchant = _acting_member(state, tx.signer, MERCHANT)
    seller_tax_id = b["seller_tax_id"]
    for label, value in (("seller_tax_id", seller_tax_id), ("buyer_tax_id", b.get("buyer_tax_id"))):
        if value is not None:
            problem = taxid.problem(value)
            if problem is not None:
                raise Rejected(codes.BAD_TAX_ID, f"{label}: {problem}")
    if seller_tax_id != merchant.tax_id:
        raise Rejected(codes.NOT_AUTHORIZED, f"seller_tax_id {seller_tax_id} is not the signing merchant's taxpayer id {merchant.tax_id}")
    number = b["number"]
    if int(number[:2]) != block.year % 100:
        raise Rejected(codes.BAD_NUMBER,
                       f"invoice number {number} does not start with the year of issue ({block.year % 100:02d})")
    lines = b["lines"]
    problem = amounts.rate_problem(lines, merchant.taxpayer_type)
    if problem is not None:
        raise Rejected(codes.BAD_RATE, problem)
    problem = amounts.amounts_problem(lines, b["amount"], b["tax"], b["total"])
    if problem is not None:
        raise Rejected(codes.BAD_AMOUNTS, problem)
    ref = b.get("payment_ref")
    if ref is not None:
        existing = state.payment_ref(seller_tax_id, ref)
        if existing is not None:
            # Idempotent transaction-is-invoicing: a retried payment callback points at the
            # invoice the first one created instead of creating a second.
            raise Rejected(codes.DUPLICATE_PAYMENT_REF,
                           f"payment {ref} was already invoiced as {existing}", {"number": existing})
    if state.invoice(number) is not None:
        raise Rejected(codes.DUPLICATE_NUMBER, f"invoice number {number} is already used")
    month = block.month
    used = state.quota_used(seller_tax_id, month)
    total = b["total"]
    if used + total > merchant.monthly_quota:
        raise Rejected(codes.QUOTA_EXCEEDED, f"issuing {total} fen would bring {month} to {used + total} of a {merchant.monthly_quota} fen quota")

    invoice = Invoice(
        number=number, seller=tx.signer, seller_tax_id=seller_tax_id, seller_name=b["seller_name"],
        buyer_name=b["buyer_name"], buyer_tax_id=b.get("buyer_tax_id", ""), holder=b["holder"],
        lines=lines, amount=b["amount"], tax=b["tax"], total=total, remaining=total,
        issued_at_ms=block.timestamp_ms, issued_height=block.height, status=ISSUED, flagged=False,
        last_tx=tx.tx_id, payment_ref=ref or "", remark=b.get("remark", ""),
    )
    state.put_invoice(invoice)
    state.put_quota_used(seller_tax_id, month, used + total)
    if ref is not None:
        state.put_payment_ref(seller_tax_id, ref, number)
    return {"number": number}


# -- holding and claiming -------------------------------------------------------------------------

def transfer(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _existing(state, tx.body["number"])
    if tx.signer != inv.holder:
        raise Rejected(codes.NOT_HOLDER, f"signer does not hold invoice {inv.number}")
    _not_inactive(state, tx.signer)
    _not_reversed(inv)
    _status(inv, ISSUED)
    _not_flagged(inv)
    _no_red_pending(inv)
    inv.holder = tx.body["to"]
    _touch(inv, tx)
    state.put_invoice(inv)


def _not_claimed(inv: Invoice) -> None:
    if inv.status in (LOCKED, REIMBURSED, DECLARED):
        claim = inv.claim or {}
        raise Rejected(codes.DOUBLE_REIMBURSEMENT,
                       f"invoice {inv.number} is already {inv.status} for claim {claim.get('claim_id', '?')}",
                       {"number": inv.number, "status": inv.status})


def lock(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _existing(state, tx.body["number"])
    platform = _acting_member(state, tx.signer, PLATFORM)
    _not_reversed(inv)
    _not_claimed(inv)
    _not_flagged(inv)
    _no_red_pending(inv)
    _serving_platform(state, platform, inv)
    inv.status = LOCKED
    inv.claim = {"platform": tx.signer, "claim_id": tx.body["claim_id"]}
    _touch(inv, tx)
    state.put_invoice(inv)


def unlock(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _existing(state, tx.body["number"])
    _not_reversed(inv)
    _status(inv, LOCKED)
    if inv.claim is None or inv.claim["platform"] != tx.signer:
        raise Rejected(codes.NOT_AUTHORIZED, f"only the platform that locked invoice {inv.number} may unlock it")
    _acting_member(state, tx.signer, PLATFORM)
    _not_flagged(inv)
    inv.status = ISSUED
    inv.claim = None
    _touch(inv, tx)
    state.put_invoice(inv)


def reimburse(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _existing(state, tx.body["number"])
    platform = _acting_member(state, tx.signer, PLATFORM)
    _not_reversed(inv)
    claim_id = tx.body["claim_id"]
    if inv.status == LOCKED:
        claim = inv.claim or {}
        if claim.get("platform") != tx.signer or claim.get("claim_id") != claim_id:
            raise Rejected(codes.DOUBLE_REIMBURSEMENT,
                           f"invoice {inv.number} is locked for another claim ({claim.get('claim_id', '?')})",
                           {"number": inv.number, "status": inv.status})
    else:
        _not_claimed(inv)
    _not_flagged(inv)
    _no_red_pending(inv)
    if inv.status == ISSUED:
        _serving_platform(state, platform, inv)
    inv.status = REIMBURSED
    inv.claim = {"platform": tx.signer, "claim_id": claim_id}
    _touch(inv, tx)
    state.put_invoice(inv)


def declare(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _existing(state, tx.body["number"])
    _not_reversed(inv)
    if inv.status == DECLARED:
        raise Rejected(codes.DOUBLE_DECLARATION, f"invoice {inv.number} was already declared for {inv.declared_period}")
    _status(inv, REIMBURSED)
    signer = state.member(tx.signer)
    if tx.signer == inv.holder:
        if signer is None or signer.role != ENTERPRISE:
            raise Rejected(codes.NOT_AUTHORIZED, "only an enterprise holder declares invoices")
        assert signer is not None
        if signer.status != ACTIVE:
            raise Rejected(codes.MEMBER_INACTIVE, f"signer is {signer.status}")
    else:
        platform = _acting_member(state, tx.signer, PLATFORM)
        _serving_platform(state, platform, inv)
    _not_flagged(inv)
    period = tx.body["period"]
    issue_month = calendar.month_of(inv.issued_at_ms)
    if not calendar.is_period(period):
        raise Rejected(codes.BAD_PERIOD, f"period {period!r} is not YYYY-MM")
    if not (issue_month <= period <= block.month):
        raise Rejected(codes.BAD_PERIOD, f"period {period} must be between the issue month {issue_month} and now ({block.month})")
    inv.status = DECLARED
    inv.declared_period = period
    _touch(inv, tx)
    state.put_invoice(inv)


# -- red-letter reversal ----------------------------------------------------------------------

def _reverse(state: LedgerState, inv: Invoice, amount: int, block: BlockContext) -> None:
    inv.remaining -= amount
    inv.reversed_amount += amount
    assert inv.remaining >= 0
    if inv.remaining == 0:
        inv.status = REVERSED
    # A reversal in the month of issue gives the quota back (the sale did not happen).
    issue_month = calendar.month_of(inv.issued_at_ms)
    if issue_month == block.month:
        used = state.quota_used(inv.seller_tax_id, issue_month)
        state.put_quota_used(inv.seller_tax_id, issue_month, max(0, used - amount))


def request_red(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _existing(state, tx.body["number"])
    merchant = _acting_member(state, tx.signer, MERCHANT)
    if merchant.tax_id != inv.seller_tax_id:
        raise Rejected(codes.NOT_AUTHORIZED, f"only the seller ({inv.seller_tax_id}) may reverse invoice {inv.number}")
    _not_reversed(inv)
    _status(inv, ISSUED)
    _not_flagged(inv)
    _no_red_pending(inv)
    amount = tx.body["amount"]
    if not (0 < amount <= inv.remaining):
        raise Rejected(codes.BAD_AMOUNTS, f"red amount {amount} must be between 1 and the remaining {inv.remaining} fen")
    if inv.holder == tx.signer:
        # The seller holds its own invoice: no one else to confirm (SPEC §4).
        _reverse(state, inv, amount, block)
    else:
        inv.red_request = {"amount": amount, "reason": tx.body["reason"], "tx": tx.tx_id}
    _touch(inv, tx)
    state.put_invoice(inv)


def _pending_red(state: LedgerState, tx: Transaction) -> Invoice:
    inv = _existing(state, tx.body["number"])
    if tx.signer != inv.holder:
        raise Rejected(codes.NOT_HOLDER, f"signer does not hold invoice {inv.number}")
    _not_inactive(state, tx.signer)
    if inv.red_request is None:
        raise Rejected(codes.NO_RED_REQUEST, f"invoice {inv.number} has no pending red-letter request")
    return inv


def confirm_red(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _pending_red(state, tx)
    _not_flagged(inv)
    assert inv.red_request is not None
    amount = inv.red_request["amount"]
    inv.red_request = None
    _reverse(state, inv, amount, block)
    _touch(inv, tx)
    state.put_invoice(inv)


def reject_red(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    inv = _pending_red(state, tx)
    inv.red_request = None
    _touch(inv, tx)
    state.put_invoice(inv)


# -- tax control --------------------------------------------------------------------------------

def flag(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    _acting_member(state, tx.signer, TAX)
    inv = _existing(state, tx.body["number"])
    if inv.flagged:
        raise Rejected(codes.INVALID_STATUS, f"invoice {inv.number} is already flagged")
    inv.flagged = True
    inv.flag_reason = tx.body["reason"]
    _touch(inv, tx)
    state.put_invoice(inv)


def clear(state: LedgerState, tx: Transaction, block: BlockContext) -> None:
    _acting_member(state, tx.signer, TAX)
    inv = _existing(state, tx.body["number"])
    if not inv.flagged:
        raise Rejected(codes.INVALID_STATUS, f"invoice {inv.number} is not flagged")
    inv.flagged = False
    inv.flag_reason = ""
    _touch(inv, tx)
    state.put_invoice(inv)


RULES: dict[str, Callable[[LedgerState, Transaction, BlockContext], Any]] = {
    "register_member": register_member,
    "update_member": update_member,
    "issue": issue,
    "transfer": transfer,
    "lock": lock,
    "unlock": unlock,
    "reimburse": reimburse,
    "declare": declare,
    "request_red": request_red,
    "confirm_red": confirm_red,
    "reject_red": reject_red,
    "flag": flag,
    "clear": clear,
}
