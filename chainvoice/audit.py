"""Tax supervision: the audit index kept per committed block, risk signals, monthly reports.

Index entries (store prefix ``a``), all derived from committed transactions and receipts:

    am<seller tax id>/<YYYY-MM>              merchant month: {count, amount, tax, total, reversed}
    ad<seller tax id>/<YYYY-MM-DD>           merchant day: {count, total}
    ae<YYYY-MM>/<seller>/<buyer>/<number>    seller -> buyer invoice (buyer taxpayer id given)
    ax<signer><height><index>                rejected double claim: {number, kind, code}

Months and days are Beijing time of the block. Risk signals (``risk``):
- merchants that have issued ≥ QUOTA_ALERT of their monthly quota;
- volume spikes: a merchant's invoices on the latest day ≥ SPIKE_FACTOR × its daily mean over the
  previous SPIKE_DAYS days (and at least SPIKE_MIN invoices);
- circular invoicing: cycles in the seller→buyer graph within the window;
- platforms and holders with rejected double-reimbursement / double-declaration attempts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from . import codec
from .chain.chain import BlockCommit
from .ledger import calendar, codes
from .ledger.records import invoice_key, member_key, quota_key, tax_id_key

PREFIX = b"a"
# Alert when a merchant has used this share of its monthly quota (basis points): close to the
# ceiling is where invoices get split or pushed to other sellers.
QUOTA_ALERT_BP = 9500
SPIKE_DAYS = 7
SPIKE_FACTOR = 3
SPIKE_MIN = 20
# Longest cycle looked for: A→B→C→D→A already needs four colluding companies.
MAX_CYCLE = 5
DOUBLE_CLAIM_CODES = (codes.DOUBLE_REIMBURSEMENT, codes.DOUBLE_DECLARATION)


def _month_key(seller: str, month: str) -> bytes:
    return PREFIX + b"m" + seller.encode() + b"/" + month.encode()


def _day_key(seller: str, day: str) -> bytes:
    return PREFIX + b"d" + seller.encode() + b"/" + day.encode()


def _edge_key(month: str, seller: str, buyer: str, number: str) -> bytes:
    return PREFIX + b"e" + f"{month}/{seller}/{buyer}/{number}".encode()


# -- indexing (called by the store inside the block's write batch) ------------------------------

def index_updates(commit: BlockCommit, get: Callable[[bytes], bytes | None],
                  state_before: Callable[[bytes], bytes | None]) -> dict[bytes, bytes]:
    """The audit index entries this block adds or changes. ``get`` reads the index as committed
    so far; ``state_before`` reads state before this block."""
    ts = commit.block.header.timestamp_ms
    month, day = calendar.month_of(ts), calendar.date_of(ts)
    height = commit.block.height
    counters: dict[bytes, dict[str, int]] = {}

    def bump(key: bytes, **add: int) -> None:
        cur = counters.get(key)
        if cur is None:
            raw = get(key)
            cur = codec.decode(raw, canonical=False) if raw is not None else {}
            counters[key] = cur
        for k, v in add.items():
            cur[k] = cur.get(k, 0) + v

    puts: dict[bytes, bytes] = {}
    new_state = commit.state_writes
    reversals: set[str] = set()
    issued: dict[str, list[int]] = {}  # seller -> [count, amount, tax, total] issued in this block
    for i, (tx, receipt) in enumerate(zip(commit.txs, commit.receipts)):
        if not receipt.ok:
            if receipt.code in DOUBLE_CLAIM_CODES:
                puts[PREFIX + b"x" + tx.signer + height.to_bytes(8, "big") + i.to_bytes(4, "big")] = codec.encode(
                    {"number": tx.number or "", "kind": tx.kind, "code": receipt.code})
            continue
        b = tx.body
        kind = tx.kind
        if kind == "issue":
            seller = b["seller_tax_id"]
            sums = issued.get(seller)
            if sums is None:
                sums = issued[seller] = [0, 0, 0, 0]
            sums[0] += 1
            sums[1] += b["amount"]
            sums[2] += b["tax"]
            sums[3] += b["total"]
            if b.get("buyer_tax_id"):
                puts[_edge_key(month, seller, b["buyer_tax_id"], b["number"])] = codec.encode({"total": b["total"]})
        elif kind == "request_red" or kind == "confirm_red":
            reversals.add(b["number"])
    for seller, (count, amount, tax, total) in issued.items():
        bump(_month_key(seller, month), count=count, amount=amount, tax=tax, total=total)
        bump(_day_key(seller, day), count=count, total=total)
    # A reversal's amount is the change of reversed_amount over the whole block, taken once per
    # invoice (a request and its confirmation in one block must not count twice).
    for number in sorted(reversals):
        key = invoice_key(number)
        after, before = new_state.get(key), state_before(key)
        if after is None or before is None:
            continue
        a, p = codec.decode(after, canonical=False), codec.decode(before, canonical=False)
        delta = a["reversed_amount"] - p["reversed_amount"]
        if delta > 0:
            bump(_month_key(a["seller_tax_id"], month), reversed=delta)
    for key, value in counters.items():
        puts[key] = codec.encode(value)
    return puts


# -- reading ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MerchantMonth:
    seller_tax_id: str
    month: str
    count: int
    amount: int
    tax: int
    total: int
    reversed: int


class AuditView:
    """Reads the audit index and ledger state through a node's store."""

    def __init__(self, scan: Callable[[bytes], Iterable[tuple[bytes, bytes]]], get: Callable[[bytes], bytes | None],
                 state_value: Callable[[bytes], bytes | None]) -> None:
        self.scan, self.get, self.state_value = scan, get, state_value

    def _state(self, key: bytes) -> dict[str, Any] | None:
        raw = self.state_value(key)
        return None if raw is None else codec.decode(raw, canonical=False)

    def merchant(self, seller_tax_id: str) -> dict[str, Any] | None:
        holder = self._state(tax_id_key("merchant", seller_tax_id))
        return None if holder is None else self._state(member_key(holder["key"]))

    def month(self, month: str) -> list[MerchantMonth]:
        out = []
        for key, raw in self.scan(PREFIX + b"m"):
            seller, _, m = key[2:].decode().partition("/")
            if m == month:
                v = codec.decode(raw, canonical=False)
                out.append(MerchantMonth(seller, m, v.get("count", 0), v.get("amount", 0), v.get("tax", 0),
                                         v.get("total", 0), v.get("reversed", 0)))
        return sorted(out, key=lambda r: r.seller_tax_id)

    def days(self, seller: str) -> dict[str, int]:
        prefix = PREFIX + b"d" + seller.encode() + b"/"
        return {k[len(prefix):].decode(): codec.decode(v, canonical=False)["count"] for k, v in self.scan(prefix)}

    def edges(self, months: list[str]) -> Iterator[tuple[str, str, str]]:
        for m in months:
            prefix = PREFIX + b"e" + m.encode() + b"/"
            for key, _ in self.scan(prefix):
                seller, buyer, number = key[len(prefix):].decode().split("/")
                yield seller, buyer, number

    def double_claims(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for key, raw in self.scan(PREFIX + b"x"):
            signer = key[2:34].hex()
            height = int.from_bytes(key[34:42], "big")
            out[signer].append({**codec.decode(raw, canonical=False), "height": height})
        return dict(out)


# -- risk ---------------------------------------------------------------------------------------

def previous_months(month: str, n: int) -> list[str]:
    y, m = int(month[:4]), int(month[5:])
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        m -= 1
        if m == 0:
            y, m = y - 1, 12
    return out


def _days_before(day: str, n: int) -> list[str]:
    from datetime import date, timedelta

    d = date.fromisoformat(day)
    return [(d - timedelta(days=i)).isoformat() for i in range(1, n + 1)]


def find_cycles(edges: Iterable[tuple[str, str]], max_len: int = MAX_CYCLE) -> list[list[str]]:
    """Simple cycles (each reported once, starting at its smallest node) up to ``max_len``."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        if a != b:
            graph[a].add(b)
    cycles: list[list[str]] = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start and len(path) > 1:
                    cycles.append(path[:])
                elif nxt > start and nxt not in path and len(path) < max_len:
                    stack.append((nxt, path + [nxt]))
    return sorted(cycles)


def risk(view: AuditView, now_ms: int, window_months: int = 3) -> dict[str, Any]:
    month, today = calendar.month_of(now_ms), calendar.date_of(now_ms)
    signals: dict[str, list[dict[str, Any]]] = {"quota": [], "spikes": [], "cycles": [], "double_claims": []}

    for row in view.month(month):
        m = view.merchant(row.seller_tax_id)
        quota = m["monthly_quota"] if m else 0
        used_raw = view.state_value(quota_key(row.seller_tax_id, month))
        used = codec.decode(used_raw, canonical=False)["used"] if used_raw else 0
        if quota > 0 and used * 10000 >= quota * QUOTA_ALERT_BP:
            signals["quota"].append({"seller_tax_id": row.seller_tax_id, "name": m["name"] if m else "",
                                     "month": month, "used": used, "quota": quota,
                                     "share_bp": used * 10000 // quota})
        days = view.days(row.seller_tax_id)
        latest = days.get(today, 0)
        history = [days.get(d, 0) for d in _days_before(today, SPIKE_DAYS)]
        mean = sum(history) / SPIKE_DAYS
        if latest >= SPIKE_MIN and latest >= SPIKE_FACTOR * max(mean, 1.0):
            signals["spikes"].append({"seller_tax_id": row.seller_tax_id, "name": m["name"] if m else "",
                                      "day": today, "invoices": latest, "previous_daily_mean": round(mean, 2)})

    months = previous_months(month, window_months)
    numbers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for seller, buyer, number in view.edges(months):
        numbers[(seller, buyer)].append(number)
    for cycle in find_cycles(numbers):
        hops = list(zip(cycle, cycle[1:] + cycle[:1]))
        signals["cycles"].append({"companies": cycle, "months": months,
                                  "invoices": sorted(n for hop in hops for n in numbers[hop])})

    for signer, attempts in sorted(view.double_claims().items()):
        signals["double_claims"].append({"signer": signer, "attempts": len(attempts),
                                         "invoices": sorted({a["number"] for a in attempts}),
                                         "codes": sorted({a["code"] for a in attempts})})
    return {"month": month, "day": today, "window_months": months, "signals": signals}


def report_rows(view: AuditView, month: str) -> list[dict[str, Any]]:
    rows = []
    for r in view.month(month):
        m = view.merchant(r.seller_tax_id)
        rows.append({"seller_tax_id": r.seller_tax_id, "name": m["name"] if m else "", "month": month,
                     "count": r.count, "amount": r.amount, "tax": r.tax, "total": r.total, "reversed": r.reversed})
    return rows
