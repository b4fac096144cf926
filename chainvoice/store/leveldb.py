"""LevelDB (plyvel) backend: atomic, synced write batches."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, NamedTuple

import plyvel


class StoreOpenError(RuntimeError):
    """The database cannot be opened (locked by another process, or corrupt)."""


class LevelDBKeyValue:
    # LevelDB's block cache; state-tree nodes are read randomly, so a larger cache pays off.
    CACHE_BYTES = 64 * 1024 * 1024
    # Most lookups of transaction ids miss (a new transaction is not yet committed); a bloom
    # filter answers those without reading a table block.
    BLOOM_BITS = 10
    # The memtable. State-tree nodes and values have random keys, so every level-0 table overlaps
    # every table below it and LevelDB's compaction rewrites them level after level; its thread
    # was the largest growing cost of a node (an in-process 100-block run at 2,000 transactions a
    # block, an early form of scripts/bench_store.py that also signed in the timed loop: 16 MB -> 2,815 MB compacted, 29.4 CPU s; 64 MB -> 1,416 MB,
    # 26.7 s; 128 MB -> 785 MB, 26.1 s but more memory and slower inserts on the main thread).
    WRITE_BUFFER_BYTES = 64 * 1024 * 1024
    # Replicas execute identical blocks, so with equal memtables they all flush at the same moment
    # and their synced writes stall together (measured: all four nodes of a local network, 30-120 ms
    # per synced write for about a second at each flush, at 1,000 tx/s); a quorum then waits for
    # the slowest. ``staggered_write_buffer`` gives the replicas of a consortium memtables spread
    # geometrically over [STAGGER_LOW, STAGGER_HIGH) (evenly spaced sizes such as 48 and 64 MB
    # meet every 192 MB), so flushes fall at different moments and the others carry on meanwhile.
    STAGGER_LOW = 48 * 1024 * 1024
    STAGGER_HIGH = 80 * 1024 * 1024
    # Most bytes written are state-tree nodes and hashes: random, incompressible. Snappy would
    # only burn CPU on every flush and compaction (measured: the compactions of a node under
    # 1,000 tx/s rewrite tens of MB per second), so tables are stored uncompressed.
    COMPRESSION = None

    @classmethod
    def staggered_write_buffer(cls, rank: int, count: int) -> int:
        """The memtable size of the ``rank``-th of ``count`` replicas (0 <= rank < count), so that
        no two replicas of a consortium flush in step."""
        if not 0 <= rank < count:
            raise ValueError(f"rank {rank} is not one of {count} replicas")
        return int(cls.STAGGER_LOW * (cls.STAGGER_HIGH / cls.STAGGER_LOW) ** (rank / count))

    def __init__(self, path: str | Path, *, write_buffer_bytes: int | None = None, cache_bytes: int | None = None,
                 max_memtable_age: float | None = None) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_buffer_bytes = self.WRITE_BUFFER_BYTES if write_buffer_bytes is None else write_buffer_bytes
        try:
            self._db = plyvel.DB(str(path), create_if_missing=True,
                                 lru_cache_size=self.CACHE_BYTES if cache_bytes is None else cache_bytes,
                                 bloom_filter_bits=self.BLOOM_BITS, write_buffer_size=self.write_buffer_bytes,
                                 compression=self.COMPRESSION, paranoid_checks=True)
        except plyvel.IOError as exc:
            raise StoreOpenError(f"cannot open the store at {path}: {exc} (is another node using it?)") from None
        except plyvel.CorruptionError as exc:
            raise StoreOpenError(f"the store at {path} is corrupt: {exc}") from None
        # Writes run on a thread of their own; the caller waits for each (same semantics as a
        # direct call). LevelDB fills its memtable in the writing thread, so its 4 KB blocks then
        # come from that thread's malloc arena instead of the main heap, where they lay between
        # the node's long-lived objects (read caches, mempool) and the memory of every flushed
        # memtable stayed with the process. ``writer_thread_id`` is that thread (it must keep
        # normal CPU priority: the event loop waits on it).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leveldb-write")
        self.writer_thread_id: int = self._writer.submit(threading.get_native_id).result()
        self.writes = 0  # batches written since opening
        self._closing = threading.Event()
        self._ager: threading.Thread | None = None
        self.max_memtable_age = max_memtable_age
        if max_memtable_age is not None:
            self._ager = threading.Thread(target=self._flush_by_age, args=(max_memtable_age,),
                                          name="leveldb-memtable-age", daemon=True)
            self._ager.start()

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._db.iterator(prefix=prefix)

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes] = (), *, sync: bool = True) -> None:  # type: ignore[assignment]
        self._writer.submit(self._write, puts, deletes, sync).result()

    def _write(self, puts: dict[bytes, bytes], deletes: list[bytes], sync: bool) -> None:
        # transaction=True: plyvel discards the batch if anything raises before it is written.
        with self._db.write_batch(transaction=True, sync=sync) as batch:
            for k in deletes:
                batch.delete(k)
            for k, v in puts.items():
                batch.put(k, v)
        self.writes += 1

    # A key after every key the chain store writes (its keys start with a lower-case letter), so
    # that no table holds it: compacting the range it spans does nothing but flush the memtable.
    _NO_TABLE_KEY = b"\xff\xff\xff\xff"

    def flush_memtable(self) -> None:
        """Write the memtable out as a table now (LevelDB's CompactRange over a range that no
        table overlaps only flushes it). Runs on the calling thread, not the writer: LevelDB swaps
        in an empty memtable and the writer carries on while the old one is written."""
        self._db.compact_range(start=self._NO_TABLE_KEY, stop=self._NO_TABLE_KEY)

    def memtable_log(self) -> int:
        """The number of the log file behind the current memtable: LevelDB starts a new one each
        time it swaps the memtable, whether because it filled or because it was flushed."""
        numbers = [int(name[:-4]) for name in os.listdir(self.path) if name.endswith(".log") and name[:-4].isdigit()]
        return max(numbers, default=0)

    def _flush_by_age(self, max_age: float) -> None:
        # LevelDB flushes a memtable only when it is full. At a low write rate a large one takes
        # minutes to fill, and the memory it reaches at its first flush stays with the process
        # (see INDEX_MAX_MEMTABLE_AGE): flushing it once it is ``max_age`` old bounds that time.
        # If the directory or the database fails it, it stops: LevelDB still flushes by size,
        # and the writer reports the failure where it matters.
        try:
            log, born, writes = self.memtable_log(), time.monotonic(), self.writes
            while not self._closing.wait(min(1.0, max_age / 4)):
                now, current = time.monotonic(), self.memtable_log()
                if current != log:  # it filled and was swapped by LevelDB itself
                    log, born, writes = current, now, self.writes
                elif now - born >= max_age:
                    if self.writes != writes:  # an empty memtable is left alone
                        self.flush_memtable()
                    log, born, writes = self.memtable_log(), time.monotonic(), self.writes
        except (OSError, plyvel.Error, RuntimeError):
            return

    def close(self) -> None:
        self._closing.set()
        if self._ager is not None:
            self._ager.join()
        self._writer.shutdown(wait=True)
        if not self._db.closed:
            self._db.close()


# A node's data directory: the chain store's indexes, its blocks and the replica's safety state
# (``ChainStore(index, blocks, safety)``) in three databases. Indexes and blocks apart, so that
# the indexes' random keys are never merged with the blocks' appended ones: the blocks' tables
# then move down LevelDB's levels without a single rewrite. In process
# (scripts/bench_store.py --blocks 1000, 1,000,000 invoices), one database: 15,044 MB of
# compaction output, 271.1 CPU s; two: 3,882 MB (all of it the index's), 204.7 CPU s. The index's
# memtable: random keys are rewritten at every level, the more often the smaller the memtable
# (an eighth of the blocks': 12,010 MB, half: 3,882 MB, in that run; in the network with 1,000,000
# invoices preloaded, half: 290-299 B per transaction per node of index compaction, a sixth:
# 527-667 B). But a memtable that takes minutes to fill shows as memory growth: its memory stays
# with the process after its first flush. Without the safety state's versions (below), half took
# 2.5-4 minutes to fill at 1,000 tx/s, and own memory (RssAnon) grew +10.9-14.4 % from the first
# minute to the tenth (scripts/bench.py --rate 1000 --duration 600, 2026-12-07), flat from ~160 s
# on. So the index keeps half, and is also flushed once its memtable is INDEX_MAX_MEMTABLE_AGE
# old: at 1,000 tx/s that is ~5 MB (four nodes flushed 267 MB in 600 s), less than a sixth held,
# and at ~4,000 tx/s ~16 MB (87 MB a minute), so in a closed loop the age comes first too.
#
# The replica's safety state has a third database: it is one key, rewritten (synced) before every
# vote, twice a block, and it carries the block the replica last sent a COMMIT for, so each write
# is about a block's size (116 KB at ~755 transactions a block: 27.8 MB in 240 writes against
# 12.8 MB of index entries in 120 blocks, counted in a 20-s closed loop on 2026-12-07). In the
# index those versions filled two thirds of the memtable: it flushed three times as often, and
# each flush brought a third of the entries to merge into level 1, so level 1 stayed thin and each
# of its tables met many level-2 tables. In a database of its own the versions only cost a small
# memtable's flushes, whose compactions keep one key.
INDEX_DIR, BLOCKS_DIR, SAFETY_DIR = "index", "blocks", "safety"
INDEX_SHARE = 2
INDEX_MAX_MEMTABLE_AGE = 45.0  # seconds
INDEX_CACHE_BYTES = 16 * 1024 * 1024
SAFETY_WRITE_BUFFER_BYTES = 4 * 1024 * 1024
SAFETY_CACHE_BYTES = 1024 * 1024


class NodeDatabases(NamedTuple):
    """A node's databases, as ``ChainStore(index, blocks, safety)`` takes them."""

    index: LevelDBKeyValue
    blocks: LevelDBKeyValue
    safety: LevelDBKeyValue

    def close(self) -> None:
        for db in self:
            db.close()


def open_node_store(data_dir: str | Path, rank: int, count: int, *,
                    write_buffer_bytes: int | None = None) -> NodeDatabases:
    """The (index, blocks, safety) databases of the ``rank``-th of ``count`` replicas, in
    ``data_dir`` (``write_buffer_bytes``, if given, replaces the staggered size of the blocks'
    memtable)."""
    data = Path(data_dir)
    if (data / "CURRENT").exists():
        raise StoreOpenError(f"{data} holds a store in an older layout (one database): "
                             "move it aside and let the node catch up from its peers")
    buffer = write_buffer_bytes or LevelDBKeyValue.staggered_write_buffer(rank, count)
    opened: list[LevelDBKeyValue] = []
    try:
        opened.append(LevelDBKeyValue(data / INDEX_DIR, write_buffer_bytes=buffer // INDEX_SHARE,
                                      cache_bytes=INDEX_CACHE_BYTES, max_memtable_age=INDEX_MAX_MEMTABLE_AGE))
        opened.append(LevelDBKeyValue(data / BLOCKS_DIR, write_buffer_bytes=buffer))
        opened.append(LevelDBKeyValue(data / SAFETY_DIR, write_buffer_bytes=SAFETY_WRITE_BUFFER_BYTES,
                                      cache_bytes=SAFETY_CACHE_BYTES))
    except StoreOpenError:
        for db in opened:
            db.close()
        raise
    return NodeDatabases(*opened)
