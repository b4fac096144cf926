"""Proof bundles verify with only the consortium keys; every kind of tampering is caught with its reason."""

import copy
import json

import pytest

from chainvoice.chain.block import Block, CommitCertificate
from chainvoice.chain.proof import build_bundle, build_consortium_proof, verify_bundle, verify_consortium_proof

from tests.support.consortium import make_genesis, open_chain
from tests.support.world import T0
from tests.unit.test_chain import certify, issue_tx, tx

NUMBER = "26440000000000000101"


@pytest.fixture(scope="module")
def chain_with_invoices():
    g = make_genesis()
    chain, store = open_chain(g)
    txs = [issue_tx(NUMBER)] + [issue_tx(f"264400000000000002{i:02d}") for i in range(20)]
    cand, _ = chain.build(txs, T0, "node0")
    store.save_commit(chain.commit(cand, certify(g, cand.block)))
    cand, _ = chain.build([tx("alice", "transfer", {"number": NUMBER, "to": b"\x07" * 32})], T0 + 1000, "node1")
    store.save_commit(chain.commit(cand, certify(g, cand.block, view=1, signers=("node1", "node2", "node3"))))
    return g, store


def bundle_at(g, store, number=NUMBER, height=None):
    height = store.tip.height if height is None else height
    return json.loads(json.dumps(build_bundle(number, store.block(height).header, store.certificate(height),
                                              store.node, store.value)))


def test_valid_bundle_verifies_with_consortium_only(chain_with_invoices):
    g, store = chain_with_invoices
    b = bundle_at(g, store)
    v = verify_bundle(b, g.consortium, number=NUMBER)
    assert v.ok and v.exists and v.status == "ISSUED" and v.height == 2, v.reason
    assert v.state["holder"] == "07" * 32
    # an earlier height stays provable: the holder then was alice
    v1 = verify_bundle(bundle_at(g, store, height=1), g.consortium)
    assert v1.ok and v1.height == 1 and v1.state["holder"] != "07" * 32


def test_absence_proof_for_a_fake_invoice(chain_with_invoices):
    g, store = chain_with_invoices
    b = bundle_at(g, store, number="26449999999999999999")
    assert b["value"] is None
    v = verify_bundle(b, g.consortium)
    assert v.ok and not v.exists, v.reason
    # claiming the fake invoice exists with a made-up value fails
    forged = copy.deepcopy(bundle_at(g, store))
    forged["number"] = "26449999999999999999"
    assert not verify_bundle(forged, g.consortium).ok


def _flip(hexstr, bit=0):
    raw = bytearray(bytes.fromhex(hexstr))
    raw[bit // 8 % len(raw)] ^= 1 << (bit % 8)
    return raw.hex()


@pytest.mark.parametrize("tamper,reason", [
    (lambda b: b.update(value=_flip(b["value"], 77)), "does not fold"),
    (lambda b: b["siblings"].__setitem__(3, _flip(b["siblings"][3], 5)), "does not fold"),
    (lambda b: b["siblings"].pop(), "does not fold"),
    (lambda b: b.update(number="26440000000000000102"), "does not fold"),
    (lambda b: b.update(header_bytes=_flip(b["header_bytes"], 200)), ""),
    (lambda b: b["certificate"]["votes"][0].update(signature=_flip(b["certificate"]["votes"][0]["signature"], 9)), "invalid signature"),
    (lambda b: b["certificate"]["votes"].pop(), "2f+1"),
    (lambda b: b["certificate"]["votes"].__setitem__(2, dict(b["certificate"]["votes"][0])), "two votes"),
    (lambda b: b["certificate"]["votes"][0].update(node="intruder"), "not a consortium node"),
    (lambda b: b["certificate"].update(view=b["certificate"]["view"] + 1), "invalid signature"),
    (lambda b: b.update(certificate=None), "no commit certificate"),
    (lambda b: b["state"].update(status="DECLARED"), "does not match its proven value"),
    (lambda b: b["header"].update(height=7), "header does not match"),
    (lambda b: b.pop("siblings"), "lacks siblings"),
    (lambda b: b.update(siblings="zz"), "malformed"),
])
def test_tampering_fails_with_reason(chain_with_invoices, tamper, reason):
    g, store = chain_with_invoices
    b = bundle_at(g, store)
    tamper(b)
    v = verify_bundle(b, g.consortium)
    assert not v.ok
    assert reason in v.reason, v.reason


def test_certificate_from_another_consortium_fails(chain_with_invoices):
    g, store = chain_with_invoices
    other = make_genesis(n=7)  # different node keys and f=2
    v = verify_bundle(bundle_at(g, store), other.consortium)
    assert not v.ok


def test_genesis_height_needs_the_genesis_hash():
    g = make_genesis()
    chain, store = open_chain(g)
    b = bundle_at(g, store, height=0)
    assert not verify_bundle(b, g.consortium).ok
    v = verify_bundle(b, g.consortium, genesis_hash=g.block().hash)
    assert v.ok and not v.exists


# -- the consortium, provable against a pinned genesis hash ------------------------------------------

def test_consortium_proof_gives_the_node_keys_from_the_genesis_hash_alone(chain_with_invoices):
    g, store = chain_with_invoices
    genesis = store.block(0)
    proof = json.loads(json.dumps(build_consortium_proof(genesis.header, store.node, store.value)))
    consortium = verify_consortium_proof(proof, genesis.hash)
    assert consortium.node_keys == g.consortium.node_keys and consortium.f == g.consortium.f


@pytest.mark.parametrize("tamper, reason", [
    (lambda p: p.update(value=p["value"][:-2] + ("00" if p["value"][-2:] != "00" else "01")), "does not fold"),
    (lambda p: p["siblings"].__setitem__(0, "ff" * 32), "does not fold"),
    (lambda p: p.update(siblings=p["siblings"][1:]), "does not fold"),
    (lambda p: p.update(header_bytes=p["header_bytes"][:-2] + "00"), "pinned genesis hash"),
    (lambda p: p.update(siblings="zz"), "malformed"),
])
def test_tampered_consortium_proof_is_refused(chain_with_invoices, tamper, reason):
    g, store = chain_with_invoices
    genesis = store.block(0)
    proof = json.loads(json.dumps(build_consortium_proof(genesis.header, store.node, store.value)))
    tamper(proof)
    with pytest.raises(ValueError, match=reason):
        verify_consortium_proof(proof, genesis.hash)


def test_consortium_proof_against_another_genesis_is_refused(chain_with_invoices):
    g, store = chain_with_invoices
    genesis = store.block(0)
    proof = build_consortium_proof(genesis.header, store.node, store.value)
    with pytest.raises(ValueError, match="pinned genesis hash"):
        verify_consortium_proof(proof, b"\x01" * 32)
