"""Random life cycles by random actors against an independent reference model (SPEC §4 invariants).

The model below re-derives, in its own simple terms, whether each transaction must be accepted and
what it does. After every step the ledger must agree with it, and the invariants are checked on
the ledger's own receipts and records:
- at most one successful ``reimburse`` and one ``declare`` per invoice, ever;
- amounts never change after issue, except ``remaining`` going down;
- every state change comes from an accepted (ok) transaction; rejected ones change nothing;
- replaying any committed transaction changes nothing; a forged one never gets in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chainvoice.ledger import amounts, codes
from chainvoice.ledger.codes import MalformedTransaction
from chainvoice.ledger.transaction import decode

from tests.support.world import World

MERCHANTS = ["shop", "taxi"]
ENTERPRISES = ["acme", "globex"]
PLATFORMS = ["plat1", "plat2", "plat3"]
PERSONS = ["alice", "bob", "mallory"]
EVERYONE = ["tax"] + MERCHANTS + ENTERPRISES + PLATFORMS + PERSONS
SERVES = {"plat1": {"acme"}, "plat2": {"acme"}, "plat3": {"globex"}}
RATES = {"shop": 1300, "taxi": 300}
MONTHS = ["2026-03", "2026-04", "2026-05"]
MONTH_START = {"2026-03": 1773108000000, "2026-04": 1775354400000, "2026-05": 1777946400000}


@dataclass
class ModelInvoice:
    seller: str
    holder: str
    amount: int
    tax: int
    total: int
    lines: list
    month: str
    remaining: int
    status: str = "ISSUED"
    flagged: bool = False
    claim: tuple[str, str] | None = None
    red: int | None = None


@dataclass
class Model:
    role: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    quota: dict[str, int] = field(default_factory=dict)
    used: Counter = field(default_factory=Counter)
    payrefs: set = field(default_factory=set)
    invoices: dict[str, ModelInvoice] = field(default_factory=dict)
    month: str = "2026-03"

    def active(self, name: str, role: str | None = None) -> bool:
        return self.status.get(name) == "active" and (role is None or self.role.get(name) == role)

    def usable(self, name: str) -> bool:
        """A wallet may act unless it is a registered member that is not active."""
        return name not in self.status or self.status[name] == "active"

    def serving(self, platform: str, inv: ModelInvoice) -> bool:
        return (self.active(platform, "platform") and inv.holder in SERVES[platform]
                and self.active(inv.holder, "enterprise"))


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.w = World()
        self.m = Model()
        for name, role in [("tax", "tax"), ("shop", "merchant"), ("taxi", "merchant"), ("acme", "enterprise"),
                           ("globex", "enterprise"), ("plat1", "platform"), ("plat2", "platform"), ("plat3", "platform")]:
            self.m.role[name] = role
            self.m.status[name] = "active"
        self.m.quota = {"shop": 10_000_000, "taxi": 500_000}
        self.kinds: dict[bytes, tuple[str, str | None]] = {}  # tx_id -> (kind, number)
        self.committed = []  # transactions that got a receipt
        self.original: dict[str, tuple] = {}

    # -- submitting ---------------------------------------------------------------------------

    def _submit(self, *pairs):
        """pairs: (tx, predicted_ok, effect). Submits them as one block, checks predictions."""
        receipts = self.w.submit(*(tx for tx, _, _ in pairs))
        assert len(receipts) == len(pairs)
        for (tx, _, _), r in zip(pairs, receipts):
            self.kinds[tx.tx_id] = (tx.kind, tx.number)
            self.committed.append(tx)
        return receipts

    def _one(self, signer, kind, body, predict, effect):
        """Predict against the model, submit, compare, apply the model effect if accepted."""
        before = self.w.snapshot()
        tx = self.w.tx(signer, kind, body)
        expected = predict()
        (r,) = self._submit((tx, expected, effect))
        assert r.ok == expected, f"{kind} by {signer} {body.get('number')}: model says {expected}, ledger {r.status} {r.code} {r.message}"
        if r.ok:
            effect()
        else:
            assert r.code in codes.REJECTION_CODES
            assert self.w.snapshot() == before, "a rejected transaction changed state"

    def _inv(self, data):
        if not self.m.invoices:
            return None, None
        number = data.draw(st.sampled_from(sorted(self.m.invoices)), label="invoice")
        return number, self.m.invoices[number]

    # -- rules ----------------------------------------------------------------------------------

    @rule(data=st.data(), seller=st.sampled_from(MERCHANTS + ["acme", "mallory"]),
          holder=st.sampled_from(PERSONS + ENTERPRISES + MERCHANTS),
          variant=st.sampled_from(["ok"] * 6 + ["bad_amount", "bad_rate", "wrong_seller_id"]),
          ref=st.one_of(st.none(), st.sampled_from(["p1", "p2", "p3", "p4"])),
          qty=st.integers(1, 5), price=st.integers(1, 150_000))
    def issue(self, data, seller, holder, variant, ref, qty, price):
        m = self.m
        rate_seller = seller if seller in RATES else "shop"
        lines = [amounts.build_line("Goods", qty, price, RATES[rate_seller])]
        if variant == "bad_rate":
            lines = [amounts.build_line("Goods", qty, price, 1700)]
        body = self.w.issue_body(seller=rate_seller, holder=holder, lines=lines)
        if ref is not None:
            body["payment_ref"] = ref
        if variant == "bad_amount":
            body["total"] += 1
        if variant == "wrong_seller_id":
            body["seller_tax_id"] = self.w.tax_ids["taxi" if rate_seller == "shop" else "shop"]
        number, total = body["number"], body["total"]

        def predict():
            return (m.active(seller, "merchant") and seller == rate_seller and variant == "ok"
                    and (ref is None or (seller, ref) not in m.payrefs)
                    and m.used[(seller, m.month)] + total <= m.quota[seller])

        def effect():
            m.invoices[number] = ModelInvoice(seller, holder, body["amount"], body["tax"], total,
                                              body["lines"], m.month, total)
            m.used[(seller, m.month)] += total
            if ref is not None:
                m.payrefs.add((seller, ref))
            self.original[number] = (body["amount"], body["tax"], total, body["lines"], body["seller_tax_id"])

        self._one(seller, "issue", body, predict, effect)

    @rule(data=st.data(), signer=st.sampled_from(EVERYONE), to=st.sampled_from(PERSONS + ENTERPRISES))
    def transfer(self, data, signer, to):
        number, inv = self._inv(data)
        if inv is None:
            return
        m = self.m

        def predict():
            return (signer == inv.holder and m.usable(signer) and inv.status == "ISSUED"
                    and not inv.flagged and inv.red is None)

        def effect():
            inv.holder = to

        self._one(signer, "transfer", {"number": number, "to": self.w.pub(to)}, predict, effect)

    def _claimable(self, p, inv):
        return inv.status == "ISSUED" and not inv.flagged and inv.red is None and self.m.serving(p, inv)

    @rule(data=st.data(), p=st.sampled_from(PLATFORMS + ["acme"]), claim=st.sampled_from(["c1", "c2"]))
    def lock(self, data, p, claim):
        number, inv = self._inv(data)
        if inv is None:
            return

        def effect():
            inv.status, inv.claim = "LOCKED", (p, claim)

        self._one(p, "lock", {"number": number, "claim_id": claim},
                  lambda: p in PLATFORMS and self._claimable(p, inv), effect)

    @rule(data=st.data(), p=st.sampled_from(PLATFORMS))
    def unlock(self, data, p):
        number, inv = self._inv(data)
        if inv is None:
            return

        def predict():
            return (inv.status == "LOCKED" and inv.claim[0] == p and self.m.active(p, "platform")
                    and not inv.flagged)

        def effect():
            inv.status, inv.claim = "ISSUED", None

        self._one(p, "unlock", {"number": number}, predict, effect)

    def _reimburse_ok(self, p, inv, claim):
        if inv.status == "LOCKED":
            return inv.claim == (p, claim) and self.m.active(p, "platform") and not inv.flagged
        return self._claimable(p, inv)

    @rule(data=st.data(), p=st.sampled_from(PLATFORMS), claim=st.sampled_from(["c1", "c2"]))
    def reimburse(self, data, p, claim):
        number, inv = self._inv(data)
        if inv is None:
            return

        def effect():
            inv.status, inv.claim = "REIMBURSED", (p, claim)

        self._one(p, "reimburse", {"number": number, "claim_id": claim},
                  lambda: self._reimburse_ok(p, inv, claim), effect)

    @rule(data=st.data(), pa=st.sampled_from(PLATFORMS), pb=st.sampled_from(PLATFORMS))
    def race_two_platforms_in_one_block(self, data, pa, pb):
        """The same invoice reimbursed through two platforms in one block: at most one wins."""
        number, inv = self._inv(data)
        if inv is None:
            return
        a = self.w.tx(pa, "reimburse", {"number": number, "claim_id": "ra"})
        b = self.w.tx(pb, "reimburse", {"number": number, "claim_id": "rb"})
        expect_a = self._reimburse_ok(pa, inv, "ra")
        ra, rb = self._submit((a, None, None), (b, None, None))
        assert ra.ok == expect_a
        if ra.ok:
            inv.status, inv.claim = "REIMBURSED", (pa, "ra")
        expect_b = self._reimburse_ok(pb, inv, "rb")
        assert rb.ok == expect_b
        if rb.ok:
            inv.status, inv.claim = "REIMBURSED", (pb, "rb")
        assert not (ra.ok and rb.ok)

    @rule(data=st.data(), signer=st.sampled_from(ENTERPRISES + PLATFORMS + ["alice"]),
          period=st.sampled_from(MONTHS + ["2026-02", "2026-13"]))
    def declare(self, data, signer, period):
        number, inv = self._inv(data)
        if inv is None:
            return
        m = self.m

        def predict():
            if inv.status != "REIMBURSED" or inv.flagged:
                return False
            if signer == inv.holder:
                who = m.active(signer, "enterprise")
            else:
                who = signer in PLATFORMS and m.serving(signer, inv)
            return who and inv.month <= period <= m.month and period in MONTHS

        def effect():
            inv.status = "DECLARED"

        self._one(signer, "declare", {"number": number, "period": period}, predict, effect)

    def _reverse(self, inv, amount):
        inv.remaining -= amount
        if inv.remaining == 0:
            inv.status = "REVERSED"
        if inv.month == self.m.month:
            key = (inv.seller, inv.month)
            self.m.used[key] = max(0, self.m.used[key] - amount)

    @rule(data=st.data(), signer=st.sampled_from(MERCHANTS + ["alice"]), whole=st.booleans(), part=st.integers(1, 5000))
    def request_red(self, data, signer, whole, part):
        number, inv = self._inv(data)
        if inv is None:
            return
        amount = inv.remaining if whole else part
        if amount == 0:
            amount = 1
        m = self.m

        def predict():
            return (m.active(signer, "merchant") and signer == inv.seller and inv.status == "ISSUED"
                    and not inv.flagged and inv.red is None and 0 < amount <= inv.remaining)

        def effect():
            if inv.holder == signer:
                self._reverse(inv, amount)
            else:
                inv.red = amount

        self._one(signer, "request_red", {"number": number, "amount": amount, "reason": "r"}, predict, effect)

    @rule(data=st.data(), signer=st.sampled_from(PERSONS + ENTERPRISES + MERCHANTS), confirm=st.booleans())
    def answer_red(self, data, signer, confirm):
        number, inv = self._inv(data)
        if inv is None:
            return
        m = self.m

        def predict():
            base = signer == inv.holder and m.usable(signer) and inv.red is not None
            return base and (not inv.flagged if confirm else True)

        def effect():
            amount, inv.red = inv.red, None
            if confirm:
                self._reverse(inv, amount)

        kind = "confirm_red" if confirm else "reject_red"
        self._one(signer, kind, {"number": number}, predict, effect)

    @rule(data=st.data(), signer=st.sampled_from(["tax", "tax", "shop"]), on=st.booleans())
    def flag_or_clear(self, data, signer, on):
        number, inv = self._inv(data)
        if inv is None:
            return

        def predict():
            return signer == "tax" and inv.flagged != on

        def effect():
            inv.flagged = on

        body = {"number": number, "reason": "audit"}
        self._one(signer, "flag" if on else "clear", body, predict, effect)

    @rule(name=st.sampled_from(MERCHANTS + ENTERPRISES + PLATFORMS), status=st.sampled_from(["active", "frozen"]))
    def set_member_status(self, name, status):
        def effect():
            self.m.status[name] = status

        self._one("tax", "update_member", {"key": self.w.pub(name), "status": status}, lambda: True, effect)

    @precondition(lambda self: self.m.month != MONTHS[-1])
    @rule()
    def next_month(self):
        self.m.month = MONTHS[MONTHS.index(self.m.month) + 1]
        self.w.now = MONTH_START[self.m.month]

    @precondition(lambda self: self.committed)
    @rule(data=st.data())
    def replay(self, data):
        tx = data.draw(st.sampled_from(self.committed), label="replayed")
        before = self.w.snapshot()
        assert self.w.submit(tx) == []
        assert self.w.snapshot() == before

    @precondition(lambda self: self.committed)
    @rule(data=st.data(), byte=st.integers(0, 63))
    def forged_signature(self, data, byte):
        tx = data.draw(st.sampled_from(self.committed), label="forged")
        raw = bytearray(tx.raw)
        raw[-41 - 64 + byte] ^= 0x01  # inside the 64 signature bytes
        with pytest.raises(MalformedTransaction) as e:
            decode(bytes(raw))
        assert e.value.code == codes.BAD_SIGNATURE

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def agrees_with_model(self):
        if not hasattr(self, "m"):
            return
        for number, inv in self.m.invoices.items():
            rec = self.w.invoice(number)
            assert rec is not None
            assert (rec.status, rec.holder, rec.remaining, rec.flagged) == (
                inv.status, self.w.pub(inv.holder), inv.remaining, inv.flagged), number
            assert (rec.red_request is None) == (inv.red is None)

    @invariant()
    def amounts_never_change(self):
        if not hasattr(self, "m"):
            return
        for number, (amount, tax, total, lines, seller_tax_id) in self.original.items():
            rec = self.w.invoice(number)
            assert (rec.amount, rec.tax, rec.total, rec.lines, rec.seller_tax_id) == (amount, tax, total, lines, seller_tax_id)
            assert 0 <= rec.remaining <= rec.total
            assert rec.remaining + rec.reversed_amount == rec.total

    @invariant()
    def at_most_one_reimbursement_and_declaration(self):
        if not hasattr(self, "m"):
            return
        ok = Counter()
        for r in self.w.receipts:
            kind, number = self.kinds.get(r.tx_id, (None, None))
            if r.ok and kind in ("reimburse", "declare"):
                ok[(kind, number)] += 1
        assert all(c == 1 for c in ok.values()), ok


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
