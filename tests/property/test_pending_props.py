"""Replay protection through PendingCommits: "is this transaction committed?" is answered exactly
as the chain would answer it, whatever the order of checks, commits, the shell's writes and the
forgetting of old blocks and old absences — and the store is not asked again about a
transaction it was already asked about while the blocks since are known."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from chainvoice.consensus.pending import PendingCommits

TX_IDS = [bytes([i]) * 32 for i in range(12)]


class Store:
    """The store as PendingCommits sees it: a tip and the transactions written so far."""

    def __init__(self) -> None:
        self.tip = SimpleNamespace(height=0)
        self.written: set[bytes] = set()
        self.asked: list[bytes] = []

    def has_tx(self, tx_id: bytes) -> bool:
        self.asked.append(tx_id)
        return tx_id in self.written

    def write(self, commit: SimpleNamespace) -> None:
        assert commit.height == self.tip.height + 1
        self.written.update(tx.tx_id for tx in commit.txs)
        self.tip = SimpleNamespace(height=commit.height)


def block(height: int, ids: list[bytes]) -> SimpleNamespace:
    return SimpleNamespace(height=height, txs=[SimpleNamespace(tx_id=i) for i in ids])


operation = st.one_of(
    st.tuples(st.just("check"), st.sampled_from(TX_IDS)),
    st.tuples(st.just("commit"), st.lists(st.sampled_from(TX_IDS), max_size=4, unique=True)),
    st.tuples(st.just("write"), st.none()),
    st.tuples(st.just("settle"), st.none()),
)


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(operation, max_size=60), recent=st.integers(1, 3), absent=st.integers(1, 4))
def test_committed_is_answered_as_the_chain_would_whatever_is_remembered_or_forgotten(ops, recent, absent):
    store = Store()
    pending = PendingCommits(store, recent_blocks=recent, absent_entries=absent)
    committed: set[bytes] = set()  # the model: every transaction of every committed block
    unwritten: list[SimpleNamespace] = []
    height = 0
    for kind, arg in ops:
        if kind == "check":
            assert pending.has_tx(arg) == (arg in committed)
        elif kind == "commit":
            ids = [i for i in arg if i not in committed]  # the chain never commits a replay
            height += 1
            c = block(height, ids)
            pending.add(c)
            unwritten.append(c)
            committed.update(ids)
        elif kind == "write" and unwritten:
            store.write(unwritten.pop(0))
        elif kind == "settle":
            pending.settle()
    for tx_id in TX_IDS:
        assert pending.has_tx(tx_id) == (tx_id in committed)


def test_a_transaction_checked_on_arrival_is_not_looked_up_again_when_its_block_executes():
    store = Store()
    pending = PendingCommits(store, recent_blocks=2)
    arrived, stale = TX_IDS[0], TX_IDS[1]
    assert not pending.has_tx(stale)
    assert not pending.has_tx(arrived)  # gossip: the store is asked
    for h in (1, 2):  # blocks without it
        c = block(h, [bytes([100 + h]) * 32])
        pending.add(c)
        store.write(c)
        pending.settle()
    assert not pending.has_tx(arrived)  # executing the block that holds it: not asked again
    assert store.asked == [stale, arrived]
    c = block(3, [arrived])
    pending.add(c)
    assert pending.has_tx(arrived)  # committed, not yet written
    store.write(c)
    pending.settle()
    for h in (4, 5, 6):  # block 3 leaves the recent window: the store answers again
        c = block(h, [])
        pending.add(c)
        store.write(c)
    assert pending.has_tx(arrived) and store.asked[-1] == arrived
    # An absence found before the oldest block kept is not trusted: the store is asked again.
    assert not pending.has_tx(stale) and store.asked[-1] == stale
