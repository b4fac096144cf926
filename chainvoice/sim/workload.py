"""Clients: real, signed invoice life cycles submitted to random replicas.

A life cycle is a list of steps; a step's transactions go out together (to different replicas
when there are several) and the next step starts once they are all reported committed, as a
real client waits for ``?wait=commit``. A client whose transaction is not committed in time
resubmits the same bytes to another replica (the ledger must treat the copy as a replay).

Cycles include the frauds the ledger must stop: the same invoice reimbursed through two
platforms submitted to two different replicas at once, a lock racing a reimbursement, double
declaration, a retried payment callback, moves of reversed (red-letter) and flagged invoices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..chain.chain import BlockCommit
from ..consensus.actions import Dropped
from ..ledger import amounts, calendar
from ..ledger.transaction import Transaction, sign
from .cast import CHAIN_ID, actor_key, tax_id
from .prng import Prng
from .simulation import SimNode, Simulation

Step = list[tuple[str, str, dict[str, Any]]]  # (signer, kind, body) sent together


@dataclass
class Cycle:
    name: str
    steps: list[Callable[[], Step]]
    index: int = 0
    waiting: set[bytes] = field(default_factory=set)


class Workload:
    def __init__(self, sim: Simulation, prng: Prng, *, retry_ms: int = 1500, max_retries: int = 3) -> None:
        self.sim = sim
        self.prng = prng
        self.retry_ms = retry_ms
        self.max_retries = max_retries
        self._seq = prng.randint(1, 10**12)
        self._cycles: dict[bytes, Cycle] = {}  # waiting tx_id -> its cycle
        self._txs: dict[bytes, Transaction] = {}
        self.submitted = 0
        self.probes: list[bytes] = []
        self.double_claims: list[str] = []  # invoice numbers targeted by racing claims
        sim.commit_listeners.append(self._on_commit)
        sim.drop_listeners.append(self._on_dropped)

    # -- scheduling -------------------------------------------------------------------------------

    def start_cycles(self, count: int, start_ms: int, end_ms: int) -> None:
        makers = [self._expense, self._double_reimbursement, self._red_letter, self._globex, self._flagged,
                  self._payment_retry, self._lock_race]
        for i in range(count):
            maker = makers[i % len(makers)] if i < len(makers) else self.prng.choice(makers)
            at = self.prng.randint(start_ms, max(start_ms, end_ms))
            cycle = maker()
            self.sim.schedule(at, lambda c=cycle: self._run_step(c))

    def trickle(self, mean_gap_ms: int, start_ms: int, end_ms: int) -> None:
        """Single issues to random replicas, so that a block is usually in flight."""
        at = start_ms
        while mean_gap_ms > 0:
            at += self.prng.randint(mean_gap_ms // 2, mean_gap_ms * 3 // 2)
            if at >= end_ms:
                break
            self.sim.schedule(at, lambda: self._run_step(Cycle("trickle", [lambda: self._issue("shop", "alice")])))

    def probe(self, names: list[str]) -> list[bytes]:
        """One fresh issue per named replica (the liveness check waits for all of them)."""
        out = []
        for name in names:
            (signer, kind, body), = self._issue("shop", "alice")
            tx = self._sign(signer, kind, body)
            self.probes.append(tx.tx_id)
            out.append(tx.tx_id)
            self.sim.submit(name, [tx])
        return out

    def _run_step(self, cycle: Cycle) -> None:
        if cycle.index >= len(cycle.steps):
            return
        step = cycle.steps[cycle.index]()
        cycle.index += 1
        live = [n.name for n in self.sim.nodes if n.up]
        if not live:
            return
        targets = self.prng.sample(live, len(step)) if len(step) <= len(live) else [self.prng.choice(live) for _ in step]
        cycle.waiting = set()
        for (signer, kind, body), target in zip(step, targets):
            tx = self._sign(signer, kind, body)
            cycle.waiting.add(tx.tx_id)
            self._cycles[tx.tx_id] = cycle
            self._txs[tx.tx_id] = tx
            self._submit(tx, target, 0)

    def _submit(self, tx: Transaction, target: str, attempt: int) -> None:
        if tx.tx_id in self.sim.reported:
            return
        self.submitted += 1
        self.sim.submit(target, [tx])
        if attempt < self.max_retries:
            def retry() -> None:
                live = [n.name for n in self.sim.nodes if n.up and n.name != target] or [target]
                self._submit(tx, self.prng.choice(live), attempt + 1)
            self.sim.schedule(self.sim.now + self.retry_ms, retry)

    def _on_commit(self, node: SimNode, commit: BlockCommit) -> None:
        if not node.honest:
            return
        for tx in commit.txs:
            cycle = self._cycles.pop(tx.tx_id, None)
            if cycle is not None:
                cycle.waiting.discard(tx.tx_id)
                if not cycle.waiting:
                    think = self.prng.randint(1, 60)
                    self.sim.schedule(self.sim.now + think, lambda c=cycle: self._run_step(c))

    def _on_dropped(self, node: SimNode, dropped: Dropped) -> None:
        pass  # a replay of a committed transaction: the client already has (or will get) its receipt

    # -- life cycles ------------------------------------------------------------------------------

    def _expense(self) -> Cycle:
        """A person's invoice handed to her employer, locked, reimbursed and declared."""
        n = self._number()
        claim = f"C{self._seq}"
        return Cycle("expense", [
            lambda: self._issue("shop", "alice", n),
            lambda: [("alice", "transfer", {"number": n, "to": actor_key("acme").public_key})],
            lambda: [("plat1", "lock", {"number": n, "claim_id": claim})],
            lambda: [("plat1", "reimburse", {"number": n, "claim_id": claim})],
            lambda: [("acme", "declare", {"number": n, "period": self._period()})],
        ])

    def _double_reimbursement(self) -> Cycle:
        """The same invoice claimed through two platforms at two replicas at once: one must fail."""
        n = self._number()
        self.double_claims.append(n)
        return Cycle("double", [
            lambda: self._issue("taxi", "bob", n),
            lambda: [("bob", "transfer", {"number": n, "to": actor_key("acme").public_key})],
            lambda: [("plat1", "reimburse", {"number": n, "claim_id": "A-" + n[-6:]}),
                     ("plat2", "reimburse", {"number": n, "claim_id": "B-" + n[-6:]})],
            lambda: [("acme", "declare", {"number": n, "period": self._period()})],
        ])

    def _lock_race(self) -> Cycle:
        """One platform locks while another reimburses directly, then both try to finish."""
        n = self._number()
        self.double_claims.append(n)
        return Cycle("lock-race", [
            lambda: self._issue("shop", "bob", n),
            lambda: [("bob", "transfer", {"number": n, "to": actor_key("acme").public_key})],
            lambda: [("plat1", "lock", {"number": n, "claim_id": "L-" + n[-6:]}),
                     ("plat2", "reimburse", {"number": n, "claim_id": "R-" + n[-6:]})],
            lambda: [("plat1", "reimburse", {"number": n, "claim_id": "L-" + n[-6:]}),
                     ("plat2", "reimburse", {"number": n, "claim_id": "R2-" + n[-6:]})],
        ])

    def _red_letter(self) -> Cycle:
        """A sale undone: the seller requests a full red reversal, the holder confirms; the
        reversed invoice can then no longer move."""
        n = self._number()
        holder = self.prng.choice(["carol", "dave"])
        return Cycle("red", [
            lambda: self._issue("shop", holder, n),
            lambda: [("shop", "request_red", {"number": n, "amount": self._total("shop"), "reason": "returned"})],
            lambda: [(holder, "confirm_red", {"number": n})],
            lambda: [(holder, "transfer", {"number": n, "to": actor_key("acme").public_key})],
        ])

    def _globex(self) -> Cycle:
        """Issued straight to an enterprise, reimbursed in one step, declared twice."""
        n = self._number()
        return Cycle("globex", [
            lambda: self._issue("shop", "globex", n),
            lambda: [("plat3", "reimburse", {"number": n, "claim_id": "G-" + n[-6:]})],
            lambda: [("globex", "declare", {"number": n, "period": self._period()}),
                     ("plat3", "declare", {"number": n, "period": self._period()})],
        ])

    def _flagged(self) -> Cycle:
        """The tax authority stops an invoice, a move is refused, the flag is lifted, it moves."""
        n = self._number()
        return Cycle("flag", [
            lambda: self._issue("taxi", "dave", n),
            lambda: [("tax", "flag", {"number": n, "reason": "suspicious"})],
            lambda: [("dave", "transfer", {"number": n, "to": actor_key("acme").public_key})],
            lambda: [("tax", "clear", {"number": n, "reason": "checked"})],
            lambda: [("dave", "transfer", {"number": n, "to": actor_key("acme").public_key})],
        ])

    def _payment_retry(self) -> Cycle:
        """Transaction-is-invoicing: a payment callback retried with a new number is refused."""
        n1, n2 = self._number(), self._number()
        ref = f"PAY{self._seq}"
        return Cycle("payref", [
            lambda: self._issue("shop", "carol", n1, payment_ref=ref),
            lambda: self._issue("shop", "carol", n2, payment_ref=ref),
        ])

    # -- helpers ----------------------------------------------------------------------------------

    def _issue(self, seller: str, holder: str, number: str | None = None, **extra: Any) -> Step:
        lines = self._lines(seller)
        amount, tax, total = amounts.totals(lines)
        body = {"number": number or self._number(), "seller_tax_id": tax_id(seller), "seller_name": seller.title(),
                "buyer_name": holder.title(), "holder": actor_key(holder).public_key, "lines": lines,
                "amount": amount, "tax": tax, "total": total, **extra}
        return [(seller, "issue", body)]

    def _lines(self, seller: str) -> list[dict[str, Any]]:
        rate = 1300 if seller == "shop" else 300
        return [amounts.build_line("Office chair", 2, 45_000, rate), amounts.build_line("Delivery", 1, 1_999, rate)]

    def _total(self, seller: str) -> int:
        return amounts.totals(self._lines(seller))[2]

    def _number(self) -> str:
        self._seq += 1
        year = calendar.beijing_date(self.sim.now)[0] % 100
        return f"{year:02d}441{self._seq % 10**15:015d}"

    def _period(self) -> str:
        return calendar.month_of(self.sim.now)

    def _sign(self, signer: str, kind: str, body: dict[str, Any]) -> Transaction:
        return sign(actor_key(signer), CHAIN_ID, kind, body, self.prng.bytes(16))
