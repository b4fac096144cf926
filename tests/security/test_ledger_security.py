"""Forged, replayed, misdirected and unauthorised transactions: each refused with its SPEC code
and the state root unchanged — in the ledger rules, at block level (a Byzantine primary's block
carrying one is refused by every backup), and through the real HTTP API of a 4-node network.

tests/unit/test_ledger_rules.py already covers a frozen merchant issuing, frozen enterprise and
platform claiming, a person issuing, one merchant issuing under another merchant's id and
in-memory replays; tests/e2e/test_api_input.py the HTTP status codes of forged and replayed
submissions. What is here is the rest: every privileged kind by an unregistered key, the other
frozen/deregistered actors, other kinds of borrowed taxpayer id, block-level refusal, and over
HTTP the unchanged state root, block hash and invoice state.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from chainvoice import codec, crypto
from chainvoice.chain.chain import InvalidBlock
from chainvoice.client import new_invoice_number, new_nonce
from chainvoice.ledger import amounts, codes
from chainvoice.ledger.transaction import sign
from tests.security.apifuzz import get_json
from tests.support.consortium import TAX_IDS, make_genesis, open_chain
from tests.support.world import CHAIN_ID, T0, World, key_of, make_tax_id

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def w() -> World:
    return World()


# -- ledger rules ---------------------------------------------------------------------------------


def _privileged(w: World, n: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("register_member", {"key": w.pub("mallory2"), "role": "merchant", "name": "Fake Ltd", "tax_id": make_tax_id(77),
                             "taxpayer_type": "general", "monthly_quota": 10**9}),
        ("update_member", {"key": w.pub("shop"), "status": "frozen"}),
        ("update_member", {"key": w.pub("shop"), "monthly_quota": 10**15}),
        ("issue", w.issue_body()),
        ("lock", {"number": n, "claim_id": "C1"}),
        ("reimburse", {"number": n, "claim_id": "C1"}),
        ("request_red", {"number": n, "amount": 1, "reason": "x"}),
        ("flag", {"number": n, "reason": "x"}),
        ("clear", {"number": n}),
    ]


def test_every_privileged_kind_by_an_unregistered_key_is_not_authorized(w):
    n = w.held_by_acme()
    for kind, body in _privileged(w, n):
        w.rejected(codes.NOT_AUTHORIZED, "mallory", kind, body)
    # a declare needs a reimbursed invoice; unlock a locked one
    w.ok("plat1", "lock", {"number": n, "claim_id": "C1"})
    w.rejected(codes.NOT_AUTHORIZED, "mallory", "unlock", {"number": n})
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "C1"})
    w.rejected(codes.NOT_AUTHORIZED, "mallory", "declare", {"number": n, "period": "2026-03"})
    assert w.invoice(n).status == "REIMBURSED"


@pytest.mark.parametrize("status", ["frozen", "deregistered"])
def test_frozen_or_deregistered_actors_can_do_nothing(w, status):
    n = w.held_by_acme()  # issued by shop, held by acme (served by plat1, plat2)
    m = w.held_by_acme()
    w.ok("plat2", "lock", {"number": m, "claim_id": "L1"})
    for who in ("shop", "plat1", "plat2"):
        w.ok("tax", "update_member", {"key": w.pub(who), "status": status})
    w.rejected(codes.MEMBER_INACTIVE, "shop", "request_red", {"number": n, "amount": 1, "reason": "x"})
    w.rejected(codes.MEMBER_INACTIVE, "shop", "issue", w.issue_body())
    w.rejected(codes.MEMBER_INACTIVE, "plat1", "lock", {"number": n, "claim_id": "C1"})
    w.rejected(codes.MEMBER_INACTIVE, "plat2", "unlock", {"number": m})
    w.rejected(codes.MEMBER_INACTIVE, "plat2", "reimburse", {"number": m, "claim_id": "L1"})
    # the enterprise itself, once its invoice is reimbursed by a still-active platform
    if status == "frozen":
        w.ok("tax", "update_member", {"key": w.pub("plat1"), "status": "active"})
        w.ok("plat1", "reimburse", {"number": n, "claim_id": "C1"})
        w.ok("tax", "update_member", {"key": w.pub("acme"), "status": "frozen"})
        w.rejected(codes.MEMBER_INACTIVE, "acme", "declare", {"number": n, "period": "2026-03"})
        w.rejected(codes.MEMBER_INACTIVE, "acme", "transfer", {"number": m, "to": w.pub("alice")})


def test_merchant_cannot_issue_under_any_taxpayer_id_but_its_own(w):
    n = w.number()
    for borrowed in (w.tax_ids["taxi"], w.tax_ids["acme"], make_tax_id(4242), TAX_IDS["globex"]):
        w.rejected(codes.NOT_AUTHORIZED, "shop", "issue", w.issue_body(number=n, **{"seller_tax_id": borrowed}))
    # an invalid id is refused as such (the check digit), not silently accepted
    w.rejected(codes.BAD_TAX_ID, "shop", "issue", w.issue_body(number=n, seller_tax_id="91350100M000100Y4Z"))
    # none of it used the number: the rightful seller can still issue it
    w.ok("taxi", "issue", w.issue_body(seller="taxi", number=n))
    assert w.invoice(n).seller_tax_id == w.tax_ids["taxi"]


# -- block level: what a Byzantine primary cannot get past the backups ----------------------------------


def _issue(number: str, signer: str = "shop", chain_id: str = CHAIN_ID):
    lines = [amounts.build_line("Chair", 1, 45_000, 1300)]
    a, t, total = amounts.totals(lines)
    return sign(key_of(signer), chain_id, "issue", {
        "number": number, "seller_tax_id": TAX_IDS["shop"], "seller_name": "Shop", "buyer_name": "Alice",
        "holder": key_of("alice").public_key, "lines": lines, "amount": a, "tax": t, "total": total}, new_nonce())


def _forged(tx) -> bytes:
    """The same envelope signed by another key: well-formed, signature does not verify."""
    wire = codec.decode(tx.raw)
    return codec.encode({**wire, "signature": key_of("mallory").sign(b"chainvoice-tx-v1" + codec.encode(tx.envelope()))})


def test_a_block_carrying_a_forged_wrong_chain_or_replayed_transaction_is_refused():
    genesis = make_genesis()
    primary, primary_store = open_chain(genesis)
    backup, backup_store = open_chain(genesis)
    first = _issue("26440000000000000101")
    cand, _ = primary.build([first], T0 + 1000, "node0")
    from chainvoice.chain.block import Block, CommitCertificate, Vote, sign_commit
    from tests.support.consortium import node_key

    blk = cand.block
    cert = CommitCertificate(1, 0, blk.hash, tuple(Vote(f"node{i}", sign_commit(node_key(f"node{i}"), CHAIN_ID, 1, 0, blk.hash))
                                                    for i in range(3)))
    primary_store.save_commit(primary.commit(cand, cert))
    backup_store.save_commit(backup.commit(backup.check(blk), cert))
    tip = backup.tip
    good = _issue("26440000000000000102")

    def block_with(raws: list[bytes]) -> Block:
        # what a Byzantine primary would send: a well-formed header over these transactions,
        # with the roots it computed for the valid part
        c, _ = primary.build([good], T0 + 2000, "node0")
        header = c.block.header
        import dataclasses

        from chainvoice import merkle

        return Block(dataclasses.replace(header, tx_count=len(raws), tx_root=merkle.root(raws)), tuple(raws))

    cases = {
        "forged signature": _forged(_issue("26440000000000000103")),
        "wrong chain": _issue("26440000000000000104", chain_id="cv-other").raw,
        "replayed": first.raw,
        "good twice": good.raw,
    }
    for name, bad in cases.items():
        raws = [good.raw, bad]
        with pytest.raises(InvalidBlock) as refused:
            backup.check(block_with(raws))
        assert any(s in str(refused.value) for s in ("malformed", "already committed", "twice")), (name, refused.value)
        assert backup.tip == tip and backup_store.tip == tip
    # the primary itself never builds such a block: replays are left out
    c, skipped = primary.build([good, first], T0 + 2000, "node0")
    assert [t.tx_id for t in c.txs] == [good.tx_id] and [s[1] for s in skipped] == ["already committed"]


# -- through the real HTTP API ----------------------------------------------------------------------


def _post(url: str, raw: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/v1/transactions?wait=commit", data=raw, method="POST",
                                 headers={"Content-Type": "application/msgpack"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        assert b"Traceback" not in body
        return e.code, json.loads(body)


def _tip(url: str) -> tuple[int, str, str]:
    block = get_json(url + "/v1/blocks/latest")[1]
    return block["height"], block["hash"], block["header"]["state_root"]


@pytest.fixture(scope="module")
def api(network, seeded):
    """(urls, chain id, keys by name, taxpayer ids by name); taxi registered, then frozen."""
    ids = network.identities
    keys = {name: network.key(name) for name in ("tax", "shop", "taxi", "acme", "alice", "bob")}
    urls = [e.api_url for e in network.entries]
    chain_id = seeded.chain_id
    for kind, body in [
        ("register_member", {"key": keys["taxi"].public_key, "role": "merchant", "name": "Taxi Co",
                             "tax_id": ids["taxi"]["tax_id"], "taxpayer_type": "small", "monthly_quota": 10**9}),
        ("update_member", {"key": keys["taxi"].public_key, "status": "frozen"}),
    ]:
        status, doc = _post(urls[0], sign(keys["tax"], chain_id, kind, body, new_nonce()).raw)
        assert status == 200 and doc["receipt"]["status"] == "ok", doc
    return urls, chain_id, keys, {n: i.get("tax_id") for n, i in ids.items()}


def _issue_body(tax_id: str, holder: bytes, rate: int = 1300) -> dict:
    lines = [amounts.build_line("Chair", 1, 45_000, rate)]
    a, t, total = amounts.totals(lines)
    return {"number": new_invoice_number(), "seller_tax_id": tax_id, "seller_name": "Shop", "buyer_name": "Bob",
            "holder": holder, "lines": lines, "amount": a, "tax": t, "total": total}


def test_forged_and_wrong_chain_transactions_never_reach_a_block(api):
    urls, chain_id, keys, tax_ids = api
    body = _issue_body(tax_ids["shop"], keys["bob"].public_key)
    real = sign(keys["shop"], chain_id, "issue", body, new_nonce())
    wire = codec.decode(real.raw)
    impostor = sign(keys["alice"], chain_id, "issue", body, new_nonce())
    cases = {
        "forged signature": (_forged(real), "BAD_SIGNATURE"),
        "signature of another key, signer claimed": (codec.encode({**codec.decode(impostor.raw), "signer": wire["signer"]}), "BAD_SIGNATURE"),
        "zero signature": (codec.encode({**wire, "signature": bytes(64)}), "BAD_SIGNATURE"),
        "wrong chain": (sign(keys["shop"], chain_id + "-other", "issue", body, new_nonce()).raw, "WRONG_CHAIN"),
    }
    before = [_tip(u) for u in urls]
    for name, (raw, code) in cases.items():
        for url in urls:
            status, doc = _post(url, raw)
            assert status == 400 and doc["error"]["code"] == code, (name, url, status, doc)
    assert [_tip(u) for u in urls] == before
    assert get_json(f"{urls[0]}/v1/invoices/{body['number']}")[0] == 404  # not even as a rejected attempt


def test_replayed_transaction_changes_nothing_at_any_node(api):
    urls, chain_id, keys, tax_ids = api
    body = _issue_body(tax_ids["shop"], keys["bob"].public_key)
    tx = sign(keys["shop"], chain_id, "issue", body, new_nonce())
    status, doc = _post(urls[0], tx.raw)
    assert status == 200 and doc["receipt"]["status"] == "ok"
    move = sign(keys["bob"], chain_id, "transfer", {"number": body["number"], "to": keys["alice"].public_key}, new_nonce())
    assert _post(urls[1], move.raw)[1]["receipt"]["status"] == "ok"
    back = sign(keys["alice"], chain_id, "transfer", {"number": body["number"], "to": keys["bob"].public_key}, new_nonce())
    assert _post(urls[2], back.raw)[1]["receipt"]["status"] == "ok"
    before = [_tip(u) for u in urls]
    state_before = get_json(f"{urls[0]}/v1/invoices/{body['number']}")[1]
    for raw in (tx.raw, move.raw, back.raw):
        for url in urls:
            status, doc = _post(url, raw)
            assert status == 200 and doc["duplicate"] is True and doc["status"] == "committed", doc
    assert [_tip(u) for u in urls] == before
    assert get_json(f"{urls[3]}/v1/invoices/{body['number']}")[1] == state_before


@pytest.mark.parametrize("case", ["unregistered signer", "frozen merchant", "another seller's taxpayer id",
                                  "an enterprise's taxpayer id"])
def test_unauthorised_issue_is_committed_as_rejected_with_state_root_unchanged(api, case):
    urls, chain_id, keys, tax_ids = api
    mallory = crypto.SigningKey.from_seed(b"\x66" * 32)
    signer, tax_id, code, rate = {
        "unregistered signer": (mallory, tax_ids["shop"], codes.NOT_AUTHORIZED, 1300),
        "frozen merchant": (keys["taxi"], tax_ids["taxi"], codes.MEMBER_INACTIVE, 300),
        "another seller's taxpayer id": (keys["shop"], tax_ids["taxi"], codes.NOT_AUTHORIZED, 1300),
        "an enterprise's taxpayer id": (keys["shop"], tax_ids["acme"], codes.NOT_AUTHORIZED, 1300),
    }[case]
    body = _issue_body(tax_id, keys["bob"].public_key, rate)
    status, doc = _post(urls[0], sign(signer, chain_id, "issue", body, new_nonce()).raw)
    assert status == 200 and doc["receipt"]["status"] == "rejected" and doc["receipt"]["code"] == code, doc
    h = doc["height"]
    block = get_json(f"{urls[1]}/v1/blocks/{h}")[1]
    parent = get_json(f"{urls[1]}/v1/blocks/{h - 1}")[1]
    assert [t["code"] for t in block["transactions"]] == [code]  # kept on the chain as evidence
    assert block["header"]["state_root"] == parent["header"]["state_root"]
    inv = get_json(f"{urls[2]}/v1/invoices/{body['number']}")[1]
    assert inv["state"] is None and [e["code"] for e in inv["history"]] == [code]
