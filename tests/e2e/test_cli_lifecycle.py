"""The invoice life cycle through the `chainvoice` CLI against a real 4-node network."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(240)


def cli(net, *args: str, ok: bool = True) -> dict:
    proc = subprocess.run([sys.executable, "-m", "chainvoice", "--json", *args], capture_output=True, text=True,
                          timeout=60, cwd=net.directory)
    assert "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if ok:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    else:
        assert proc.returncode != 0, (args, proc.stdout)
    return out


def test_life_cycle_through_the_cli(network):
    net = network
    ids = net.identities
    url0, url1, url2 = (e.api_url for e in net.entries[:3])
    key = lambda name: ids[name]["key_file"]  # noqa: E731 (paths relative to the network dir)

    cli(net, "member", "register", "--key", key("tax"), "--node", url0, "--member", key("shop"), "--role", "merchant",
        "--name", "Shop", "--tax-id", ids["shop"]["tax_id"], "--taxpayer-type", "general", "--quota", "100000000")
    cli(net, "member", "register", "--key", key("tax"), "--node", url1, "--member", key("acme"), "--role", "enterprise",
        "--name", "Acme", "--tax-id", ids["acme"]["tax_id"])
    for p in ("expensepro", "claimit"):
        cli(net, "member", "register", "--key", key("tax"), "--node", url2, "--member", key(p), "--role", "platform",
            "--name", p, "--serves", key("acme"))

    issued = cli(net, "invoice", "issue", "--key", key("shop"), "--node", url1, "--seller-tax-id", ids["shop"]["tax_id"],
                 "--seller-name", "Shop", "--buyer-name", "Alice", "--holder", key("alice"),
                 "--line", "Chair:2:45000:1300", "--line", "Delivery:1:1999:600", "--payment-ref", "pay-e2e-1")
    number = issued["receipt"]["reference"]["number"]
    assert issued["body"]["total"] == 2 * 45000 + 1999 + 11700 + 120

    retry = cli(net, "invoice", "issue", "--key", key("shop"), "--node", url2, "--seller-tax-id", ids["shop"]["tax_id"],
                "--seller-name", "Shop", "--buyer-name", "Alice", "--holder", key("alice"),
                "--line", "Chair:2:45000:1300", "--payment-ref", "pay-e2e-1", ok=False)
    assert retry["receipt"]["code"] == "DUPLICATE_PAYMENT_REF" and retry["receipt"]["reference"]["number"] == number

    cli(net, "invoice", "transfer", "--key", key("alice"), "--node", url0, "--number", number, "--to", key("acme"))
    cli(net, "invoice", "reimburse", "--key", key("expensepro"), "--node", url1, "--number", number, "--claim", "C-1")
    period = cli(net, "invoice", "show", "--node", url2, "--number", number)["state"]
    cli(net, "invoice", "declare", "--key", key("acme"), "--node", url2, "--number", number,
        "--period", _month(period["issued_at_ms"]))
    double = cli(net, "invoice", "reimburse", "--key", key("claimit"), "--node", url0, "--number", number,
                 "--claim", "C-2", ok=False)
    assert double["receipt"]["code"] == "DOUBLE_REIMBURSEMENT"

    shown = cli(net, "invoice", "history", "--node", url1, "--number", number)
    assert [(e["kind"], e["status"], e["code"]) for e in shown["history"]] == [
        ("issue", "ok", ""), ("issue", "rejected", "DUPLICATE_PAYMENT_REF"), ("transfer", "ok", ""),
        ("reimburse", "ok", ""), ("declare", "ok", ""), ("reimburse", "rejected", "DOUBLE_REIMBURSEMENT")]

    verdict = cli(net, "verify", f"{url2}/v1/invoices/{number}/proof", "--consortium", "genesis.json", "--number", number)
    assert verdict["verified"] and verdict["status"] == "DECLARED"

    # errors are one clear line and a non-zero exit, never a stack trace
    bad = cli(net, "invoice", "transfer", "--key", "keys/missing.key", "--node", url0, "--number", number, "--to",
              key("bob"), ok=False)
    assert "error" in bad or bad == {}
    unreachable = cli(net, "invoice", "show", "--node", "http://127.0.0.1:1", "--number", number, ok=False)
    assert unreachable["error"]["code"] == "UNREACHABLE"


def _month(ms: int) -> str:
    from chainvoice.ledger import calendar

    return calendar.month_of(ms)
