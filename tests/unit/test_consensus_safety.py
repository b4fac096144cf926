"""Safety rules (chainvoice.consensus.safety): the signer refuses any vote that could break safety,
and a signer restored from the state it asked to persist refuses exactly what the original would.
"""

from __future__ import annotations

import functools
import itertools
import random

import pytest

from chainvoice import codec, merkle
from chainvoice.chain.block import ZERO_HASH, Block, Header
from chainvoice.consensus import messages
from chainvoice.consensus.messages import COMMIT, PRE_PREPARE, PREPARE, PreparedProof, Prepare, PrePrepare
from chainvoice.consensus.safety import Refused, SafetyRules, SafetyState, SafetyStateCorrupt
from chainvoice.sim.cast import T0, make_genesis, node_key

CONSORTIUM = make_genesis(4).consortium  # node0..node3, f = 1; primary(v) = node{v % 4}
CHAIN = CONSORTIUM.chain_id
KEYS = {i: node_key(i) for i in CONSORTIUM.node_ids}


@functools.lru_cache(maxsize=None)
def block(height: int, salt: str = "a") -> Block:
    txs = (f"tx-{height}-{salt}".encode(),)
    header = Header(CHAIN, height, ZERO_HASH, T0 + height, "node0", len(txs), merkle.root(txs),
                    codec.sha256(b"receipts"), codec.sha256(f"state-{height}-{salt}".encode()))
    return Block(header, txs)


A1, B1, A2, B2 = block(1, "a"), block(1, "b"), block(2, "a"), block(2, "b")


@functools.lru_cache(maxsize=None)
def proof(height: int, view: int, blk: Block) -> PreparedProof:
    """A real prepared proof: the primary's pre-prepare and 2f prepares by other replicas."""
    primary = CONSORTIUM.primary(view)
    pp = messages.seal(PrePrepare(view, height, blk.hash), CHAIN, primary, KEYS[primary].sign)
    others = [x for x in CONSORTIUM.node_ids if x != primary][: 2 * CONSORTIUM.f]
    return PreparedProof(pp, tuple(messages.seal(Prepare(view, height, blk.hash), CHAIN, x, KEYS[x].sign)
                                   for x in others))


class Signer:
    """SafetyRules plus what a shell would do: persist every state it returns."""

    def __init__(self, node: str = "node2", state: bytes | None = None, committed: dict[int, bytes] | None = None):
        self.committed = {} if committed is None else committed
        self.rules = SafetyRules(node, KEYS[node], CONSORTIUM, self.committed.get, state)
        self.disk = state

    def keep(self, result):
        msg, state = result if isinstance(result, tuple) else (None, result)
        if state is not None:
            self.disk = state
        return msg

    def restart(self) -> "Signer":
        return Signer(self.rules.node_id, self.disk, dict(self.committed))


# -- conflicting votes ----------------------------------------------------------------------------


def test_prepare_for_another_block_at_same_height_and_view_is_refused():
    s = Signer()
    msg = s.keep(s.rules.sign_prepare(1, 0, A1.hash))
    assert msg.kind == PREPARE and messages.verify(msg, CONSORTIUM.node_keys)
    with pytest.raises(Refused):
        s.rules.sign_prepare(1, 0, B1.hash)
    # the same vote again is fine (a re-send) and changes nothing to persist
    again, state = s.rules.sign_prepare(1, 0, A1.hash)
    assert state is None and again.body == msg.body
    # a different height is a different slot
    s.keep(s.rules.sign_prepare(2, 0, B2.hash))


def test_pre_prepare_only_by_the_primary_and_never_two_blocks():
    primary = Signer("node0")
    msg = primary.keep(primary.rules.sign_pre_prepare(1, 0, A1))
    assert msg.kind == PRE_PREPARE and msg.block == A1
    with pytest.raises(Refused):
        primary.rules.sign_pre_prepare(1, 0, B1)
    with pytest.raises(Refused):
        Signer("node1").rules.sign_pre_prepare(1, 0, A1)  # not the primary of view 0
    with pytest.raises(Refused):
        primary.rules.sign_prepare(1, 0, A1.hash)  # the primary's pre-prepare is its prepare


def test_commit_needs_own_prepare_for_that_block_and_is_never_for_two_blocks():
    s = Signer()
    with pytest.raises(Refused):
        s.rules.sign_commit(1, 0, A1.hash, proof(1, 0, A1), A1)  # no own prepare yet
    s.keep(s.rules.sign_prepare(1, 0, A1.hash))
    with pytest.raises(Refused):
        s.rules.sign_commit(1, 0, B1.hash, proof(1, 0, B1), B1)  # prepared A, not B
    with pytest.raises(Refused):
        s.rules.sign_commit(1, 0, A1.hash, proof(1, 0, B1), A1)  # proof for another block
    with pytest.raises(Refused):
        s.rules.sign_commit(1, 0, A1.hash, proof(1, 0, A1), B1)  # block is not the one named
    msg = s.keep(s.rules.sign_commit(1, 0, A1.hash, proof(1, 0, A1), A1))
    assert msg.kind == COMMIT and messages.verify(msg, CONSORTIUM.node_keys)
    assert s.rules.prepared_for(1)[1] == A1


def test_no_vote_for_another_block_where_one_is_committed():
    s = Signer(committed={1: A1.hash})
    with pytest.raises(Refused):
        s.rules.sign_prepare(1, 0, B1.hash)
    s.keep(s.rules.sign_prepare(1, 0, A1.hash))


# -- views: no regression ---------------------------------------------------------------------------


def test_view_change_ends_voting_in_the_old_view_and_views_never_go_back():
    s = Signer()
    s.keep(s.rules.sign_prepare(1, 0, A1.hash))
    vc = s.keep(s.rules.sign_view_change(1, 0, None))
    assert vc.body.view == 1 and s.rules.view == 1 and not s.rules.entered
    with pytest.raises(Refused):
        s.rules.sign_prepare(2, 0, A2.hash)  # view 0 is over, even for a fresh height
    with pytest.raises(Refused):
        s.rules.sign_prepare(1, 1, A1.hash)  # view 1 not entered yet (no NEW-VIEW)
    with pytest.raises(Refused):
        s.rules.sign_view_change(0, 0, None)  # back to view 0
    with pytest.raises(Refused):
        s.rules.enter_view(0, None)
    s.keep(s.rules.enter_view(1, None))
    with pytest.raises(Refused):
        s.rules.enter_view(1, None)  # already entered
    with pytest.raises(Refused):
        s.rules.sign_view_change(1, 0, None)  # already in view 1
    s.keep(s.rules.sign_prepare(1, 1, B1.hash))  # a new view is a new slot
    s.keep(s.rules.sign_view_change(3, 0, None))  # views may be skipped forward ...
    with pytest.raises(Refused):
        s.rules.sign_view_change(2, 0, None)  # ... but never back


def test_new_view_constraint_binds_the_dictated_height():
    s = Signer()
    s.keep(s.rules.sign_view_change(1, 0, None))
    s.keep(s.rules.enter_view(1, (1, A1.hash)))
    with pytest.raises(Refused):
        s.rules.sign_prepare(1, 1, B1.hash)
    s.keep(s.rules.sign_prepare(1, 1, A1.hash))
    s.keep(s.rules.sign_prepare(2, 1, B2.hash))  # other heights are not constrained


def test_view_change_reports_the_prepared_proof_it_committed_with():
    s = Signer()
    s.keep(s.rules.sign_prepare(1, 0, A1.hash))
    p = proof(1, 0, A1)
    s.keep(s.rules.sign_commit(1, 0, A1.hash, p, A1))
    vc = s.keep(s.rules.sign_view_change(1, 0, None))
    assert vc.body.prepared == p and vc.block == A1
    # ... and a restarted signer still reports it (the NEW-VIEW rule relies on it)
    r = s.restart()
    vc2, _ = r.rules.sign_view_change(1, 0, None)  # re-send for the view being changed to
    assert vc2.body.prepared.block_hash == A1.hash and vc2.block == A1


def test_non_vote_messages_cannot_bypass_the_rules():
    s = Signer()
    for body in (Prepare(0, 1, B1.hash), PrePrepare(0, 1, B1.hash), messages.CommitVote(0, 1, B1.hash),
                 messages.ViewChange(1, 0, None, None)):
        with pytest.raises(Refused):
            s.rules.sign(body)
    assert s.rules.sign(messages.Status(0, None)).kind == messages.STATUS


def test_key_must_be_the_nodes_consortium_key():
    with pytest.raises(ValueError):
        SafetyRules("node1", KEYS["node3"], CONSORTIUM, lambda h: None)


# -- persistence: no equivocation after a restart --------------------------------------------------


def test_restored_signer_refuses_what_the_original_refused():
    s = Signer()
    s.keep(s.rules.sign_prepare(1, 0, A1.hash))
    s.keep(s.rules.sign_commit(1, 0, A1.hash, proof(1, 0, A1), A1))
    r = s.restart()
    assert r.rules.voted(1, 0, PREPARE) == A1.hash and r.rules.voted(1, 0, COMMIT) == A1.hash
    with pytest.raises(Refused):
        r.rules.sign_prepare(1, 0, B1.hash)
    with pytest.raises(Refused):
        r.rules.sign_commit(1, 0, B1.hash, proof(1, 0, B1), B1)
    # what it had signed, it may sign again (identical bytes: Ed25519 is deterministic)
    assert r.rules.sign_prepare(1, 0, A1.hash)[0] == s.rules.sign_prepare(1, 0, A1.hash)[0]


def test_restored_signer_keeps_its_view_and_constraint():
    s = Signer()
    s.keep(s.rules.sign_view_change(2, 0, None))
    r = s.restart()
    assert (r.rules.view, r.rules.entered) == (2, False)
    for attempt in (lambda: r.rules.sign_prepare(1, 2, A1.hash), lambda: r.rules.sign_prepare(1, 0, A1.hash),
                    lambda: r.rules.sign_view_change(1, 0, None), lambda: r.rules.enter_view(1, None)):
        with pytest.raises(Refused):
            attempt()
    s.keep(s.rules.enter_view(2, (1, A1.hash)))
    r = s.restart()
    assert (r.rules.view, r.rules.entered, r.rules.constraint) == (2, True, (1, A1.hash))
    with pytest.raises(Refused):
        r.rules.sign_prepare(1, 2, B1.hash)


def test_state_round_trips_and_corrupt_state_is_refused():
    s = Signer("node1")
    s.keep(s.rules.sign_prepare(1, 0, A1.hash))
    s.keep(s.rules.sign_commit(1, 0, A1.hash, proof(1, 0, A1), A1))
    s.keep(s.rules.sign_view_change(1, 0, None))
    state = SafetyState.decode(s.disk, CHAIN)
    assert state.encode() == s.disk and state == s.rules.state
    for bad in (b"", b"\xc1", s.disk[:-1], s.disk[: len(s.disk) // 2], codec.encode({"version": 1})):
        with pytest.raises(SafetyStateCorrupt):
            SafetyRules("node1", KEYS["node1"], CONSORTIUM, lambda h: None, bad)
    m = codec.decode(s.disk)
    m["version"] = 99
    with pytest.raises(SafetyStateCorrupt):
        SafetyState.decode(codec.encode(m), CHAIN)


# An operation either returns a signed message / state, or is refused. A probe's outcome is
# compared between the signer that performed a history in memory and one restored from disk.

def _ops(rules: SafetyRules):
    blocks = {(h, x): block(h, x) for h in (1, 2) for x in "ab"}
    out = []
    for h, v, x in itertools.product((1, 2), (0, 1, 2), "ab"):
        b = blocks[(h, x)]
        out.append((f"prepare h{h} v{v} {x}", lambda h=h, v=v, b=b: rules.sign_prepare(h, v, b.hash)))
        out.append((f"pre-prepare h{h} v{v} {x}", lambda h=h, v=v, b=b: rules.sign_pre_prepare(h, v, b)))
        out.append((f"commit h{h} v{v} {x}",
                    lambda h=h, v=v, b=b: rules.sign_commit(h, v, b.hash, proof(h, v, b), b)))
    for v in (1, 2, 3):
        out.append((f"view-change {v}", lambda v=v: rules.sign_view_change(v, 0, None)))
        for h, x in ((1, "a"), (1, "b")):
            out.append((f"enter {v} ({h},{x})", lambda v=v, b=blocks[(h, x)]: rules.enter_view(v, (b.height, b.hash))))
        out.append((f"enter {v}", lambda v=v: rules.enter_view(v, None)))
    return out


def _outcome(op):
    try:
        res = op()
    except Refused:
        return "refused"
    msg = res[0] if isinstance(res, tuple) else None
    return "ok" if msg is None else msg.encode()


@pytest.mark.parametrize("seed", range(25))
def test_random_histories_restored_signer_decides_like_the_original(seed):
    rng = random.Random(seed)
    for node in ("node0", "node1"):  # the primary of view 0, and of view 1
        history = [rng.randrange(len(_ops(SafetyRules(node, KEYS[node], CONSORTIUM, lambda h: None))))
                   for _ in range(rng.randint(1, 25))]

        def replay() -> Signer:
            s = Signer(node)
            ops = _ops(s.rules)
            for i in history:
                try:
                    s.keep(ops[i][1]())
                except Refused:
                    pass
            return s

        disk = replay().disk
        n_ops = len(_ops(Signer(node).rules))
        for probe in range(n_ops):
            original = replay()
            restored = Signer(node, disk)
            name = _ops(original.rules)[probe][0]
            a = _outcome(_ops(original.rules)[probe][1])
            b = _outcome(_ops(restored.rules)[probe][1])
            assert a == b, f"{node} after {[_ops(original.rules)[i][0] for i in history]}: {name}: {a!r} vs {b!r}"
