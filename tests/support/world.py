"""A small in-memory world for ledger tests: named actors, one block per submit, controlled time."""

from __future__ import annotations

import hashlib
from typing import Any

from chainvoice import codec, crypto
from chainvoice.chain.execution import execute
from chainvoice.ledger import amounts, taxid
from chainvoice.ledger.records import ACTIVE, Member, Receipt
from chainvoice.ledger.rules import BlockContext
from chainvoice.ledger.state import DecodedValues, LedgerState, MemoryState
from chainvoice.ledger.transaction import Transaction, sign

CHAIN_ID = "cv-test"
# 2026-03-10 10:00 Beijing time.
T0 = 1773108000000


def make_tax_id(seed: int) -> str:
    """A valid unified social credit code derived from ``seed``."""
    first17 = f"914403{seed:011d}"
    return first17 + taxid.check_character(first17)


def key_of(name: str) -> crypto.SigningKey:
    return crypto.SigningKey.from_seed(hashlib.sha256(b"world/" + name.encode()).digest())


class World:
    """Committed state in memory; every ``submit`` is one block."""

    def __init__(self, *, standard: bool = True) -> None:
        self.state = MemoryState()
        self.committed: set[bytes] = set()
        self.height = 0
        self.now = T0
        self._nonce = 0
        self.receipts: list[Receipt] = []
        # As a node's chain does, blocks read back recent values through a memo of their decoded
        # form; a small one, so that reads both hit it and fall back to decoding.
        self.decoded = DecodedValues(limit=8)
        self.tax_ids: dict[str, str] = {}
        genesis = LedgerState(self.state)
        genesis.put_member(Member(key=self.pub("tax"), role="tax", name="Shenzhen Tax Bureau",
                                  status=ACTIVE, last_tx=b"\x00" * 32))
        self.state.apply(genesis.writes())
        if standard:
            self.register_standard()

    # -- actors ---------------------------------------------------------------------------

    def key(self, name: str) -> crypto.SigningKey:
        return key_of(name)

    def pub(self, name: str) -> bytes:
        return key_of(name).public_key

    def tx(self, signer: str, kind: str, body: dict[str, Any]) -> Transaction:
        self._nonce += 1
        return sign(self.key(signer), CHAIN_ID, kind, body, self._nonce.to_bytes(16, "big"))

    # -- blocks ---------------------------------------------------------------------------

    def submit(self, *txs: Transaction, at: int | None = None) -> list[Receipt]:
        """Execute ``txs`` as the next block and commit it; replays are left out (no receipt)."""
        if at is not None:
            self.now = at
        self.height += 1
        result = execute(self.state, self.committed.__contains__, txs, BlockContext(self.height, self.now), self.decoded)
        self.state.apply(result.writes)
        self.committed.update(t.tx_id for t in result.txs)
        self.receipts.extend(result.receipts)
        self.now += 1000
        return result.receipts

    def do(self, signer: str, kind: str, body: dict[str, Any], **kw: Any) -> Receipt:
        (receipt,) = self.submit(self.tx(signer, kind, body), **kw)
        return receipt

    def ok(self, signer: str, kind: str, body: dict[str, Any], **kw: Any) -> Receipt:
        r = self.do(signer, kind, body, **kw)
        assert r.ok, f"{kind} by {signer} rejected: {r.code} {r.message}"
        return r

    def rejected(self, code: str, signer: str, kind: str, body: dict[str, Any], **kw: Any) -> Receipt:
        before = dict(self.state.values)
        r = self.do(signer, kind, body, **kw)
        assert not r.ok and r.code == code, f"{kind} by {signer}: expected {code}, got {r.status} {r.code} {r.message}"
        assert self.state.values == before, "a rejected transaction changed state"
        return r

    # -- reading --------------------------------------------------------------------------

    def invoice(self, number: str):
        return LedgerState(self.state).invoice(number)

    def member(self, name: str):
        return LedgerState(self.state).member(self.pub(name))

    def snapshot(self) -> dict[bytes, bytes]:
        return dict(self.state.values)

    # -- a standard cast ------------------------------------------------------------------

    def register_standard(self) -> None:
        """Merchants (general, small), enterprises, platforms; persons need no registration."""
        for i, name in enumerate(["shop", "taxi", "acme", "globex", "dup"], start=1):
            self.tax_ids[name] = make_tax_id(i)
        self.ok("tax", "register_member", {"key": self.pub("shop"), "role": "merchant", "name": "Shenzhen Shop Ltd",
                                           "tax_id": self.tax_ids["shop"], "taxpayer_type": "general",
                                           "monthly_quota": 10_000_000})
        self.ok("tax", "register_member", {"key": self.pub("taxi"), "role": "merchant", "name": "Taxi Co",
                                           "tax_id": self.tax_ids["taxi"], "taxpayer_type": "small",
                                           "monthly_quota": 500_000})
        for ent in ("acme", "globex"):
            self.ok("tax", "register_member", {"key": self.pub(ent), "role": "enterprise",
                                               "name": ent.title() + " Corp", "tax_id": self.tax_ids[ent]})
        # acme uses two reimbursement platforms; globex one.
        self.ok("tax", "register_member", {"key": self.pub("plat1"), "role": "platform", "name": "ExpensePro",
                                           "serves": [self.pub("acme")]})
        self.ok("tax", "register_member", {"key": self.pub("plat2"), "role": "platform", "name": "ClaimIt",
                                           "serves": [self.pub("acme")]})
        self.ok("tax", "register_member", {"key": self.pub("plat3"), "role": "platform", "name": "GlobexPay",
                                           "serves": [self.pub("globex")]})

    _seq = 0

    def number(self, year: int = 26) -> str:
        World._seq += 1
        return f"{year:02d}44{1}{World._seq:015d}"

    def issue_body(self, *, seller: str = "shop", holder: str = "alice", number: str | None = None,
                   lines: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
        if lines is None:
            rate = 1300 if seller == "shop" else 300
            lines = [amounts.build_line("Office chair", 2, 45_000, rate),
                     amounts.build_line("Delivery", 1, 1_999, rate)]
        amount, tax, total = amounts.totals(lines)
        body = {"number": number or self.number(), "seller_tax_id": self.tax_ids[seller],
                "seller_name": seller.title(), "buyer_name": holder.title(), "holder": self.pub(holder),
                "lines": lines, "amount": amount, "tax": tax, "total": total}
        body.update(extra)
        return body

    def issued(self, holder: str = "alice", seller: str = "shop", **extra: Any) -> str:
        body = self.issue_body(seller=seller, holder=holder, **extra)
        self.ok(seller, "issue", body)
        return body["number"]

    def held_by_acme(self) -> str:
        """An invoice issued to a person and handed to her employer acme."""
        number = self.issued("alice")
        self.ok("alice", "transfer", {"number": number, "to": self.pub("acme")})
        return number


def decoded(raw: bytes) -> Any:
    return codec.decode(raw)
