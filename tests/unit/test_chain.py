"""Blocks built on one replica re-execute to the same roots on another; tampering is refused."""

import dataclasses

import pytest

from chainvoice import codec, merkle, smt
from chainvoice.chain.block import Block, CommitCertificate, Vote, sign_commit
from chainvoice.chain.chain import Chain, InvalidBlock, genesis_commit
from chainvoice.chain.genesis import CONSORTIUM_KEY, Genesis, GenesisError
from chainvoice.ledger import amounts
from chainvoice.ledger.records import invoice_key
from chainvoice.ledger.transaction import sign
from chainvoice.store.chainstore import FORMAT, ChainStore, StoreCorrupt
from chainvoice.store.kv import MemoryKeyValue

from tests.support.consortium import TAX_IDS, make_genesis, node_key, open_chain
from tests.support.world import CHAIN_ID, T0, key_of

_n = 0


def tx(signer, kind, body):
    global _n
    _n += 1
    return sign(key_of(signer), CHAIN_ID, kind, body, _n.to_bytes(16, "big"))


def issue_tx(number, holder="alice"):
    lines = [amounts.build_line("Chair", 1, 10_000, 1300)]
    a, t, total = amounts.totals(lines)
    return tx("shop", "issue", {"number": number, "seller_tax_id": TAX_IDS["shop"], "seller_name": "Shop",
                                "buyer_name": "Alice", "holder": key_of(holder).public_key, "lines": lines,
                                "amount": a, "tax": t, "total": total})


def certify(genesis, block, view=0, signers=("node0", "node1", "node2")):
    votes = tuple(Vote(s, sign_commit(node_key(s), genesis.chain_id, block.height, view, block.hash)) for s in signers)
    return CommitCertificate(block.height, view, block.hash, votes)


def test_genesis_file_round_trip_and_tamper():
    g = make_genesis()
    again = Genesis.loads(g.dumps())
    assert again.block().hash == g.block().hash
    doc = g.to_json()
    doc["members"][1]["monthly_quota"] += 1
    with pytest.raises(GenesisError, match="header does not match"):
        Genesis.from_json(doc)


def test_build_check_commit_and_reopen():
    g = make_genesis()
    kv_a = MemoryKeyValue()
    a, store_a = open_chain(g, kv_a)
    b, store_b = open_chain(g)
    t1, t2 = issue_tx("26440000000000000001"), issue_tx("26440000000000000002")
    cand, skipped = a.build([t1, t2, t1], T0, "node0")
    assert [s[1] for s in skipped] == ["appears twice in the batch"]
    blk = cand.block
    assert blk.header.tx_count == 2 and blk.header.tx_root == merkle.root([t1.raw, t2.raw])
    # the backup re-executes from the raw bytes and agrees on every root
    checked = b.check(Block.decode(blk.encoded))
    assert checked.block.header == blk.header
    cert = certify(g, blk)
    store_a.save_commit(a.commit(cand, cert))
    store_b.save_commit(b.commit(checked, cert))
    assert store_a.tip == store_b.tip == blk.header
    # the state root proves the invoice
    value = store_a.state_value(invoice_key("26440000000000000001"))
    tree = smt.SparseMerkleTree(type("N", (), {"get": staticmethod(store_a.node), "put_many": None})())
    proof = tree.prove(blk.header.state_root, invoice_key("26440000000000000001"))
    assert smt.verify_inclusion(blk.header.state_root, invoice_key("26440000000000000001"), smt.value_hash(value), proof)
    # indexes
    assert store_a.tx_location(t2.tx_id) == (1, 1)
    assert store_a.wallet(key_of("alice").public_key) == ["26440000000000000001", "26440000000000000002"]
    assert [e.kind for e in store_a.history("26440000000000000001")] == ["issue"]
    # index entries are packed directly on the hot path: they must still be canonical encodings
    # (history entries live under the block's height; the ``h`` index holds only their keys)
    for prefix in (b"t", b"z" + (1).to_bytes(8, "big") + b"x"):  # the block's entries: one array
        entries = list(kv_a.scan(prefix))
        assert entries and all(codec.encode(codec.decode(v)) == v for _, v in entries)
    assert all(v == b"" for _, v in kv_a.scan(b"h"))
    # a replay is left out of the next block
    cand2, skipped2 = a.build([t1], T0 + 1000, "node0")
    assert cand2.block.header.tx_count == 0 and skipped2[0][1] == "already committed"
    # reopening the same store finds the same tip, and (with cold caches) the same state
    reopened = ChainStore(kv_a)
    assert reopened.open(g) == blk.header
    assert reopened.state_value(invoice_key("26440000000000000001")) == value
    assert reopened.state_value(invoice_key("26440000000000000009")) is None


def test_state_and_tree_reads_survive_cache_turnover(monkeypatch):
    """Caches far smaller than the state: every value and node still reads back right, from the
    cache or from the key-value store, block after block."""
    import chainvoice.store.chainstore as cs

    monkeypatch.setattr(cs, "NODE_CACHE_BYTES", 7 * (cs.ENTRY_OVERHEAD_BYTES + 100))
    monkeypatch.setattr(cs, "STATE_CACHE_ENTRIES", 3)
    g = make_genesis()
    chain, store = open_chain(g)
    numbers = [f"2644000000000000{i:04d}" for i in range(40)]
    block_bytes = 0  # the most cache bytes one block added (a block's entries go into one generation)
    for i in range(0, 40, 5):
        cand, skipped = chain.build([issue_tx(n) for n in numbers[i:i + 5]], T0 + i, "node0")
        assert not skipped
        store.save_commit(chain.commit(cand, certify(g, cand.block)))
        block_bytes = max(block_bytes, sum(map(len, cand.nodes.values())) + cs.ENTRY_OVERHEAD_BYTES * len(cand.nodes))
        # read some back now and then, so old-generation hits move entries forward
        for n in numbers[:i + 5:3]:
            assert store.state_value(invoice_key(n)) is not None
    # every invoice changes hands, one a block, each read just before (so its earlier value sits
    # in the old generation after the next turnover): the earlier value must never be served
    # once a later one is committed
    for i, n in enumerate(numbers):
        for other in (n, *numbers[i + 1:i + 4]):
            store.state_value(invoice_key(other))
        cand, skipped = chain.build([tx("alice", "transfer", {"number": n, "to": key_of("bob").public_key})],
                                    T0 + 100 + i, "node0")
        assert not skipped
        store.save_commit(chain.commit(cand, certify(g, cand.block)))
        block_bytes = max(block_bytes, sum(map(len, cand.nodes.values())) + cs.ENTRY_OVERHEAD_BYTES * len(cand.nodes))
        assert codec.decode(store.state_value(invoice_key(n)))["holder"] == key_of("bob").public_key
    root = store.tip.state_root
    tree = smt.SparseMerkleTree(type("N", (), {"get": staticmethod(store.node), "put_many": None})())
    for n in reversed(numbers):
        value = store.state_value(invoice_key(n))
        assert codec.decode(value)["number"] == n
        assert codec.decode(value)["holder"] == key_of("bob").public_key
        assert tree.get(root, invoice_key(n), store.tip.height) == smt.value_hash(value)
    assert len(store._state.data) <= 3 and len(store._state.old) <= 3
    # each generation holds at most its limit in bytes, or one block's entries (they go in together)
    assert store._nodes.size <= max(cs.NODE_CACHE_BYTES, block_bytes)
    assert 0 < len(store._nodes.data) < 40 and len(store._nodes.old) < 40


def test_store_in_an_older_layout_is_refused():
    kv = MemoryKeyValue()
    ChainStore(kv).open(make_genesis())
    kv.write({}, [b"mformat"])
    with pytest.raises(StoreCorrupt, match="layout 1"):
        ChainStore(kv).open(make_genesis())
    for older in (b"2", b"5", b"7"):
        kv.write({b"mformat": older})
        with pytest.raises(StoreCorrupt, match=f"layout {older.decode()}"):
            ChainStore(kv).open(make_genesis())


def test_a_layout_8_store_moves_its_safety_state_into_the_safety_store_when_it_opens():
    g = make_genesis()
    kv, blocks, safety = MemoryKeyValue(), MemoryKeyValue(), MemoryKeyValue()
    store = ChainStore(kv, blocks, safety)
    tip = store.open(g)
    store.save_safety(b"votes before the upgrade")
    assert kv.get(b"msafety") is None  # layout 9 writes it to its own store
    # the same store as layout 8 left it: the safety state in the index
    safety.write({}, [b"msafety"])
    kv.write({b"mformat": b"8", b"msafety": b"votes before the upgrade"})
    for _ in range(2):  # the second open finds layout 9 and leaves it as it is
        reopened = ChainStore(kv, blocks, safety)
        assert reopened.open(g) == tip
        assert reopened.load_safety() == b"votes before the upgrade"
        assert kv.get(b"msafety") is None and kv.get(b"mformat") == FORMAT == b"9"
    # a crash after the copy but before the index's write: the next open copies it again
    kv.write({b"mformat": b"8", b"msafety": b"votes before the upgrade"})
    safety.write({b"msafety": b"votes before the upgrade"})
    reopened = ChainStore(kv, blocks, safety)
    reopened.open(g)
    assert reopened.load_safety() == b"votes before the upgrade" and kv.get(b"msafety") is None


def test_state_values_are_appended_by_height_and_found_through_the_tree():
    """Each block's state values sort after every earlier block's (so LevelDB appends them rather
    than rewriting its levels), and every version stays readable from the tree of any later
    height, through the version of its leaf (proofs need no index of values by hash)."""
    g = make_genesis()
    kv = MemoryKeyValue()
    chain, store = open_chain(g, kv)
    number = "26440000000000000077"
    versions = []
    for i, t in enumerate([issue_tx(number), tx("alice", "transfer", {"number": number, "to": key_of("bob").public_key}),
                           tx("bob", "transfer", {"number": number, "to": key_of("alice").public_key})]):
        cand, skipped = chain.build([t], T0 + i, "node0")
        assert not skipped
        store.save_commit(chain.commit(cand, certify(g, cand.block)))
        versions.append(store.state_value(invoice_key(number)))
        # What the block added for good sorts after everything else in the store (one append
        # point, at the end of the key space), its state values among it.
        newest = b"z" + store.tip.height.to_bytes(8, "big")
        keys = [k for k, _ in kv.scan(b"")]
        assert max(keys).startswith(newest) and any(k.startswith(newest + b"v") for k in keys)
    assert len(set(versions)) == 3
    reopened = ChainStore(kv)  # cold caches: everything from the key-value store
    reopened.open(g)
    assert reopened.state_value(invoice_key(number)) == versions[-1]
    tree = smt.SparseMerkleTree(type("Nodes", (), {"get": staticmethod(reopened.node)})())
    tip = reopened.tip.height
    for height in range(1, tip + 1):
        root = reopened.block(height).header.state_root
        value_hash, at = tree.find(root, invoice_key(number), height)
        assert at == smt.version(height)  # each block rewrote the invoice
        assert reopened.value(invoice_key(number), value_hash, at) == versions[height - 1]
        # A later block's tree still names the leaf of the value it holds.
        if height < tip:
            assert reopened.value(invoice_key(number), value_hash, smt.version(height + 1)) is None
    # The consortium's leaf has not been rewritten since genesis: found at version 0 from the tip.
    value_hash, at = tree.find(reopened.block(tip).header.state_root, CONSORTIUM_KEY, tip)
    assert at == smt.version(0)
    assert reopened.value(CONSORTIUM_KEY, value_hash, at) == genesis_commit(g).state_writes[CONSORTIUM_KEY]
    assert reopened.value(CONSORTIUM_KEY, b"\x01" * 32, smt.version(tip)) is None
    assert reopened.value(invoice_key(number), value_hash, smt.version(tip)) is None


def test_check_refuses_tampered_blocks():
    g = make_genesis()
    a, _ = open_chain(g)
    b, _ = open_chain(g)
    cand, _ = a.build([issue_tx("26440000000000000003")], T0, "node0")
    blk = cand.block
    h = blk.header
    for name, value in [("state_root", b"\x01" * 32), ("receipts_root", b"\x02" * 32), ("tx_root", b"\x03" * 32),
                        ("prev_hash", b"\x04" * 32), ("height", 2), ("chain_id", "other")]:
        bad = Block(dataclasses.replace(h, **{name: value}), blk.txs)
        with pytest.raises(InvalidBlock):
            b.check(bad)
    # a transaction whose bytes were altered no longer verifies
    raw = bytearray(blk.txs[0]); raw[-70] ^= 1
    with pytest.raises(InvalidBlock, match="malformed"):
        b.check(Block(h, (bytes(raw),)))


def test_check_certified_needs_2f_plus_1_valid_votes():
    g = make_genesis()
    a, _ = open_chain(g)
    b, _ = open_chain(g)
    cand, _ = a.build([issue_tx("26440000000000000004")], T0, "node0")
    blk = cand.block
    b.check_certified(blk, certify(g, blk))
    with pytest.raises(InvalidBlock, match="2f\\+1"):
        b.check_certified(blk, certify(g, blk, signers=("node0", "node1")))
    dup = certify(g, blk, signers=("node0", "node1"))
    dup = dataclasses.replace(dup, votes=dup.votes + (dup.votes[0],))
    with pytest.raises(InvalidBlock, match="two votes"):
        b.check_certified(blk, dup)
    forged = certify(g, blk)
    forged = dataclasses.replace(forged, votes=forged.votes[:2] + (Vote("node2", b"\x00" * 64),))
    with pytest.raises(InvalidBlock, match="invalid signature"):
        b.check_certified(blk, forged)


def test_store_of_another_chain_is_refused():
    kv = MemoryKeyValue()
    ChainStore(kv).open(make_genesis())
    with pytest.raises(StoreCorrupt, match="different chain"):
        ChainStore(kv).open(make_genesis(chain_id="cv-other"))


def test_genesis_hash_pins_the_consortium_keys():
    import dataclasses as dc

    g = make_genesis()
    nodes = list(g.consortium.nodes)
    nodes[0] = dc.replace(nodes[0], public_key=b"\x09" * 32)
    other = dc.replace(g, consortium=dc.replace(g.consortium, nodes=tuple(nodes)))
    assert other.block().hash != g.block().hash
    doc = g.to_json()
    doc["consortium"]["nodes"][0]["public_key"] = "09" * 32
    with pytest.raises(GenesisError, match="header does not match"):
        Genesis.from_json(doc)


class _StopsBeforeWriting(MemoryKeyValue):
    """An index store whose next write never happens: the node was killed between a block's two
    writes."""

    armed = False

    def write(self, puts, deletes=(), *, sync=True):
        if self.armed:
            raise KeyboardInterrupt("killed")
        super().write(puts, deletes, sync=sync)


def test_blocks_in_their_own_store_survive_a_kill_between_the_two_writes():
    g = make_genesis()
    index, blocks = _StopsBeforeWriting(), MemoryKeyValue()
    store = ChainStore(index, blocks)
    chain = Chain(g, store, store.open(g))
    first = "26440000000000000101"
    cand, _ = chain.build([issue_tx(first)], T0, "node0")
    store.save_commit(chain.commit(cand, certify(g, cand.block)))
    assert index.get(b"z" + (1).to_bytes(8, "big") + b"b") is None  # blocks are not in the index store
    # Killed after the block's own entries were written, before the index and tip.
    cand2, _ = chain.build([issue_tx("26440000000000000102")], T0 + 1000, "node0")
    index.armed = True
    with pytest.raises(KeyboardInterrupt):
        store.save_commit(chain.commit(cand2, certify(g, cand2.block)))
    index.armed = False
    assert list(blocks.scan(b"z" + (2).to_bytes(8, "big")))  # the half-written block is there
    # On restart the node is at block 1; the entries of block 2 are gone, and it commits again.
    reopened = ChainStore(index, blocks)
    assert reopened.open(g).height == 1
    assert not list(blocks.scan(b"z" + (2).to_bytes(8, "big")))
    again = Chain(g, reopened, reopened.tip)
    cand2, _ = again.build([issue_tx("26440000000000000102")], T0 + 1000, "node0")
    reopened.save_commit(again.commit(cand2, certify(g, cand2.block)))
    cold = ChainStore(index, blocks)
    assert cold.open(g).height == 2
    assert cold.state_value(invoice_key("26440000000000000102")) is not None
    assert cold.block(2).hash == cand2.block.hash and cold.tx_location(cand2.txs[0].tx_id) == (2, 0)


def test_a_blocks_store_without_its_index_is_refused():
    g = make_genesis()
    index, blocks = MemoryKeyValue(), MemoryKeyValue()
    store = ChainStore(index, blocks)
    chain = Chain(g, store, store.open(g))
    cand, _ = chain.build([issue_tx("26440000000000000103")], T0, "node0")
    store.save_commit(chain.commit(cand, certify(g, cand.block)))
    with pytest.raises(StoreCorrupt, match="index is empty"):
        ChainStore(MemoryKeyValue(), blocks).open(g)


def test_a_one_key_state_copied_forward_stays_provable_at_the_later_height():
    """With the consortium as the only key, the root is that leaf; a block that writes nothing
    stores the root again at its own height, and the value must be found there too."""
    base = make_genesis()
    g = Genesis(base.consortium, (), base.timestamp_ms)
    chain, store = open_chain(g)
    cand, _ = chain.build([], T0, "node0")
    store.save_commit(chain.commit(cand, certify(g, cand.block)))
    tree = smt.SparseMerkleTree(type("Nodes", (), {"get": staticmethod(store.node)})())
    value_hash, at = tree.find(cand.block.header.state_root, CONSORTIUM_KEY, 1)
    assert at == smt.version(1)
    assert store.value(CONSORTIUM_KEY, value_hash, at) == genesis_commit(g).state_writes[CONSORTIUM_KEY]


def test_commits_not_yet_written_are_read_as_committed():
    """The replica builds the next block in the step that committed the last one, before the
    shell writes it: PendingCommits serves the unwritten blocks' state, tree and transactions,
    newest first, until the store has them."""
    from chainvoice.consensus.pending import PendingCommits

    g = make_genesis()
    store = ChainStore(MemoryKeyValue())
    pending = PendingCommits(store)
    chain = Chain(g, pending, store.open(g))
    n = "26440000000000000101"
    first = chain.commit(chain.build([issue_tx(n)], T0, "node0")[0], None)
    pending.add(first)
    moved = tx("alice", "transfer", {"number": n, "to": key_of("acme").public_key})
    cand, skipped = chain.build([moved, first.txs[0]], T0 + 1000, "node0")  # reads block 1 unwritten
    assert [why for _, why in skipped] == ["already committed"] and [r.status for r in cand.receipts] == ["ok"]
    second = chain.commit(cand, None)
    pending.add(second)
    assert pending.has_tx(first.txs[0].tx_id) and pending.has_tx(moved.tx_id)
    assert codec.decode(pending.state_value(invoice_key(n)))["holder"] == key_of("acme").public_key  # the newer
    assert pending.block_hash(1) == first.block.hash and pending.block_hash(2) == second.block.hash
    pending.settle()  # the store has not written them: nothing is forgotten
    assert pending.has_tx(moved.tx_id)
    store.save_commit(first)
    store.save_commit(second)
    pending.settle()
    assert pending.has_tx(moved.tx_id) and pending.state_value(invoice_key(n)) == second.state_writes[invoice_key(n)]


def test_history_lists_every_transaction_naming_an_invoice_from_a_cold_store():
    """The ``h`` index holds only keys; each block's entries are one array under its height.
    Positions past the 16 items of a short MessagePack array, accepted and rejected transactions,
    and several blocks all read back after reopening with cold caches."""
    g = make_genesis()
    kv = MemoryKeyValue()
    chain, store = open_chain(g, kv)
    numbers = [f"264400000000000001{i:02d}" for i in range(20)]
    blocks = [[issue_tx(n) for n in numbers],
              [tx("alice", "transfer", {"number": numbers[17], "to": key_of("bob").public_key}), issue_tx(numbers[3])]]
    for i, txs in enumerate(blocks):
        cand, skipped = chain.build(txs, T0 + i, "node0")
        assert not skipped
        store.save_commit(chain.commit(cand, certify(g, cand.block)))
    reopened = ChainStore(kv)
    reopened.open(g)
    assert [(e.height, e.index, e.kind, e.status, e.tx_id) for e in reopened.history(numbers[17])] == [
        (1, 17, "issue", "ok", blocks[0][17].tx_id), (2, 0, "transfer", "ok", blocks[1][0].tx_id)]
    assert [(e.height, e.index, e.status, e.code) for e in reopened.history(numbers[3])] == [
        (1, 3, "ok", ""), (2, 1, "rejected", "DUPLICATE_NUMBER")]
    assert reopened.history("26440000000000009999") == []


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65535, 65536])
def test_history_array_header_is_messagepacks(n):
    from chainvoice.store.chainstore import _NIL, _array_header

    assert _array_header(n) + _NIL * n == codec.encode([None] * n)
