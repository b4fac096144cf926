"""LevelDB backend: the replicas of a consortium get memtables of different sizes, so that (writing
the same blocks at the same rate) they do not flush, and stall their synced writes, in step."""

from __future__ import annotations

import time

import pytest

from chainvoice.store.leveldb import LevelDBKeyValue

MB = 1 << 20


def flush_points(size: int, written: int) -> list[int]:
    """Bytes written when a memtable of ``size`` fills, up to ``written``."""
    return list(range(size, written + 1, size))


@pytest.mark.parametrize("count", [1, 4, 5, 7, 16])
def test_every_replica_gets_its_own_size_within_bounds(count):
    sizes = [LevelDBKeyValue.staggered_write_buffer(rank, count) for rank in range(count)]
    assert len(set(sizes)) == count
    assert all(LevelDBKeyValue.STAGGER_LOW <= s < LevelDBKeyValue.STAGGER_HIGH for s in sizes)


def test_four_replicas_never_flush_together_in_the_first_gigabyte():
    # The standard local network: over 1 GB written by each replica (about 10 minutes at 1,000
    # tx/s), no two replicas' flushes come within 1 MB of writes of each other.
    written = 1024 * MB
    events = sorted((point, rank) for rank in range(4)
                    for point in flush_points(LevelDBKeyValue.staggered_write_buffer(rank, 4), written))
    closest = min(b[0] - a[0] for a, b in zip(events, events[1:]) if a[1] != b[1])
    assert closest >= 1 * MB


def test_a_rank_outside_the_consortium_is_refused():
    with pytest.raises(ValueError):
        LevelDBKeyValue.staggered_write_buffer(4, 4)
    with pytest.raises(ValueError):
        LevelDBKeyValue.staggered_write_buffer(-1, 4)


def test_the_store_opens_with_the_size_it_was_given(tmp_path):
    kv = LevelDBKeyValue(tmp_path / "db", write_buffer_bytes=LevelDBKeyValue.staggered_write_buffer(2, 4))
    try:
        assert kv.write_buffer_bytes == LevelDBKeyValue.staggered_write_buffer(2, 4)
        kv.write({b"k": b"v"})
        assert kv.get(b"k") == b"v"
    finally:
        kv.close()


def test_a_node_store_keeps_blocks_indexes_and_safety_state_apart_and_refuses_the_one_database_layout(tmp_path):
    from chainvoice.store.leveldb import INDEX_MAX_MEMTABLE_AGE, StoreOpenError, open_node_store

    dbs = open_node_store(tmp_path / "data", 1, 4)
    try:
        assert dbs.blocks.write_buffer_bytes == LevelDBKeyValue.staggered_write_buffer(1, 4)
        # Only the index is flushed by age as well as by size.
        assert dbs.index.max_memtable_age == INDEX_MAX_MEMTABLE_AGE
        assert dbs.blocks.max_memtable_age is None and dbs.safety.max_memtable_age is None
        assert dbs.safety.write_buffer_bytes < dbs.index.write_buffer_bytes < dbs.blocks.write_buffer_bytes
        dbs.blocks.write({b"z1": b"block"})
        dbs.safety.write({b"msafety": b"votes"})
        assert dbs.index.get(b"z1") is None and dbs.blocks.get(b"z1") == b"block"
        assert dbs.index.get(b"msafety") is None and dbs.blocks.get(b"msafety") is None
        assert len({db.writer_thread_id for db in dbs}) == 3
    finally:
        dbs.close()
    reopened = open_node_store(tmp_path / "data", 1, 4)  # what was written is there after a reopen
    try:
        assert reopened.blocks.get(b"z1") == b"block" and reopened.safety.get(b"msafety") == b"votes"
    finally:
        reopened.close()
    old = LevelDBKeyValue(tmp_path / "old")
    old.close()
    with pytest.raises(StoreOpenError, match="older layout"):
        open_node_store(tmp_path / "old", 0, 4)


def _tables(path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.suffix == ".ldb")


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_memtable_older_than_its_age_limit_is_written_to_a_table_long_before_it_fills(tmp_path):
    aged = LevelDBKeyValue(tmp_path / "aged", write_buffer_bytes=64 * MB, max_memtable_age=0.2)
    plain = LevelDBKeyValue(tmp_path / "plain", write_buffer_bytes=64 * MB)
    try:
        first_log = aged.memtable_log()
        for kv in (aged, plain):
            kv.write({b"s%05d" % i: b"value" for i in range(1000)})
        assert _wait_for(lambda: _tables(tmp_path / "aged")), "the aged memtable was never flushed"
        assert aged.memtable_log() > first_log
        assert aged.get(b"s00999") == b"value"
        time.sleep(0.5)
        assert _tables(tmp_path / "plain") == []  # without an age limit 64 MB would have to fill first
        # An empty memtable is not flushed again: no new table while nothing is written.
        assert _wait_for(lambda: len(_tables(tmp_path / "aged")) == 1)
        tables, log = _tables(tmp_path / "aged"), aged.memtable_log()
        time.sleep(0.8)
        assert _tables(tmp_path / "aged") == tables and aged.memtable_log() == log
    finally:
        aged.close()
        plain.close()
    reopened = LevelDBKeyValue(tmp_path / "aged")
    try:
        assert reopened.get(b"s00000") == b"value"
    finally:
        reopened.close()

