#!/usr/bin/env python3
"""Core micro-benchmarks: signatures, canonical encoding, applying transactions, the state tree.

Prints figures; it is not a test and asserts nothing about speed.

    python scripts/bench_core.py                 # core figures + state tree at 10^4, 10^5
    python scripts/bench_core.py --smt 10000,100000,1000000
    python scripts/bench_core.py --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chainvoice import codec, crypto  # noqa: E402
from chainvoice.ledger import amounts, rules  # noqa: E402
from chainvoice.ledger.records import ACTIVE, Member  # noqa: E402
from chainvoice.ledger.rules import BlockContext  # noqa: E402
from chainvoice.ledger.state import LedgerState, MemoryState  # noqa: E402
from chainvoice.ledger.transaction import decode, sign  # noqa: E402

CHAIN = "cv-bench"
T0 = 1773108000000  # 2026-03-10 10:00 Beijing


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def key(name: str) -> crypto.SigningKey:
    return crypto.SigningKey.from_seed(hashlib.sha256(name.encode()).digest())


def tax_id(i: int) -> str:
    from chainvoice.ledger import taxid
    first = f"914403{i:011d}"
    return first + taxid.check_character(first)


def setup_state() -> MemoryState:
    state = MemoryState()
    view = LedgerState(state)
    view.put_member(Member(key(f"merchant").public_key, "merchant", "Shop", ACTIVE, b"\0" * 32,
                           tax_id=tax_id(1), taxpayer_type="general", monthly_quota=10**15))
    view.put_member(Member(key("acme").public_key, "enterprise", "Acme", ACTIVE, b"\0" * 32, tax_id=tax_id(2)))
    view.put_member(Member(key("plat").public_key, "platform", "Plat", ACTIVE, b"\0" * 32,
                           serves=[key("acme").public_key]))
    state.apply(view.writes())
    return state


def issue_body(i: int) -> dict:
    lines = [amounts.build_line("Taxi ride", 1, 3_850, 1300), amounts.build_line("Toll", 1, 1_000, 900)]
    a, t, total = amounts.totals(lines)
    return {"number": f"2644100{i:013d}", "seller_tax_id": tax_id(1), "seller_name": "Shop",
            "buyer_name": "Acme Corp", "buyer_tax_id": tax_id(2), "holder": key("acme").public_key,
            "lines": lines, "amount": a, "tax": t, "total": total, "payment_ref": f"pay-{i}"}


def bench_core(n_apply: int) -> dict:
    out: dict = {}
    k = key("bench")
    msg = os.urandom(300)
    sig = k.sign(msg)
    out["ed25519_sign_per_s"] = rate(lambda: k.sign(msg), 5000)
    out["ed25519_verify_per_s"] = rate(lambda: crypto.verify(k.public_key, msg, sig), 5000)
    out["ed25519_verify_transaction_per_s"] = rate(lambda: crypto.verify_transaction(k.public_key, msg, sig), 5000)

    merchant = key("merchant")
    sample = sign(merchant, CHAIN, "issue", issue_body(0), b"\0" * 16)
    value = codec.decode(sample.raw)
    out["tx_bytes_issue"] = len(sample.raw)
    out["encode_per_s"] = rate(lambda: codec.encode(value), 20000)
    out["decode_per_s"] = rate(lambda: codec.decode(sample.raw), 20000)
    out["tx_decode_and_verify_per_s"] = rate(lambda: decode(sample.raw, chain_id=CHAIN), 5000)
    out["tx_decode_no_sig_per_s"] = rate(lambda: decode(sample.raw, chain_id=CHAIN, check_signature=False), 20000)
    small = sign(key("plat"), CHAIN, "reimburse", {"claim_id": "c1", "number": "26441000000000000000"}, b"\1" * 16)
    out["tx_decode_no_sig_reimburse_per_s"] = rate(lambda: decode(small.raw, chain_id=CHAIN, check_signature=False), 20000)

    # Applying transactions, signatures already checked: each apply in a fresh view over
    # committed state that already holds n_apply invoices (as in a block after many blocks).
    state = setup_state()
    issues = [sign(merchant, CHAIN, "issue", issue_body(i), i.to_bytes(16, "big")) for i in range(n_apply)]
    reimb = [sign(key("plat"), CHAIN, "reimburse", {"number": t.body["number"], "claim_id": f"c{i}"},
                  (i + 10**9).to_bytes(16, "big")) for i, t in enumerate(issues)]
    ctx = BlockContext(1, T0)
    issue_times = []
    for t in issues:
        view = LedgerState(state)
        start = time.perf_counter()
        r = rules.apply(view, t, ctx)
        w = view.writes()
        issue_times.append(time.perf_counter() - start)
        assert r.ok, r
        state.apply(w)
    reimb_times = []
    for t in reimb:
        view = LedgerState(state)
        start = time.perf_counter()
        r = rules.apply(view, t, ctx)
        w = view.writes()
        reimb_times.append(time.perf_counter() - start)
        assert r.ok, r
        state.apply(w)
    out["apply_issue_median_us"] = statistics.median(issue_times) * 1e6
    out["apply_reimburse_median_us"] = statistics.median(reimb_times) * 1e6
    out["apply_samples"] = n_apply
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apply", type=int, default=5000, help="transactions applied for the medians")
    ap.add_argument("--smt", default="10000,100000", help="state-tree sizes, comma separated ('' to skip)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    print(f"chainvoice core benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    core = bench_core(args.apply)
    print(f"  Ed25519 sign                 {core['ed25519_sign_per_s']:>12,.0f} /s")
    print(f"  Ed25519 verify               {core['ed25519_verify_per_s']:>12,.0f} /s   (libsodium: votes, certificates)")
    print(f"  Ed25519 verify, transaction  {core['ed25519_verify_transaction_per_s']:>12,.0f} /s   (ed25519-zebra)")
    print(f"  canonical encode (issue tx)  {core['encode_per_s']:>12,.0f} /s   ({core['tx_bytes_issue']} bytes)")
    print(f"  canonical decode (issue tx)  {core['decode_per_s']:>12,.0f} /s")
    print(f"  tx decode+schema+verify      {core['tx_decode_and_verify_per_s']:>12,.0f} /s")
    print(f"  tx decode+schema, no sig     {core['tx_decode_no_sig_per_s']:>12,.0f} /s")
    print(f"  tx decode+schema, no sig (reimburse) {core['tx_decode_no_sig_reimburse_per_s']:>6,.0f} /s")
    print(f"  apply issue (median)         {core['apply_issue_median_us']:>12.1f} µs")
    print(f"  apply reimburse (median)     {core['apply_reimburse_median_us']:>12.1f} µs")
    result = {"core": core}
    if args.smt:
        sizes = [int(s) for s in args.smt.split(",") if s]
        try:
            import bench_smt  # noqa: WPS433 (sibling script)
        except ImportError:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import bench_smt
        print("  state tree (one 1,000-write batch after building each size):")
        result["smt"] = bench_smt.run(sizes)
        print(bench_smt.format_results(result["smt"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
