"""Money on the chain: integer fen only, exact tax arithmetic, allowed rates by taxpayer type."""

from __future__ import annotations

from typing import Any

GENERAL = "general"
SMALL = "small"
TAXPAYER_TYPES = (GENERAL, SMALL)

# VAT rates in basis points by taxpayer type (SPEC §3).
ALLOWED_RATES_BP: dict[str, frozenset[int]] = {
    GENERAL: frozenset({1300, 900, 600, 0}),
    SMALL: frozenset({300, 100, 0}),
}

# The largest total one invoice may carry: 10^15 fen (10 trillion yuan). Far above any real
# invoice, and small enough that sums of many invoices stay inside the codec's signed 64-bit range.
MAX_TOTAL_FEN = 10**15


def line_tax(amount: int, rate_bp: int) -> int:
    """round_half_up(amount × rate_bp / 10000) in integers (amount ≥ 0)."""
    return (amount * rate_bp + 5000) // 10000


def amounts_problem(lines: list[dict[str, Any]], amount: int, tax: int, total: int) -> str | None:
    """Why an invoice's lines and totals are not exact, or None (SPEC §3)."""
    sum_amount = 0
    sum_tax = 0
    for i, line in enumerate(lines):
        q, p = line["quantity"], line["unit_price"]
        if q <= 0 or p <= 0:
            return f"line {i}: quantity and unit_price must be positive"
        if line["amount"] != q * p:
            return f"line {i}: amount {line['amount']} != quantity {q} × unit_price {p}"
        want = line_tax(line["amount"], line["rate_bp"])
        if line["tax"] != want:
            return f"line {i}: tax {line['tax']} != round_half_up({line['amount']} × {line['rate_bp']} / 10000) = {want}"
        sum_amount += line["amount"]
        sum_tax += line["tax"]
    if amount != sum_amount:
        return f"amount {amount} != sum of line amounts {sum_amount}"
    if tax != sum_tax:
        return f"tax {tax} != sum of line taxes {sum_tax}"
    if total != amount + tax:
        return f"total {total} != amount + tax {amount + tax}"
    if amount <= 0 or total <= 0:
        return "amount and total must be positive"
    if total > MAX_TOTAL_FEN:
        return f"total exceeds {MAX_TOTAL_FEN} fen"
    return None


def rate_problem(lines: list[dict[str, Any]], taxpayer_type: str) -> str | None:
    allowed = ALLOWED_RATES_BP.get(taxpayer_type, frozenset())
    for i, line in enumerate(lines):
        if line["rate_bp"] not in allowed:
            return (f"line {i}: rate {line['rate_bp']} bp is not allowed for a {taxpayer_type} "
                    f"taxpayer (allowed: {sorted(allowed, reverse=True)})")
    return None


def build_line(name: str, quantity: int, unit_price: int, rate_bp: int) -> dict[str, Any]:
    """A correct invoice line from its inputs (what an honest invoicing client sends)."""
    amount = quantity * unit_price
    return {"name": name, "quantity": quantity, "unit_price": unit_price, "amount": amount,
            "rate_bp": rate_bp, "tax": line_tax(amount, rate_bp)}


def totals(lines: list[dict[str, Any]]) -> tuple[int, int, int]:
    amount = sum(line["amount"] for line in lines)
    tax = sum(line["tax"] for line in lines)
    return amount, tax, amount + tax
