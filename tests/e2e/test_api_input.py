"""Bad input at the edges of a real network: 4xx JSON, nothing changes; replays change nothing;
a TLS client without a consortium certificate cannot reach the peer port."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request

import msgpack
import pytest

from chainvoice import codec, crypto
from chainvoice.chain.proof import verify_consortium_proof
from chainvoice.client import new_invoice_number, new_nonce
from chainvoice.ledger import amounts
from chainvoice.ledger.transaction import MAX_TX_BYTES, sign

pytestmark = pytest.mark.timeout(180)


def post(url: str, body: bytes, ctype: str = "application/msgpack") -> tuple[int, dict]:
    req = urllib.request.Request(url + "/v1/transactions?wait=commit", data=body, method="POST")
    req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read()
        assert b"Traceback" not in text
        return e.code, json.loads(text)


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def ready(network):
    """Register a merchant; return (url, chain_id, merchant key, its tax id)."""
    net = network
    c = net.client(0)
    ids = net.identities
    _, r = c.sign_and_submit(net.key("tax"), "register_member", {
        "key": net.key("taxi").public_key, "role": "merchant", "name": "Taxi", "tax_id": ids["taxi"]["tax_id"],
        "taxpayer_type": "small", "monthly_quota": 10**9})
    assert r["receipt"]["status"] == "ok"
    return net.entries[0].api_url, c.chain_id, net.key("taxi"), ids["taxi"]["tax_id"]


def issue_body(tax_id: str, holder: bytes) -> dict:
    lines = [amounts.build_line("Ride", 1, 3000, 300)]
    a, t, total = amounts.totals(lines)
    return {"number": new_invoice_number(), "seller_tax_id": tax_id, "seller_name": "Taxi", "buyer_name": "Bob",
            "holder": holder, "lines": lines, "amount": a, "tax": t, "total": total}


def _signed_raw(key: crypto.SigningKey, chain_id: str, kind: str, body: dict) -> bytes:
    """Sign an envelope without the schema check sign() makes (a buggy or hostile client)."""
    env = {"chain_id": chain_id, "kind": kind, "body": body, "signer": key.public_key, "nonce": new_nonce()}
    sig = key.sign(crypto.tx_signing_message(codec.encode(env)))
    return codec.encode({**env, "signature": sig})


def test_malformed_submissions_are_4xx_json_and_change_nothing(network, ready):
    url, chain_id, taxi, tax_id = ready
    before = network.client(1).status()["height"]
    good = sign(taxi, chain_id, "issue", issue_body(tax_id, b"\x01" * 32), new_nonce())
    wire = codec.decode(good.raw)

    def variant(**change):
        m = dict(wire)
        m.update(change)
        return codec.encode(m)

    body = dict(wire["body"]); body["total"] += 1
    cases = {
        "garbage": (b"\x93\xff\x00", 400, "BAD_ENCODING"),
        "not canonical": (msgpack.packb(dict(reversed(list(wire.items()))), use_bin_type=True), 400, "BAD_ENCODING"),
        "bad signature": (variant(signature=bytes(64)), 400, "BAD_SIGNATURE"),
        "body edited after signing": (variant(body=body), 400, "BAD_SIGNATURE"),
        "wrong chain": (sign(taxi, "another-chain", "issue", issue_body(tax_id, b"\x01" * 32), new_nonce()).raw, 400, "WRONG_CHAIN"),
        "bad schema": (_signed_raw(taxi, chain_id, "transfer", {"number": "1" * 20}), 400, "BAD_SCHEMA"),
        "unknown kind": (variant(kind="mint"), 400, "BAD_SCHEMA"),
        "oversized": (b"\x00" * (MAX_TX_BYTES + 10), 413, None),
    }
    for name, (raw, status, code) in cases.items():
        got_status, doc = post(url, raw)
        assert got_status == status, (name, got_status, doc)
        assert set(doc) == {"error"} and {"code", "message"} <= set(doc["error"]), (name, doc)
        if code:
            assert doc["error"]["code"] == code, (name, doc)
    status, doc = post(url, good.raw, ctype="application/json")
    assert status == 415 and doc["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    # none of it reached a block: the invoice number shared by the forged variants is still
    # unused, so the good transaction carrying it commits as the first and only one
    assert get(f"{url}/v1/invoices/{body['number']}")[0] == 404
    status, doc = post(url, good.raw)
    assert status == 200 and doc["receipt"]["status"] == "ok"
    history = get(f"{url}/v1/invoices/{body['number']}")[1]["history"]
    assert [(h["kind"], h["status"]) for h in history] == [("issue", "ok")]
    assert network.client(1).status()["height"] > before


def test_unauthorised_is_committed_as_rejected_and_changes_nothing(network, ready):
    url, chain_id, taxi, tax_id = ready
    mallory = crypto.SigningKey.from_seed(b"\x55" * 32)
    body = issue_body(tax_id, mallory.public_key)
    tx = sign(mallory, chain_id, "issue", body, new_nonce())
    status, doc = post(url, tx.raw)
    assert status == 200 and doc["receipt"] == {"status": "rejected", "code": "NOT_AUTHORIZED",
                                                "message": "signer is not a registered merchant", "reference": None}
    status, inv = get(f"{url}/v1/invoices/{body['number']}")
    assert status == 200 and inv["state"] is None and [h["code"] for h in inv["history"]] == ["NOT_AUTHORIZED"]
    # a frozen-member style misuse: the merchant issuing under another seller's id
    other = dict(issue_body(tax_id, mallory.public_key), seller_tax_id="91110108551385082Q")
    status, doc = post(url, sign(taxi, chain_id, "issue", other, new_nonce()).raw)
    assert doc["receipt"]["code"] == "NOT_AUTHORIZED"


def test_replayed_transaction_changes_nothing(network, ready):
    url, chain_id, taxi, tax_id = ready
    bob = network.key("bob")
    body = issue_body(tax_id, bob.public_key)
    first = sign(taxi, chain_id, "issue", body, new_nonce())
    status, doc = post(url, first.raw)
    assert status == 200 and doc["receipt"]["status"] == "ok"
    t = sign(bob, chain_id, "transfer", {"number": body["number"], "to": network.key("alice").public_key}, new_nonce())
    assert post(url, t.raw)[1]["receipt"]["status"] == "ok"
    back = sign(network.key("alice"), chain_id, "transfer", {"number": body["number"], "to": bob.public_key}, new_nonce())
    assert post(network.entries[2].api_url, back.raw)[1]["receipt"]["status"] == "ok"
    # replay the first transfer at every node: answered with the original commit, nothing moves
    for e in network.entries:
        status, doc = post(e.api_url, t.raw)
        assert status == 200 and doc["duplicate"] is True and doc["height"] < network.client(0).status()["height"] + 1
    state = get(f"{url}/v1/invoices/{body['number']}")[1]
    assert state["state"]["holder"] == bob.public_key.hex()
    assert [h["kind"] for h in state["history"]] == ["issue", "transfer", "transfer"]


def post_batch(url: str, raws: list[bytes]) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/v1/transactions/batch?wait=commit", data=msgpack.packb(raws), method="POST")
    req.add_header("Content-Type", "application/msgpack")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, json.loads(r.read())


def test_a_batch_is_answered_in_order_once_its_transactions_commit(network, ready):
    url, chain_id, taxi, tax_id = ready
    bob = network.key("bob")
    earlier = sign(taxi, chain_id, "issue", issue_body(tax_id, bob.public_key), new_nonce())
    assert post(url, earlier.raw)[1]["receipt"]["status"] == "ok"
    fresh = [sign(taxi, chain_id, "issue", issue_body(tax_id, bob.public_key), new_nonce()) for _ in range(3)]
    batch = [fresh[0].raw, earlier.raw, b"\x93\x01", fresh[1].raw, fresh[0].raw, fresh[2].raw]
    status, doc = post_batch(network.entries[1].api_url, batch)
    results = doc["results"]
    assert status == 200 and len(results) == 6
    assert results[1]["duplicate"] is True and results[1]["tx_id"] == earlier.tx_id.hex()
    assert results[2]["status"] == "refused" and results[2]["error"]["code"] == "BAD_ENCODING"
    # each waited-for transaction is answered with its own commit, the one sent twice twice
    for i, tx in ((0, fresh[0]), (3, fresh[1]), (4, fresh[0]), (5, fresh[2])):
        assert results[i]["status"] == "committed" and results[i]["tx_id"] == tx.tx_id.hex()
        assert results[i]["receipt"]["status"] == "ok"
    assert results[0] == results[4]
    for i, tx in ((0, fresh[0]), (3, fresh[1]), (5, fresh[2])):
        status, found = get(f"{url}/v1/transactions/{tx.tx_id.hex()}")
        assert status == 200 and (found["height"], found["index"]) == (results[i]["height"], results[i]["index"])


def test_http_errors_are_json(network):
    url = network.entries[0].api_url
    for path, status in [("/v1/nope", 404), ("/v1/invoices/123", 400), ("/v1/invoices/" + "9" * 20, 404),
                         ("/v1/blocks/99999999", 404), ("/v1/blocks/-1", 400), ("/v1/transactions/zz", 400),
                         ("/v1/check?number=1&date=2026-01-01&total=1", 400),
                         ("/v1/check?number=" + "2" * 20 + "&date=2026-13-01&total=1", 400)]:
        got, doc = get(url + path)
        assert got == status and "error" in doc, (path, got, doc)


def test_peer_port_refuses_a_client_without_a_consortium_certificate(network):
    peer_port = int(json.loads((network.entries[0].config).read_text())["peer"]["port"])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", peer_port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(raw) as tls_sock:
                # TLS 1.3: the server's refusal of our missing certificate arrives on first use
                tls_sock.sendall(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                data = tls_sock.recv(100)
                if not data:
                    raise ConnectionError("closed without an answer")


def test_every_node_proves_its_consortium_against_the_genesis_hash(network):
    """A verifier who pinned only the genesis hash gets the node keys from any node, checked."""
    pinned = bytes.fromhex(network.client(0).consortium()["genesis_hash"])
    for i in range(4):
        proven = verify_consortium_proof(network.client(i).get("/v1/consortium/proof"), pinned)
        assert proven.node_keys == {n["id"]: bytes.fromhex(n["public_key"])
                                    for n in network.client(i).consortium()["nodes"]}


def _metric(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The value of one Prometheus sample in the text exposition format."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    if default is not None:  # a labelled series appears with its first sample
        return default
    raise AssertionError(f"no sample {want} in /metrics")


def test_metrics_follow_the_chain(network, ready):
    """/metrics (Prometheus) moves with what the node does: height, view, peers, committed
    transactions by kind and status, refused input, commit latency and block size histograms."""
    url, chain_id, taxi, tax_id = ready

    def scrape() -> str:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            return r.read().decode()

    before = scrape()
    ok_before = _metric(before, "chainvoice_transactions_committed_total", 0.0, kind="issue", status="ok")
    status, doc = post(url, sign(taxi, chain_id, "issue", issue_body(tax_id, network.key("bob").public_key),
                                 new_nonce()).raw)
    assert status == 200 and doc["receipt"]["status"] == "ok"
    post(url, b"\x93garbage")  # refused as malformed: counted by code
    after = scrape()
    assert _metric(after, "chainvoice_transactions_committed_total", kind="issue", status="ok") == ok_before + 1
    assert _metric(after, "chainvoice_height") >= doc["height"]
    assert _metric(after, "chainvoice_view") == network.client(0).status()["view"]
    assert _metric(after, "chainvoice_peers_connected") == 3
    assert _metric(after, "chainvoice_mempool_size") >= 0
    assert sum(float(line.split()[-1]) for line in after.splitlines()
               if line.startswith("chainvoice_transactions_refused_total{")) >= 1
    assert _metric(after, "chainvoice_commit_latency_seconds_count") > _metric(before, "chainvoice_commit_latency_seconds_count")
    assert _metric(after, "chainvoice_block_transactions_count") >= _metric(after, "chainvoice_height")
    assert "chainvoice_view_changes" in after
