"""Consensus messages (chainvoice.consensus.messages): every kind round-trips through its wire
form, and any single flipped bit makes it fail to decode (MessageError), fail verification, or —
in the unsigned block attachment — no longer match the block hash the signed body names."""

from __future__ import annotations

import random

import pytest

from chainvoice import codec, merkle
from chainvoice.chain.block import ZERO_HASH, Block, BlockFormatError, Header
from chainvoice.consensus import messages, quorum
from chainvoice.consensus.messages import (
    BlockRequest,
    Blocks,
    CommitVote,
    MessageError,
    NewView,
    PreparedProof,
    Prepare,
    PrePrepare,
    Status,
    TxBatch,
    ViewChange,
)
from chainvoice.sim.cast import T0, make_genesis, node_key

C = make_genesis(4).consortium
CHAIN = C.chain_id
KEYS = {i: node_key(i) for i in C.node_ids}


def make_block(height: int, salt: str) -> Block:
    txs = (f"tx {height} {salt}".encode(), b"second tx")
    return Block(Header(CHAIN, height, ZERO_HASH, T0, "node0", len(txs), merkle.root(txs), codec.sha256(b"r"),
                        codec.sha256(salt.encode())), txs)


BLK = make_block(2, "a")


def seal(body, sender="node1", blk=None):
    return messages.seal(body, CHAIN, sender, KEYS[sender].sign, blk)


def _cert():
    votes = {x: seal(CommitVote(0, 1, make_block(1, "c").hash), x) for x in ("node0", "node1", "node2")}
    return quorum.commit_certificate(1, 0, make_block(1, "c").hash, votes, C)


def _proof(view=0):
    primary = C.primary(view)
    pp = seal(PrePrepare(view, 2, BLK.hash), primary)
    others = [x for x in C.node_ids if x != primary][:2]
    return PreparedProof(pp, tuple(seal(Prepare(view, 2, BLK.hash), x) for x in others))


def samples() -> dict[str, messages.Signed]:
    vc = seal(ViewChange(1, 1, _cert(), _proof(0)), "node2", BLK)
    vcs = tuple(seal(ViewChange(1, 1, _cert(), _proof(0) if x == "node2" else None), x) for x in ("node0", "node2", "node3"))
    return {
        "pre-prepare": seal(PrePrepare(0, 2, BLK.hash), "node0", BLK),
        "prepare": seal(Prepare(0, 2, BLK.hash)),
        "commit": seal(CommitVote(0, 2, BLK.hash)),
        "view-change": vc,
        "new-view": seal(NewView(1, vcs, seal(PrePrepare(1, 2, BLK.hash), "node1")), "node1", BLK),
        "status": seal(Status(1, _cert())),
        "status-genesis": seal(Status(0, None)),
        "block-request": seal(BlockRequest(1, 8)),
        "blocks": seal(Blocks(((BLK.encoded, _cert().encode()),))),
        "txs": seal(TxBatch((b"one", b"two", b""))),
    }


SAMPLES = samples()


@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip(name):
    s = SAMPLES[name]
    raw = s.encode()
    messages._decoded.clear()  # decode from scratch, not from the cache
    d = messages.decode(raw, CHAIN)
    assert d == s
    assert (d.body, d.sender, d.payload, d.signature, d.block) == (s.body, s.sender, s.payload, s.signature, s.block)
    assert d.encode() == raw
    assert messages.verify(d, C.node_keys)
    # embedded form: [payload, signature], as inside proofs and NEW-VIEWs
    e = messages.decode_embedded(s.embedded(), CHAIN, 0)
    assert e.body == s.body and e.block is None


def test_commit_signature_is_the_spec_commit_vote():
    s = SAMPLES["commit"]
    from chainvoice import crypto
    assert crypto.verify(KEYS["node1"].public_key, crypto.commit_message(CHAIN, 2, 0, BLK.hash), s.signature)


def test_wrong_chain_sender_and_attachment_are_refused():
    raw = SAMPLES["prepare"].encode()
    with pytest.raises(MessageError):
        messages.decode(raw, "another-chain")
    # a message claiming another sender does not verify with that sender's key
    impostor = messages.seal(Prepare(0, 2, BLK.hash), CHAIN, "node3", KEYS["node1"].sign)
    assert not messages.verify(impostor, C.node_keys)
    stranger = messages.seal(Prepare(0, 2, BLK.hash), CHAIN, "mallory", KEYS["node1"].sign)
    assert not messages.verify(stranger, C.node_keys)
    # a PREPARE may not carry a block
    with pytest.raises(MessageError):
        messages.decode(codec.encode([SAMPLES["prepare"].payload, SAMPLES["prepare"].signature, BLK.encoded]), CHAIN)


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\x93\xc4\x00\xc4\x00\xc4\x00", codec.encode([1, 2, 3]),
                                     codec.encode({"a": 1}), b"\xff" * 64])
def test_garbage_raises_message_error_only(garbage):
    with pytest.raises(MessageError):
        messages.decode(garbage, CHAIN)


def _attachment_ok(d: messages.Signed) -> bool:
    """What a receiver checks of the unsigned attachment: the block is the one the signed body names
    and its transactions are the ones its header commits to."""
    b = d.block
    if b is None:
        return True
    named = d.body.block_hash if d.kind in (messages.PRE_PREPARE,) else (
        d.body.prepared.block_hash if d.kind == messages.VIEW_CHANGE and d.body.prepared else
        d.body.pre_prepare.body.block_hash if d.kind == messages.NEW_VIEW and d.body.pre_prepare else None)
    return b.hash == named and merkle.root(b.txs) == b.header.tx_root


def _flips(raw: bytes, limit: int, rng: random.Random) -> list[int]:
    bits = range(len(raw) * 8)
    return list(bits) if len(raw) * 8 <= limit else sorted(rng.sample(bits, limit))


@pytest.mark.parametrize("name", SAMPLES)
def test_any_flipped_bit_fails_cleanly(name):
    s = SAMPLES[name]
    raw = s.encode()
    assert _attachment_ok(s)
    rng = random.Random(name)
    accepted = []
    for bit in _flips(raw, 6000, rng):
        bad = bytearray(raw)
        bad[bit // 8] ^= 1 << (bit % 8)
        bad = bytes(bad)
        try:
            d = messages.decode(bad, CHAIN)
        except MessageError:
            continue  # anything else escaping decode() is a bug: the test fails with it
        if not messages.verify(d, C.node_keys):
            continue
        if not _attachment_ok(d):
            continue
        accepted.append(bit)
    assert not accepted, f"{name}: flipped bits {accepted[:10]} still decode, verify and match"


def test_nested_proof_and_certificate_are_checked_on_their_own():
    # Inside a VIEW-CHANGE the prepared proof and certificate are verified separately, so they can be
    # forwarded inside a NEW-VIEW by anyone; a tampered embedded prepare is caught there.
    vc = SAMPLES["view-change"]
    assert quorum.view_change_problem(vc, C, need_block=True) is None
    p = vc.body.prepared
    bad_sig = bytes([p.prepares[0].signature[0] ^ 1]) + p.prepares[0].signature[1:]
    tampered = PreparedProof(p.pre_prepare, (p.prepares[0].__class__(
        p.prepares[0].body, CHAIN, p.prepares[0].sender, p.prepares[0].payload, bad_sig),) + p.prepares[1:])
    forged = seal(ViewChange(1, 1, vc.body.certificate, tampered), "node2", BLK)
    assert messages.verify(forged, C.node_keys)  # the outer signature is fine ...
    assert "invalid signature" in quorum.view_change_problem(forged, C, need_block=True)  # ... the proof is not


def test_limits_are_enforced_on_decode():
    too_many = seal(TxBatch(tuple(b"x" for _ in range(messages.MAX_TXS_PER_MESSAGE + 1))))
    with pytest.raises(MessageError):
        messages.decode(too_many.encode(), CHAIN)
    with pytest.raises((MessageError, BlockFormatError)):
        messages.decode(codec.encode([SAMPLES["prepare"].payload, b"short", b""]), CHAIN)


def test_signature_cache_holds_digests_and_still_checks_the_message():
    """The verification cache must not keep whole messages alive (a gossip batch is ~10 KB; it
    grew a node's memory for minutes), and a remembered signature must not vouch for other bytes."""
    key = KEYS["node1"]
    message = b"m" * 20_000
    signature = key.sign(message)
    messages._verified.clear()
    assert messages.verify_signature(key.public_key, message, signature)
    assert messages.verify_signature(key.public_key, message, signature)  # from the cache
    assert all(len(part) <= 64 for k in messages._verified for part in k)
    assert not messages.verify_signature(key.public_key, message[:-1] + b"n", signature)
    assert not messages.verify_signature(KEYS["node2"].public_key, message, signature)
