"""Tax supervision from the audit index: quota alerts, spikes, circular invoicing, double claims, reports."""

import pytest

from chainvoice import audit
from chainvoice.ledger import amounts

from tests.support.consortium import TAX_IDS, make_genesis, open_chain
from tests.support.world import T0, key_of, make_tax_id
from tests.unit.test_chain import certify, tx

DAY = 86_400_000
MALL = make_tax_id(77)


def issue(seller, number, total_fen, buyer_tax_id=None, holder="acme"):
    rate = 1300 if seller != "taxi" else 300
    lines = [amounts.build_line("Goods", 1, total_fen, rate)]
    a, t, total = amounts.totals(lines)
    body = {"number": number, "seller_tax_id": TAX_IDS.get(seller, MALL), "seller_name": seller, "buyer_name": "B",
            "holder": key_of(holder).public_key, "lines": lines, "amount": a, "tax": t, "total": total}
    if buyer_tax_id:
        body["buyer_tax_id"] = buyer_tax_id
    return tx(seller, "issue", body)


@pytest.fixture(scope="module")
def chain():
    g = make_genesis()
    chain, store = open_chain(g)

    def block(txs, ts):
        cand, _ = chain.build(txs, ts, "node0")
        store.save_commit(chain.commit(cand, certify(g, cand.block)))
        return cand.receipts

    block([tx("tax", "register_member", {"key": key_of("mall").public_key, "role": "merchant", "name": "Mall",
                                         "tax_id": MALL, "taxpayer_type": "general", "monthly_quota": 10**12}),
           tx("tax", "update_member", {"key": key_of("taxi").public_key, "monthly_quota": 100_000})], T0)
    n = iter(range(10**6))
    num = lambda: f"2644{next(n):016d}"  # noqa: E731
    for d in range(1, 8):  # one shop invoice a day for a week (2026-03-11 .. 17)
        block([issue("shop", num(), 1000)], T0 + d * DAY)
    last = T0 + 8 * DAY  # 2026-03-18
    # the last day: a burst of 30 shop invoices, a ring shop -> taxi -> mall -> shop, taxi near quota
    burst = [issue("shop", num(), 1000) for _ in range(30)]
    ring = [issue("shop", num(), 5000, TAX_IDS["taxi"]), issue("taxi", num(), 5000, MALL),
            issue("mall", num(), 5000, TAX_IDS["shop"])]
    near = [issue("taxi", num(), 90_000)]
    block(burst + ring + near, last)
    claimed = num()
    receipts = block([issue("shop", claimed, 2000), tx("acme", "transfer", {"number": claimed, "to": key_of("acme").public_key})], last + 1000)
    block([tx("plat1", "reimburse", {"number": claimed, "claim_id": "c1"}),
           tx("plat2", "reimburse", {"number": claimed, "claim_id": "c2"})], last + 2000)
    red = num()
    block([issue("shop", red, 10_000, holder="alice")], last + 3000)
    block([tx("shop", "request_red", {"number": red, "amount": 3000, "reason": "refund"}),
           tx("alice", "confirm_red", {"number": red})], last + 4000)
    return store, ring, claimed


def test_risk_signals(chain):
    store, ring, claimed = chain
    doc = audit.risk(store.audit_view(), store.tip.timestamp_ms)
    s = doc["signals"]
    assert [q["seller_tax_id"] for q in s["quota"]] == [TAX_IDS["taxi"]]
    assert s["quota"][0]["share_bp"] >= 9500
    assert [x["seller_tax_id"] for x in s["spikes"]] == [TAX_IDS["shop"]]
    assert s["spikes"][0]["invoices"] >= 30 and s["spikes"][0]["previous_daily_mean"] == 1.0
    assert len(s["cycles"]) == 1
    assert sorted(s["cycles"][0]["companies"]) == sorted([TAX_IDS["shop"], TAX_IDS["taxi"], MALL])
    assert s["cycles"][0]["invoices"] == sorted(t.body["number"] for t in ring)
    assert [d["signer"] for d in s["double_claims"]] == [key_of("plat2").public_key.hex()]
    assert s["double_claims"][0]["invoices"] == [claimed]


def test_monthly_report(chain):
    store, _, _ = chain
    rows = {r["seller_tax_id"]: r for r in audit.report_rows(store.audit_view(), "2026-03")}
    shop = rows[TAX_IDS["shop"]]
    assert shop["name"] == "Shenzhen Shop Ltd"
    assert shop["count"] == 7 + 30 + 1 + 1 + 1  # a week, the burst, the ring, the claimed, the reversed
    assert shop["reversed"] == 3000
    assert shop["total"] == shop["amount"] + shop["tax"]


def test_find_cycles_reports_each_once():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("b", "a"), ("c", "d"), ("d", "e")]
    assert audit.find_cycles(edges) == [["a", "b"], ["a", "b", "c"]]
    assert audit.find_cycles([("a", "a")]) == []
