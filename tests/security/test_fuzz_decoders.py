"""Hypothesis-fuzzed input to everything that parses bytes from outside: the consensus message
decoder, a PBFT replica's message entry point (built in memory, as the simulator builds it), the
transaction decoder, the ledger rules, and the node's transaction endpoint over real HTTP.

Inputs are random bytes, byte-level mutations of valid messages and transactions, and
structure-aware mutations that are *re-signed* with the real keys, so they pass the signature
check and reach the handlers and rules behind it. The only outcomes allowed are the documented
clean rejections (``MessageError``, ``MalformedTransaction``, a rejected receipt, a 4xx JSON error)
and no change to committed state other than what a correctly certified block makes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import lru_cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chainvoice import codec, crypto
from chainvoice.chain.block import Block, CommitCertificate, Vote, sign_commit
from chainvoice.client import new_nonce
from chainvoice.consensus import messages
from chainvoice.consensus.actions import Commit
from chainvoice.consensus.config import ReplicaConfig
from chainvoice.consensus.messages import (BlockRequest, Blocks, CommitVote, NewView, Prepare, PreparedProof,
                                           PrePrepare, Signed, Status, TxBatch, ViewChange)
from chainvoice.consensus.replica import Replica
from chainvoice.ledger import amounts, codes
from chainvoice.ledger.codes import MalformedTransaction
from chainvoice.ledger.transaction import decode as decode_tx
from chainvoice.ledger.transaction import sign
from tests.support.consortium import TAX_IDS, make_genesis, node_key, open_chain
from tests.support.world import CHAIN_ID, T0, World, key_of

pytestmark = pytest.mark.timeout(240)

def fuzz(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
NODES = [f"node{i}" for i in range(4)]
KEYS = {n: node_key(n) for n in NODES}
GENESIS = make_genesis(4)


# -- valid material to mutate --------------------------------------------------------------------


def _issue(number: str, holder: str = "alice") -> Any:
    lines = [amounts.build_line("Chair", 2, 45_000, 1300)]
    a, t, total = amounts.totals(lines)
    body = {"number": number, "seller_tax_id": TAX_IDS["shop"], "seller_name": "Shop", "buyer_name": "Alice",
            "holder": key_of(holder).public_key, "lines": lines, "amount": a, "tax": t, "total": total}
    return sign(key_of("shop"), CHAIN_ID, "issue", body, number.encode()[:16])


@lru_cache(maxsize=1)
def material() -> dict[str, Any]:
    """A real block 1 with its certificate, and one valid message of every type about it."""
    chain, _ = open_chain(GENESIS)
    txs = [_issue("26440000000000000001"), _issue("26440000000000000002")]
    candidate, _ = chain.build(txs, T0 + 1000, "node0")
    block = candidate.block
    h, d = block.height, block.hash
    cert = CommitCertificate(h, 0, d, tuple(Vote(n, sign_commit(KEYS[n], CHAIN_ID, h, 0, d)) for n in NODES[:3]))

    def seal(body: Any, sender: str, blk: Block | None = None) -> Signed:
        return messages.seal(body, CHAIN_ID, sender, KEYS[sender].sign, blk)

    pp = seal(PrePrepare(0, h, d), "node0", block)
    prepares = (seal(Prepare(0, h, d), "node2"), seal(Prepare(0, h, d), "node3"))
    vc1 = seal(ViewChange(1, 0, None, PreparedProof(pp.with_block(None), prepares)), "node2", block)
    vcs = tuple(seal(ViewChange(1, 0, None, PreparedProof(pp.with_block(None), prepares)), n) for n in NODES[1:4])
    pp1 = seal(PrePrepare(1, h, d), "node1")
    signed = [
        pp, prepares[0], seal(CommitVote(0, h, d), "node2"), vc1,
        seal(NewView(1, vcs, pp1), "node1", block),
        seal(Status(1, cert), "node3"), seal(BlockRequest(1, 5), "node3"),
        seal(Blocks(((block.encoded, cert.encode()),)), "node3"),
        seal(TxBatch(tuple(t.raw for t in txs)), "node3"),
    ]
    return {"block": block, "cert": cert, "txs": txs, "messages": [(s.sender, s.encode()) for s in signed]}


# -- strategies -----------------------------------------------------------------------------------

# Any value the canonical encoding can carry: what a hostile peer can put anywhere in a map.
leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                   st.integers(min_value=-3, max_value=70), st.text(max_size=24), st.binary(max_size=70),
                   st.sampled_from([b"\x00" * 32, b"\xff" * 64, "node0", "node1", CHAIN_ID, "", 0, 2**63 - 1]))
values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)


@st.composite
def byte_mutation(draw: Any, raw: bytes) -> bytes:
    """Flip, overwrite, insert, delete or cut bytes of ``raw``."""
    out = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and out:
            out[i] = draw(st.integers(0, 255))
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and out:
            del out[i:i + draw(st.integers(1, 8))]
        elif op == "truncate":
            del out[i:]
    return bytes(out)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every position inside a decoded msgpack value (map keys and list indexes)."""
    out = [prefix]
    if type(value) is dict:
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif type(value) is list:
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _replace(value: Any, path: tuple, new: Any, *, delete: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if type(value) is dict:
        copy = dict(value)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = _replace(value[head], rest, new, delete=delete)
        return copy
    copy = list(value)
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = _replace(value[head], rest, new, delete=delete)
    return copy


INTS = st.sampled_from([0, 1, 2, 3, 4, 5, 7, 16, 1023, 1024, 2**31, 2**53 + 1, 2**63 - 1]) | st.integers(0, 2**63 - 1)


def _known_bytes() -> list[bytes]:
    m = material()
    return [m["block"].hash, m["block"].header.prev_hash, m["block"].header.state_root, m["block"].encoded,
            m["cert"].encode(), b"", b"\x00" * 32]


@st.composite
def _same_type(draw: Any, old: Any) -> Any:
    """A new value of the same type: passes the decoders' type checks, so the meaning is tested."""
    t = type(old)
    if t is int:
        return draw(INTS | st.integers(old - 2, old + 2) | st.integers(-(2**63), -1))
    if t is bytes:
        return draw(st.sampled_from(_known_bytes()) | st.binary(min_size=len(old), max_size=len(old))
                    | st.binary(max_size=80))
    if t is str:
        return draw(st.sampled_from(NODES + ["node9", "", CHAIN_ID, "x" * 65]) | st.text(max_size=8))
    if t is list:
        if old and draw(st.booleans()):
            return old + [old[draw(st.integers(0, len(old) - 1))]]  # a duplicate
        return old[:draw(st.integers(0, len(old)))]
    if old is None:
        return draw(st.sampled_from([None, {}, []]))
    return old


@st.composite
def structural_mutation(draw: Any, value: Any) -> Any:
    """Tweak (same type), replace, delete or add something somewhere inside a decoded value."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        op = draw(st.sampled_from(["tweak", "tweak", "tweak", "replace", "delete", "add"]))
        if op == "tweak":
            target = value
            for p in path:
                target = target[p]
            value = _replace(value, path, draw(_same_type(target)))
        elif op == "delete" and path:
            value = _replace(value, path, None, delete=True)
        elif op == "add":
            target = value
            for p in path:
                target = target[p]
            if type(target) is dict:
                value = _replace(value, path, {**target, draw(st.text(max_size=10)): draw(values)})
            elif type(target) is list:
                value = _replace(value, path, target + [draw(values)])
            else:
                value = _replace(value, path, draw(values))
        else:
            value = _replace(value, path, draw(values))
    return value


@st.composite
def resigned_message(draw: Any) -> tuple[str, bytes]:
    """A valid message whose payload was changed and then signed again by its sender's real key:
    it passes the signature check and reaches the replica's handlers."""
    sender, raw = draw(st.sampled_from(material()["messages"]))
    payload, _, attachment = codec.decode(raw)
    m = codec.decode(payload)
    try:
        body = draw(structural_mutation(m["body"]))
        payload = codec.encode({**m, "body": body})
    except codec.EncodingError:
        pass
    sig_message = messages.DOMAIN + payload
    if m["type"] == messages.COMMIT:  # a COMMIT's signature is the SPEC §5 vote
        b = codec.decode(payload)["body"]
        if type(b) is dict and type(b.get("height")) is int and type(b.get("view")) is int and type(b.get("block_hash")) is bytes:
            sig_message = crypto.commit_message(CHAIN_ID, b["height"], b["view"], b["block_hash"])
    attachment = draw(st.sampled_from([attachment, b"", material()["block"].encoded]) | st.binary(max_size=64))
    return sender, codec.encode([payload, KEYS[sender].sign(sig_message), attachment])


@st.composite
def hostile_message(draw: Any) -> tuple[str, bytes]:
    sender, raw = draw(st.sampled_from(material()["messages"]))
    kind = draw(st.sampled_from(["random", "bytes", "resigned", "resigned", "valid"]))
    if kind == "random":
        return sender, draw(st.binary(max_size=512))
    if kind == "bytes":
        return sender, draw(byte_mutation(raw))
    if kind == "resigned":
        return draw(resigned_message())
    return sender, raw


# -- the consensus message decoder -------------------------------------------------------------------


def _decode_message(raw: bytes) -> Signed | None:
    try:
        return messages.decode(raw, CHAIN_ID)
    except messages.MessageError:
        return None


@fuzz(400)
@given(st.binary(max_size=1024) | st.sampled_from([b"\x93\xc4\x00\xc4\x00\xc4\x00", b"\xdd\xff\xff\xff\xff"]))
def test_message_decoder_random_bytes(raw):
    _decode_message(raw)


@fuzz(400)
@given(st.data())
def test_message_decoder_mutated_messages(data):
    _, raw = data.draw(st.sampled_from(material()["messages"]))
    mutated = data.draw(byte_mutation(raw))
    signed = _decode_message(mutated)
    if signed is not None:
        signed.encode()  # a decoded message re-encodes (it is a value, not a half-built object)
    sender, resigned = data.draw(resigned_message())
    signed = _decode_message(resigned)
    if signed is not None:
        assert signed.sender == sender or messages.verify(signed, GENESIS.consortium.node_keys) is False


def test_every_valid_message_decodes_and_verifies():
    for sender, raw in material()["messages"]:
        signed = messages.decode(raw, CHAIN_ID)
        assert signed.sender == sender and messages.verify(signed, GENESIS.consortium.node_keys)
        with pytest.raises(messages.MessageError):
            messages.decode(raw, "another-chain")


# -- a replica's message entry point ------------------------------------------------------------------


def _execute(replica: Replica, actions: list, certified: Block) -> None:
    """What the shell does with a replica's actions that matters here: store commits."""
    assert isinstance(actions, list)
    for a in actions:
        if isinstance(a, Commit):
            assert a.commit.block.hash == certified.hash, "committed a block nobody certified"
            replica.store.save_commit(a.commit)


def _replica(node_id: str = "node1") -> Replica:
    chain, store = open_chain(GENESIS)
    replica = Replica(node_id, KEYS[node_id], chain, store, ReplicaConfig())
    replica.start(T0)
    return replica


@fuzz(150)
@given(st.lists(hostile_message(), min_size=1, max_size=6), st.sampled_from(["node1", "node3"]),
       st.booleans(), st.integers(0, 5_000))
def test_replica_takes_any_message_without_crashing(msgs, me, spoof_sender, step_ms):
    """Any bytes from any peer: the replica never raises, and the only block it can ever commit is
    the one correctly certified by 2f+1 nodes (carried by a valid BLOCKS message)."""
    replica = _replica(me)
    certified = material()["block"]
    now = T0
    for sender, raw in msgs:
        now += step_ms
        if spoof_sender:
            sender = "node2" if sender != "node2" else "node0"
        if sender == me:
            continue  # the transport never delivers a node's own messages to it
        _execute(replica, replica.on_message(sender, raw, now), certified)
        for name in ("batch", "view", "censor", "catchup"):
            _execute(replica, replica.on_timer(name, now), certified)
    assert replica.height in (0, 1)
    if replica.height == 1:
        assert replica.chain.tip.hash == certified.hash
    else:
        assert replica.chain.tip.state_root == GENESIS_STATE_ROOT()


@lru_cache(maxsize=1)
def GENESIS_STATE_ROOT() -> bytes:  # noqa: N802
    chain, _ = open_chain(GENESIS)
    return chain.tip.state_root


def test_replica_after_fuzz_still_commits_a_certified_block():
    """A replica that has swallowed garbage from every peer still accepts the real block."""
    replica = _replica("node1")
    for i, (sender, raw) in enumerate(material()["messages"]):
        if sender != "node1":
            replica.on_message(sender, bytes(reversed(raw)), T0 + i)
            replica.on_message(sender, raw[: len(raw) // 2], T0 + i)
    blocks = next(raw for s, raw in material()["messages"] if messages.decode(raw, CHAIN_ID).kind == messages.BLOCKS)
    _execute(replica, replica.on_message("node3", blocks, T0 + 100), material()["block"])
    assert replica.height == 1 and replica.chain.tip.hash == material()["block"].hash


# -- transactions -----------------------------------------------------------------------------------


def _decode(raw: bytes):
    try:
        return decode_tx(raw, chain_id=CHAIN_ID)
    except MalformedTransaction as exc:
        assert exc.code in codes.MALFORMED_CODES
        return None


@fuzz(400)
@given(st.binary(max_size=2048))
def test_transaction_decoder_random_bytes(raw):
    assert _decode(raw) is None or raw == _decode(raw).raw


@lru_cache(maxsize=1)
def _body_world() -> World:
    return World()  # only builds bodies (names, keys, taxpayer ids): never submitted to


@st.composite
def resigned_transaction(draw: Any) -> bytes:
    """A valid transaction of some kind with its body changed, signed again by the real key: it
    passes the signature check, so the schema and the state rules decide."""
    w = _body_world()
    n = w.number()
    kind, signer, body = draw(st.sampled_from([
        ("issue", "shop", w.issue_body(number=n)),
        ("transfer", "alice", {"number": n, "to": w.pub("bob")}),
        ("lock", "plat1", {"number": n, "claim_id": "C1"}),
        ("reimburse", "plat1", {"number": n, "claim_id": "C1"}),
        ("declare", "acme", {"number": n, "period": "2026-03"}),
        ("request_red", "shop", {"number": n, "amount": 100, "reason": "r"}),
        ("register_member", "tax", {"key": w.pub("new"), "role": "merchant", "name": "N", "tax_id": w.tax_ids["dup"],
                                    "taxpayer_type": "general", "monthly_quota": 5}),
        ("update_member", "tax", {"key": w.pub("shop"), "status": "frozen"}),
        ("flag", "tax", {"number": n, "reason": "x"}),
    ]))
    env = {"chain_id": CHAIN_ID, "kind": kind, "body": draw(structural_mutation(body)), "signer": key_of(signer).public_key,
           "nonce": draw(st.binary(min_size=16, max_size=16))}
    if draw(st.booleans()):
        env = draw(structural_mutation(env))
    try:
        encoded = codec.encode(env)
        if type(env) is not dict:
            return encoded  # the envelope itself was replaced: nothing to sign
        return codec.encode({**env, "signature": key_of(signer).sign(crypto.tx_signing_message(encoded))})
    except codec.EncodingError:
        return codec.encode({"garbage": True})


@fuzz(300)
@given(st.data())
def test_transaction_decoder_mutated_and_resigned(data):
    valid = _issue("26440000000000000009")
    mutated = data.draw(byte_mutation(valid.raw))
    tx = _decode(mutated)
    assert tx is None or tx.raw == valid.raw  # a flipped byte never yields another valid transaction
    _decode(data.draw(resigned_transaction()))


@fuzz(150)
@given(st.lists(resigned_transaction(), min_size=1, max_size=4))
def test_ledger_rules_take_any_signed_transaction(raws):
    """Transactions that decode go through the state rules: each gets a receipt, and a block whose
    receipts are all rejections leaves the state exactly as it was."""
    w = World()
    w.issued("alice")  # something to act on
    txs = [t for t in map(_decode, raws) if t is not None]
    before = w.snapshot()
    receipts = w.submit(*txs)
    assert len(receipts) == len({t.tx_id for t in txs})
    for r in receipts:
        assert r.status in ("ok", "rejected") and (r.ok or r.code in codes.REJECTION_CODES), r
    if not any(r.ok for r in receipts):
        assert w.snapshot() == before


# -- the node's transaction endpoint, over real HTTP ------------------------------------------------


def _post(url: str, raw: bytes, path: str = "/v1/transactions") -> tuple[int, Any]:
    req = urllib.request.Request(url + path, data=raw, method="POST",
                                 headers={"Content-Type": "application/msgpack"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        assert b"Traceback" not in body
        return e.code, json.loads(body)


def test_api_refuses_fuzzed_transaction_bytes_and_commits_nothing(network, seeded):
    """Random bytes, byte mutations of a valid transaction of this chain, re-signed structural
    mutations (another chain's ids, so none can be valid here): all 4xx JSON errors with a
    malformed-transaction code; the chain does not move and the mempool stays empty."""
    from tests.security.apifuzz import get_json

    url = seeded.url
    key = network.key("shop")
    lines = [amounts.build_line("Chair", 1, 100, 1300)]
    a, t, total = amounts.totals(lines)
    valid = sign(key, seeded.chain_id, "issue", {
        "number": "26440000000000000123", "seller_tax_id": network.identities["shop"]["tax_id"], "seller_name": "S",
        "buyer_name": "B", "holder": b"\x01" * 32, "lines": lines, "amount": a, "tax": t, "total": total}, new_nonce())
    before = get_json(url + "/v1/status")[1]
    seen: dict[tuple[int, str], int] = {}

    @fuzz(150)
    @given(st.one_of(st.binary(max_size=512), byte_mutation(valid.raw), resigned_transaction()),
           st.sampled_from(["/v1/transactions", "/v1/transactions?wait=commit&timeout=2"]))
    def run(raw, path):
        if raw == valid.raw:
            return
        status, doc = _post(url, raw, path)
        assert 400 <= status < 500, (status, doc)
        assert set(doc) == {"error"} and {"code", "message"} <= set(doc["error"]), doc
        assert doc["error"]["code"] in codes.MALFORMED_CODES, doc
        seen[(status, doc["error"]["code"])] = seen.get((status, doc["error"]["code"]), 0) + 1

    run()
    # the batch endpoint answers per item, never a 5xx
    status, doc = _post(url, codec.encode([b"", b"\x00", valid.raw[:-1]]), "/v1/transactions/batch")
    assert status == 200 and [r["status"] for r in doc["results"]] == ["refused"] * 3
    after = get_json(url + "/v1/status")[1]
    assert after["height"] == before["height"] and after["block_hash"] == before["block_hash"]
    assert after["mempool"] == 0
    assert sum(seen.values()) >= 100 and all(400 <= s < 500 for s, _ in seen)
