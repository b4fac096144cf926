"""The digest filters (committed transaction ids, written state keys): never forget a digest,
rarely say maybe to a new one, and keep the store's replay check and state reads exact."""

import random

from hypothesis import given, settings, strategies as st

from chainvoice.chain.chain import Chain
from chainvoice.ledger.records import invoice_key
from chainvoice.store.chainstore import ChainStore
from chainvoice.store.kv import MemoryKeyValue
from chainvoice.store.digestfilter import BITS_PER_DIGEST, DigestFilter

from tests.support.consortium import make_genesis
from tests.support.world import T0
from tests.unit.test_chain import certify, issue_tx

ids = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(st.lists(ids, max_size=400), st.integers(min_value=1, max_value=64))
def test_every_added_id_is_found_in_every_layer_it_grew(tx_ids, capacity):
    f = DigestFilter(capacity)
    f.add_many(tx_ids)
    assert all(t in f for t in tx_ids)
    assert len(f) == len(tx_ids)
    # each layer is twice the one before, so a filter that outgrew its first holds few layers
    assert f.layers <= max(1, len(tx_ids) // capacity).bit_length() + 1


def test_new_ids_are_rarely_maybe_at_full_capacity():
    rng = random.Random(7)
    capacity = 50_000
    f = DigestFilter(capacity)
    f.add_many(rng.randbytes(32) for _ in range(capacity))
    assert f.layers == 1 and f.bytes_used * 8 >= capacity * BITS_PER_DIGEST
    fresh = [rng.randbytes(32) for _ in range(50_000)]
    maybe = sum(t in f for t in fresh) / len(fresh)
    assert maybe < 0.02  # a miss the filter cannot rule out costs one store read


def test_grown_layers_keep_the_error_rate_of_one():
    rng = random.Random(8)
    f = DigestFilter(1_000)
    f.add_many(rng.randbytes(32) for _ in range(15_000))  # four layers: 1k, 2k, 4k, 8k
    assert f.layers == 4
    assert sum(rng.randbytes(32) in f for _ in range(20_000)) / 20_000 < 0.05


class CountingKV(MemoryKeyValue):
    def __init__(self):
        super().__init__()
        self.reads = []

    def get(self, key):
        self.reads.append(key)
        return super().get(key)


def _store_with_a_block():
    g = make_genesis()
    kv = CountingKV()
    store = ChainStore(kv)
    chain = Chain(g, store, store.open(g))
    t1, t2 = issue_tx("26440000000000000101"), issue_tx("26440000000000000102")
    cand, _ = chain.build([t1, t2], T0, "node0")
    store.save_commit(chain.commit(cand, certify(g, cand.block)))
    return g, kv, store, [t1, t2]


def test_replay_check_reads_the_store_only_for_ids_it_cannot_rule_out():
    g, kv, store, committed = _store_with_a_block()
    rng = random.Random(9)
    fresh = [rng.randbytes(32) for _ in range(2_000)]
    kv.reads.clear()
    assert not any(store.has_tx(t) for t in fresh)
    assert len([k for k in kv.reads if k[:1] == b"t"]) < 20
    assert all(store.has_tx(t.tx_id) for t in committed)
    # reopened: the filter is rebuilt from the index, so committed ids are still found
    reopened = ChainStore(kv)
    reopened.open(g)
    assert all(reopened.has_tx(t.tx_id) for t in committed)
    assert not any(reopened.has_tx(t) for t in fresh)


def test_a_maybe_from_the_filter_is_settled_by_the_store():
    _, kv, store, committed = _store_with_a_block()

    class SaysMaybe:
        def __contains__(self, tx_id):
            return True

    store._tx_ids = SaysMaybe()
    assert not store.has_tx(random.Random(10).randbytes(32))
    assert store.has_tx(committed[0].tx_id)


def test_state_reads_of_unwritten_keys_read_the_store_only_when_the_filter_cannot_rule_them_out():
    g, kv, store, committed = _store_with_a_block()
    written = [invoice_key(t.body["number"]) for t in committed]
    rng = random.Random(11)
    fresh = [rng.randbytes(32) for _ in range(2_000)]
    kv.reads.clear()
    assert all(store.state_value(k) is None for k in fresh)
    assert len([k for k in kv.reads if k[:1] == b"s"]) < 20
    # reopened (empty caches): the filter is rebuilt from the ``s`` index, so written keys are read
    reopened = ChainStore(kv)
    reopened.open(g)
    assert all(reopened.state_value(k) == store.state_value(k) is not None for k in written)
    assert all(reopened.state_value(k) is None for k in fresh)


def test_a_state_key_the_filter_cannot_rule_out_is_settled_by_the_store():
    g, kv, store, committed = _store_with_a_block()

    class SaysMaybe:
        def __contains__(self, key):
            return True

    reopened = ChainStore(kv)
    reopened.open(g)
    reopened._state_keys = SaysMaybe()
    assert reopened.state_value(random.Random(12).randbytes(32)) is None
    assert reopened.state_value(invoice_key(committed[0].body["number"])) is not None
