#!/usr/bin/env python3
"""The invoice life cycle on a real 4-node chainvoice network (what `make run` shows).

Creates a fresh network in ./demo-net (keys, consortium CA, TLS certificates, genesis), starts
four node processes, and walks through: the tax bureau registers the cast; a shop's payment
triggers an invoice into a person's wallet; the retried payment callback gets the same invoice;
the person hands it to her employer; a reimbursement platform locks and reimburses it; the
employer declares it; a second platform tries to reimburse it again and the chain refuses
(DOUBLE_REIMBURSEMENT); a taxi fare is partly reversed with a red letter; the tax bureau flags an
invoice; a fake invoice is exposed by the public check; and a proof fetched from one node is
verified offline with nothing but the consortium's keys. The network keeps running afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chainvoice import crypto, localnet  # noqa: E402
from chainvoice.chain.genesis import Genesis  # noqa: E402
from chainvoice.chain.proof import verify_bundle  # noqa: E402
from chainvoice.client import ClientError, NodeClient, new_invoice_number  # noqa: E402
from chainvoice.ledger import amounts, calendar  # noqa: E402

BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"


def color(text: str, c: str) -> str:
    return f"{c}{text}{RESET}" if sys.stdout.isatty() else text


def step(title: str) -> None:
    print(f"\n{color('▶ ' + title, BOLD)}")


def say(text: str) -> None:
    print(f"  {text}")


def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f} yuan"


class Demo:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.nodes = localnet.load_network(directory)
        self.clients = [NodeClient(n.api_url) for n in self.nodes]
        self.ids = {i["name"]: i for i in json.loads((directory / "identities.json").read_text())}
        self.keys = {name: crypto.SigningKey.load(directory / i["key_file"]) for name, i in self.ids.items()}
        self.genesis = Genesis.loads((directory / "genesis.json").read_text())
        self._next = 0
        self.latencies: list[float] = []

    def pub(self, name: str) -> bytes:
        return self.keys[name].public_key

    def client(self) -> tuple[str, NodeClient]:
        """Spread submissions over the nodes: any node accepts any transaction."""
        self._next += 1
        i = self._next % len(self.clients)
        return self.nodes[i].id, self.clients[i]

    def do(self, who: str, kind: str, body: dict, *, expect: str = "ok", what: str = "") -> dict:
        node_id, client = self.client()
        start = time.perf_counter()
        _, answer = client.sign_and_submit(self.keys[who], kind, body, timeout_s=20)
        self.latencies.append(time.perf_counter() - start)
        r = answer["receipt"]
        outcome = "ok" if r["status"] == "ok" else r["code"]
        label = what or kind
        if outcome == "ok":
            mark = color("✓", GREEN)
            detail = ""
        else:
            mark = color("✗ rejected", RED) if expect != "ok" else color("✗ UNEXPECTED", RED)
            detail = f" {outcome}: {r['message']}"
        where = f"[{who} → {node_id}, height {answer['height']}]"
        say(f"{mark} {label}{detail}  {color(where, DIM)}")
        if outcome != expect:
            raise SystemExit(f"demo expected {expect}, got {outcome}: {r['message']}")
        return answer

    def run(self) -> None:
        tax = self.ids

        step("The tax bureau registers merchants, enterprises and reimbursement platforms")
        for name in ("shop", "taxi", "acme", "globex", "expensepro", "claimit"):
            i = tax[name]
            body = {"key": self.pub(name), "role": i["role"], "name": i["display"]}
            if "tax_id" in i:
                body["tax_id"] = i["tax_id"]
            if i["role"] == "merchant":
                body.update(taxpayer_type=i["taxpayer_type"], monthly_quota=i["monthly_quota"])
            if "serves" in i:
                body["serves"] = [self.pub(s) for s in i["serves"]]
            self.do("tax", "register_member", body, what=f"register {i['role']} {i['display']}")

        step("Transaction is invoicing: Alice pays the shop; the payment callback issues her invoice")
        lines = [amounts.build_line("Ergonomic office chair", 1, 899_00, 1300),
                 amounts.build_line("Delivery", 1, 30_00, 600)]
        amount, taxes, total = amounts.totals(lines)
        number = new_invoice_number()
        issue = {"number": number, "seller_tax_id": tax["shop"]["tax_id"], "seller_name": tax["shop"]["display"],
                 "buyer_name": "Alice Chen", "holder": self.pub("alice"), "lines": lines, "amount": amount,
                 "tax": taxes, "total": total, "payment_ref": "wxpay-4200001234202611250001"}
        self.do("shop", "issue", issue, what=f"issue {number}: {yuan(amount)} + VAT {yuan(taxes)} = {yuan(total)}")
        wallet = self.clients[0].wallet(self.pub("alice"))
        say(f"Alice's wallet now holds {[i['number'] for i in wallet['invoices']]}")

        step("The payment callback is retried: the chain answers with the invoice already issued")
        retry = dict(issue, number=new_invoice_number())
        answer = self.do("shop", "issue", retry, expect="DUPLICATE_PAYMENT_REF", what="issue again for the same payment")
        say(f"the receipt points at invoice {answer['receipt']['reference']['number']} — no second invoice exists")

        step("Alice hands the invoice to her employer; a platform reimburses it; Acme declares it")
        self.do("alice", "transfer", {"number": number, "to": self.pub("acme")}, what="transfer to Acme Robotics")
        self.do("expensepro", "lock", {"number": number, "claim_id": "EXP-2026-0042"}, what="ExpensePro locks it for claim EXP-2026-0042")
        self.do("expensepro", "reimburse", {"number": number, "claim_id": "EXP-2026-0042"}, what="ExpensePro reimburses claim EXP-2026-0042")
        period = calendar.month_of(int(time.time() * 1000))
        self.do("acme", "declare", {"number": number, "period": period}, what=f"Acme declares it for {period}")

        step("Double reimbursement: the same invoice through a second platform")
        self.do("claimit", "reimburse", {"number": number, "claim_id": "CLM-77"}, expect="DOUBLE_REIMBURSEMENT",
                what="ClaimIt reimburses the same invoice")
        self.do("acme", "declare", {"number": number, "period": period}, expect="DOUBLE_DECLARATION", what="declare it twice")
        hist = self.clients[2].invoice(number)
        say(f"history of {number} on {self.nodes[2].id} (the attempts stay on the chain as evidence):")
        for e in hist["history"]:
            say(f"    height {e['height']:>3}  {e['kind']:<10} {e['status']}{' ' + e['code'] if e['code'] else ''}")

        step("Red letter: a taxi fare is partly refunded")
        fare_lines = [amounts.build_line("Taxi fare Futian → Bao'an airport", 1, 118_00, 300)]
        a2, t2, tot2 = amounts.totals(fare_lines)
        fare = new_invoice_number()
        self.do("taxi", "issue", {"number": fare, "seller_tax_id": tax["taxi"]["tax_id"], "seller_name": tax["taxi"]["display"],
                                  "buyer_name": "Bob Li", "holder": self.pub("bob"), "lines": fare_lines,
                                  "amount": a2, "tax": t2, "total": tot2}, what=f"issue fare {fare}: {yuan(tot2)}")
        self.do("taxi", "request_red", {"number": fare, "amount": 20_00, "reason": "detour refunded"}, what="request a 20.00 yuan red letter")
        self.do("bob", "confirm_red", {"number": fare}, what="Bob confirms")
        s = self.clients[1].invoice(fare)["state"]
        say(f"remaining on {fare}: {yuan(s['remaining'])} of {yuan(s['total'])}")

        step("Tax control: the bureau flags a suspicious invoice; it can no longer be claimed")
        self.do("bob", "transfer", {"number": fare, "to": self.pub("globex")}, what="Bob hands the fare to Globex")
        self.do("tax", "flag", {"number": fare, "reason": "fare amount under review"}, what="tax bureau flags it")
        self.do("claimit", "reimburse", {"number": fare, "claim_id": "CLM-78"}, expect="FLAGGED", what="ClaimIt tries to reimburse it")

        step("Anyone can check an invoice: a real one, a tampered total, and a fake number")
        today = calendar.date_of(int(time.time() * 1000))
        for label, (num, total_) in {"the real invoice": (number, total), "wrong total": (number, total + 100_00),
                                     "a fake number": (new_invoice_number(), 500_00)}.items():
            c = self.clients[3].check(num, today, total_)
            say(f"{label:<17} → {c['result']}{' (' + c['status'] + ')' if c.get('status') else ''}")

        step(f"A proof from {self.nodes[1].id}, verified offline with only the consortium's keys")
        bundle = self.clients[1].proof(number)
        v = verify_bundle(bundle, self.genesis.consortium, genesis_hash=self.genesis.block().hash, number=number)
        say(f"{color('✓ VERIFIED', GREEN) if v.ok else color('✗', RED)} {v.reason}; "
            f"{len(bundle['certificate']['votes'])} commit signatures, {len(bundle['siblings'])} tree siblings")
        tampered = json.loads(json.dumps(bundle))
        tampered["state"]["status"] = "ISSUED"
        tampered["value"] = tampered["value"].replace("4445434c41524544", "495353554544")  # a node lying about the status
        v2 = verify_bundle(tampered, self.genesis.consortium, genesis_hash=self.genesis.block().hash)
        say(f"the same bundle with the status edited by a lying node: {color('✗ REFUSED', RED)} ({v2.reason})")
        proof_file = self.dir / "proof.json"
        proof_file.write_text(json.dumps(bundle, indent=2))
        say(f"saved to {proof_file}; verify it yourself with:")
        say(f"  .venv/bin/chainvoice verify {proof_file} --consortium {self.dir / 'genesis.json'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=ROOT / "demo-net")
    ap.add_argument("--base-port", type=int, default=localnet.DEFAULT_BASE_PORT)
    args = ap.parse_args()
    started = time.time()
    directory: Path = args.dir.resolve()

    step(f"Creating a 4-node network in {directory}")
    if (directory / "network.json").exists():
        for e in localnet.load_network(directory):
            localnet.stop_node(e)
    net = localnet.init_network(directory, 4, args.base_port, force=True)
    for n in net["nodes"]:
        say(f"{n['id']:<11} {n['role']:<9} {n['api_url']}")
    entries = localnet.load_network(directory)
    try:
        for e in entries:
            localnet.start_node(e)
        for e in entries:
            NodeClient(e.api_url).wait_until_up(60)
    except localnet.NetworkError as exc:
        for e in entries:
            localnet.stop_node(e)
        raise SystemExit(f"the nodes did not start: {exc}")
    except ClientError:
        for e in entries:
            localnet.stop_node(e)
        raise SystemExit("the nodes did not start; see demo-net/*/node.log")
    say(f"4 node processes up (mutual TLS between them, LevelDB stores) after {time.time() - started:.1f} s")

    demo = Demo(directory)
    try:
        demo.run()
    except ClientError as exc:
        raise SystemExit(f"demo failed talking to a node: {exc}") from None

    lat = sorted(demo.latencies)
    step("Done")
    say(f"{len(lat)} transactions, submit→commit median {lat[len(lat) // 2] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms; "
        f"whole demo {time.time() - started:.1f} s")
    say("the network is still running:")
    for e in entries:
        say(f"  {e.id:<11} {e.api_url}   (verification page at {e.api_url}/)")
    default = directory == (ROOT / "demo-net").resolve()
    say(f"try:  .venv/bin/chainvoice net status {directory}")
    say("stop: make stop" if default else f"stop: .venv/bin/chainvoice net down {directory}")


if __name__ == "__main__":
    main()
