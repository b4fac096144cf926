"""Quorums (chainvoice.consensus.quorum): 2f+1 distinct signers form a certificate or a prepared
proof; duplicates from one node, the primary's prepare and votes of another view do not count."""

from __future__ import annotations

import pytest

from chainvoice import codec, merkle
from chainvoice.chain.block import ZERO_HASH, Block, CommitCertificate, Header, Vote, certificate_problem
from chainvoice.consensus import messages, quorum
from chainvoice.consensus.messages import CommitVote, PreparedProof, Prepare, PrePrepare, ViewChange
from chainvoice.consensus.quorum import VoteBook
from chainvoice.sim.cast import T0, make_genesis, node_key

C4 = make_genesis(4).consortium  # f = 1, quorum 3
C7 = make_genesis(7).consortium  # f = 2, quorum 5
KEYS = {i: node_key(i) for i in C7.node_ids}


def block(height: int, salt: str) -> Block:
    txs = (f"{height}{salt}".encode(),)
    return Block(Header(C4.chain_id, height, ZERO_HASH, T0, "node0", 1, merkle.root(txs), codec.sha256(b"r"),
                        codec.sha256(salt.encode())), txs)


A, B = block(1, "a"), block(1, "b")


def vote(kind_cls, node: str, view: int, height: int, h: bytes, c=C4) -> messages.Signed:
    return messages.seal(kind_cls(view, height, h), c.chain_id, node, KEYS[node].sign)


def commits(nodes, view=0, height=1, h=A.hash, c=C4) -> dict[str, messages.Signed]:
    return {x: vote(CommitVote, x, view, height, h, c) for x in nodes}


# -- commit certificates ---------------------------------------------------------------------------


@pytest.mark.parametrize("c", [C4, C7], ids=["n4", "n7"])
def test_2f_plus_1_distinct_commits_form_a_certificate(c):
    nodes = c.node_ids[: c.quorum]
    cert = quorum.commit_certificate(1, 0, A.hash, commits(nodes, c=c), c)
    assert [v.node for v in cert.votes] == list(nodes)
    assert certificate_problem(cert, c.chain_id, c.node_keys, c.f) is None
    assert quorum.certificate_ok(cert, c, 1)
    assert not quorum.certificate_ok(cert, c, 2)  # for height 1 only
    # the certificate made of COMMIT messages is exactly the SPEC §5 votes: it round-trips
    assert CommitCertificate.decode(cert.encode()) == cert


@pytest.mark.parametrize("c", [C4, C7], ids=["n4", "n7"])
def test_2f_commits_are_not_a_certificate(c):
    few = commits(c.node_ids[: c.quorum - 1], c=c)
    with pytest.raises(AssertionError):
        quorum.commit_certificate(1, 0, A.hash, few, c)
    cert = CommitCertificate(1, 0, A.hash, tuple(Vote(x, s.signature) for x, s in few.items()))
    assert "2f+1" in certificate_problem(cert, c.chain_id, c.node_keys, c.f)
    assert not quorum.certificate_ok(cert, c, 1)


def test_duplicate_votes_from_one_node_do_not_count():
    m = commits(["node0", "node1"])
    dup = CommitCertificate(1, 0, A.hash, (Vote("node0", m["node0"].signature), Vote("node1", m["node1"].signature),
                                           Vote("node0", m["node0"].signature)))
    assert "two votes" in certificate_problem(dup, C4.chain_id, C4.node_keys, C4.f)
    assert not quorum.certificate_ok(dup, C4, 1)
    # in the vote book a node's repeated vote is stored once
    book = VoteBook()
    for _ in range(3):
        assert book.add(vote(Prepare, "node1", 0, 1, A.hash))
    assert list(book.get(messages.PREPARE, 1, 0, A.hash)) == ["node1"]


def test_votes_for_different_views_do_not_combine():
    # two commit votes for view 0 and one for view 1: the view-1 signature does not verify as view 0
    m0 = commits(["node0", "node1"], view=0)
    m1 = commits(["node2"], view=1)
    mixed = CommitCertificate(1, 0, A.hash, tuple(Vote(x, s.signature) for x, s in {**m0, **m1}.items()))
    assert "invalid signature" in certificate_problem(mixed, C4.chain_id, C4.node_keys, C4.f)
    assert not quorum.certificate_ok(mixed, C4, 1)
    # nor in the vote book, where each view is its own tally
    book = VoteBook()
    for x in ("node1", "node2"):
        book.add(vote(Prepare, x, 0, 1, A.hash))
    book.add(vote(Prepare, "node3", 1, 1, A.hash))
    assert len(book.get(messages.PREPARE, 1, 0, A.hash)) == 2
    assert len(book.get(messages.PREPARE, 1, 1, A.hash)) == 1


def test_votes_for_different_blocks_do_not_combine_and_equivocation_is_refused():
    book = VoteBook()
    assert book.add(vote(CommitVote, "node1", 0, 1, A.hash))
    assert not book.add(vote(CommitVote, "node1", 0, 1, B.hash))  # equivocation: not stored
    assert book.add(vote(CommitVote, "node2", 0, 1, B.hash))
    assert list(book.get(messages.COMMIT, 1, 0, A.hash)) == ["node1"]
    assert list(book.get(messages.COMMIT, 1, 0, B.hash)) == ["node2"]
    assert len(book) == 2
    # kinds are separate slots: a PREPARE for A and a COMMIT for A by the same node are both kept
    assert book.add(vote(Prepare, "node1", 0, 1, A.hash))


def test_forged_or_foreign_votes_do_not_count():
    m = commits(["node0", "node1", "node2"])
    forged = dict(m)
    forged["node2"] = messages.seal(CommitVote(0, 1, A.hash), C4.chain_id, "node2", KEYS["node3"].sign)
    cert = CommitCertificate(1, 0, A.hash, tuple(Vote(x, s.signature) for x, s in forged.items()))
    assert certificate_problem(cert, C4.chain_id, C4.node_keys, C4.f) is not None
    outsider = CommitCertificate(1, 0, A.hash, tuple(Vote(x, s.signature) for x, s in m.items())
                                 + (Vote("mallory", b"\x00" * 64),))
    assert "not a consortium node" in certificate_problem(outsider, C4.chain_id, C4.node_keys, C4.f)


def test_vote_book_prune():
    book = VoteBook()
    book.add(vote(Prepare, "node1", 0, 1, A.hash))
    book.add(vote(CommitVote, "node1", 0, 1, A.hash))
    book.add(vote(Prepare, "node1", 0, 2, A.hash))
    book.add(vote(CommitVote, "node1", 0, 2, A.hash))
    book.add(vote(Prepare, "node2", 1, 2, A.hash))
    book.prune(below_height=2, below_view=1)
    assert book.get(messages.PREPARE, 1, 0, A.hash) == {} and book.get(messages.COMMIT, 1, 0, A.hash) == {}
    assert book.get(messages.PREPARE, 2, 0, A.hash) == {}  # prepares of old views never count
    assert list(book.get(messages.COMMIT, 2, 0, A.hash)) == ["node1"]  # commits of old views still certify
    assert list(book.get(messages.PREPARE, 2, 1, A.hash)) == ["node2"]


# -- prepared proofs -------------------------------------------------------------------------------


def prepared(view=0, height=1, blk=A, prepares=None, c=C4, primary=None) -> PreparedProof:
    primary = primary or c.primary(view)
    pp = vote(PrePrepare, primary, view, height, blk.hash, c)
    if prepares is None:
        prepares = [x for x in c.node_ids if x != primary][: 2 * c.f]
    return PreparedProof(pp, tuple(p if isinstance(p, messages.Signed) else vote(Prepare, p, view, height, blk.hash, c)
                                   for p in prepares))


@pytest.mark.parametrize("c", [C4, C7], ids=["n4", "n7"])
def test_prepared_proof_needs_pre_prepare_plus_2f_distinct_backups(c):
    assert quorum.prepared_problem(prepared(c=c), c) is None
    backups = [x for x in c.node_ids if x != c.primary(0)]
    assert "2f" in quorum.prepared_problem(prepared(prepares=backups[: 2 * c.f - 1], c=c), c)
    dup = backups[: 2 * c.f - 1] + [backups[0]]
    assert "duplicate" in quorum.prepared_problem(prepared(prepares=dup, c=c), c)
    with_primary = backups[: 2 * c.f - 1] + [c.primary(0)]
    assert quorum.prepared_problem(prepared(prepares=with_primary, c=c), c) is not None


def test_prepared_proof_rejects_other_views_blocks_primaries_and_bad_signatures():
    other_view = [vote(Prepare, "node1", 0, 1, A.hash), vote(Prepare, "node2", 1, 1, A.hash)]
    assert "does not match" in quorum.prepared_problem(prepared(prepares=other_view), C4)
    other_block = [vote(Prepare, "node1", 0, 1, A.hash), vote(Prepare, "node2", 0, 1, B.hash)]
    assert "does not match" in quorum.prepared_problem(prepared(prepares=other_block), C4)
    assert "primary" in quorum.prepared_problem(prepared(primary="node1"), C4)
    forged = messages.seal(Prepare(0, 1, A.hash), C4.chain_id, "node2", KEYS["node3"].sign)
    assert "invalid signature" in quorum.prepared_problem(prepared(prepares=["node1", forged]), C4)


# -- VIEW-CHANGEs and the NEW-VIEW rule --------------------------------------------------------------


def test_new_view_decision_takes_the_highest_view_proof_for_the_next_height():
    p0, p1 = prepared(view=0, blk=A), prepared(view=1, blk=B)
    stale = prepared(view=2, height=1, blk=A)
    vcs = [ViewChange(3, 0, None, p0), ViewChange(3, 0, None, p1), ViewChange(3, 0, None, None)]
    d = quorum.new_view_decision(vcs)
    assert (d.base, d.block_hash) == (0, B.hash)
    assert quorum.new_view_decision([ViewChange(3, 0, None, None)] * 3).block_hash is None
    # a proof for a height already settled by someone's certificate is obsolete
    cert = quorum.commit_certificate(1, 0, A.hash, commits(["node0", "node1", "node2"]), C4)
    d = quorum.new_view_decision([ViewChange(3, 1, cert, None), ViewChange(3, 0, None, stale)])
    assert (d.base, d.proof) == (1, None)


def test_view_change_problem():
    def vc(body, sender="node1", blk=None):
        return messages.seal(body, C4.chain_id, sender, KEYS[sender].sign, blk)

    p = prepared(view=0, blk=A)
    assert quorum.view_change_problem(vc(ViewChange(1, 0, None, p), blk=A), C4, need_block=True) is None
    assert quorum.view_change_problem(vc(ViewChange(1, 0, None, p)), C4, need_block=False) is None
    assert "block" in quorum.view_change_problem(vc(ViewChange(1, 0, None, p)), C4, need_block=True)
    assert "block" in quorum.view_change_problem(vc(ViewChange(1, 0, None, p), blk=B), C4, need_block=True)
    assert "earlier view" in quorum.view_change_problem(vc(ViewChange(1, 0, None, prepared(view=1))), C4,
                                                        need_block=False)
    assert "view 0" in quorum.view_change_problem(vc(ViewChange(0, 0, None, None)), C4, need_block=False)
    assert "certificate" in quorum.view_change_problem(vc(ViewChange(1, 1, None, None)), C4, need_block=False)
    weak = CommitCertificate(1, 0, A.hash, tuple(Vote(x, s.signature) for x, s in commits(["node0", "node1"]).items()))
    assert "certificate" in quorum.view_change_problem(vc(ViewChange(1, 1, weak, None)), C4, need_block=False)
    forged = messages.seal(ViewChange(1, 0, None, None), C4.chain_id, "node1", KEYS["node2"].sign)
    assert "signature" in quorum.view_change_problem(forged, C4, need_block=False)


def test_certificate_cache_is_per_consortium():
    """Regression: the checked-certificate cache was keyed by the certificate's encoding alone, so
    a 3-vote certificate checked for the 4-node consortium then passed for the 7-node one (same
    chain id, same node0..node3 keys in the simulator) where 2f+1 = 5 votes are needed."""
    h = codec.sha256(b"cache")
    cert = quorum.commit_certificate(1, 0, h, commits(["node0", "node1", "node2"], h=h), C4)
    assert not quorum.certificate_ok(cert, C7, 1)
    assert quorum.certificate_ok(cert, C4, 1)
    assert quorum.certificate_ok(cert, C4, 1)  # from the cache
    assert not quorum.certificate_ok(cert, C7, 1)
