"""LevelDB (plyvel) backend: atomic, synced write batches."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import plyvel


class StoreOpenError(RuntimeError):
    """The database cannot be opened (locked by another process, or corrupt)."""


class LevelDBKeyValue:
    # LevelDB's block cache; state-tree nodes are read randomly, so a larger cache pays off.
    CACHE_BYTES = 64 * 1024 * 1024
    # Most lookups of transaction ids miss (a new transaction is not yet committed); a bloom
    # filter answers those without reading a table block.
    BLOOM_BITS = 10
    # A bigger memtable means fewer, larger table files while blocks stream in.
    WRITE_BUFFER_BYTES = 16 * 1024 * 1024
    # Most bytes written are state-tree nodes and hashes: random, incompressible. Snappy would
    # only burn CPU on every flush and compaction (measured: the compactions of a node under
    # 1,000 tx/s rewrite tens of MB per second), so tables are stored uncompressed.
    COMPRESSION = None

    def __init__(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            self._db = plyvel.DB(str(path), create_if_missing=True, lru_cache_size=self.CACHE_BYTES,
                                 bloom_filter_bits=self.BLOOM_BITS, write_buffer_size=self.WRITE_BUFFER_BYTES,
                                 compression=self.COMPRESSION, paranoid_checks=True)
        except plyvel.IOError as exc:
            raise StoreOpenError(f"cannot open the store at {path}: {exc} (is another node using it?)") from None
        except plyvel.CorruptionError as exc:
            raise StoreOpenError(f"the store at {path} is corrupt: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._db.iterator(prefix=prefix)

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes] = (), *, sync: bool = True) -> None:  # type: ignore[assignment]
        # transaction=True: plyvel discards the batch if anything raises before it is written.
        with self._db.write_batch(transaction=True, sync=sync) as batch:
            for k in deletes:
                batch.delete(k)
            for k, v in puts.items():
                batch.put(k, v)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
