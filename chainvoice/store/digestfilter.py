"""A Bloom filter of SHA-256 digests the store holds: "certainly not there" without a store read.

The store keeps two: committed transaction ids and written state keys. Both are asked mostly
about digests that are not there: every transaction a node admits is new (its replay check,
``has_tx``), and every invoice it issues is a state key never written (the ledger reads it to
see that the number is free). A miss in LevelDB searches the memtable and every level's table (a
bloom check each) before it can say no: 1.9 us on a node's reopened index, 2 % of a node's
samples under load (py-spy). Worse, LevelDB charges a read that searched more than one table to
the first one, and compacts a table after ~1 charge per 16 KB of it ("seek compaction"): misses
under new invoices' state keys pushed every freshly flushed table of the index down a level
within a block or two, so no level filled before it was merged into the next, and each table
merged into the next level with several times its bytes there (in process, scripts/bench_store.py
--blocks 600: the index's compaction output 758 MB without the state-key filter, 324 MB with it;
2026-12-07). This filter answers most misses in memory; a "maybe" (a digest
that is there, or a false positive) goes on to the store, so answers are exact.

SHA-256 outputs are uniformly distributed, so the filter uses the digest's own bits instead of
hashing again: a blocked Bloom filter, one 64-bit word per digest chosen by its low bits, four
bits in that word set by four 6-bit fields of bits 40..63. Filled to capacity (``BITS_PER_DIGEST``
bits per digest) it says "maybe" to 0.53 % of new digests (measured over 200,000 random ones).
When a layer holds its capacity a new one twice as large is added (older ones stay, so nothing
is forgotten); a check asks each layer. (A digest chosen to collide only costs a store read.)

Memory: ``BITS_PER_DIGEST`` bits per digest (1,000,000 -> 2 MB). The store rebuilds its filters at
open from its ``t`` and ``s`` indexes (one key scan each, ~1 s per million keys).
"""

from __future__ import annotations

from array import array
from typing import Iterable

BITS_PER_DIGEST = 16
MIN_CAPACITY = 1 << 20
_DIGEST_BYTES = 32


class _Layer:
    __slots__ = ("words", "mask", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        words = 1
        while words * 64 < capacity * BITS_PER_DIGEST:
            words *= 2
        self.words = array("Q", bytes(8 * words))
        self.mask = words - 1  # the word index takes at most 40 low bits (2**40 words)
        self.capacity = capacity
        self.count = 0


def _word_and_bits(digest: bytes) -> tuple[int, int]:
    """The digest as an int (its low bits choose the word) and the digest's four bits in that word."""
    x = int.from_bytes(digest[:8], "little")
    return x, (1 << (x >> 40 & 63)) | (1 << (x >> 46 & 63)) | (1 << (x >> 52 & 63)) | (1 << (x >> 58))


class DigestFilter:
    """A set of digests, approximately: ``digest in f`` is never False for an added digest."""

    __slots__ = ("_layers", "_last")

    def __init__(self, capacity: int = MIN_CAPACITY) -> None:
        """An empty filter whose first layer holds ``capacity`` digests at the designed error rate."""
        if capacity < 1:
            raise ValueError("a filter's capacity is at least one digest")
        self._layers = [_Layer(capacity)]
        self._last = self._layers[0]

    @classmethod
    def of(cls, digests: Iterable[bytes], expected: int = 0) -> DigestFilter:
        """A filter holding ``digests``, sized for twice ``expected`` (room to grow), and for no
        fewer than MIN_CAPACITY digests."""
        f = cls(max(2 * expected, MIN_CAPACITY))
        f.add_many(digests)
        return f

    def add_many(self, digests: Iterable[bytes]) -> None:
        layer = self._last
        words, mask = layer.words, layer.mask
        for digest in digests:
            if len(digest) != _DIGEST_BYTES:
                raise ValueError(f"a digest is {_DIGEST_BYTES} bytes, got {len(digest)}")
            if layer.count >= layer.capacity:
                layer = _Layer(2 * layer.capacity)
                self._layers.append(layer)
                self._last = layer
                words, mask = layer.words, layer.mask
            x, bits = _word_and_bits(digest)
            words[x & mask] |= bits
            layer.count += 1

    def __contains__(self, digest: bytes) -> bool:
        x, bits = _word_and_bits(digest)
        for layer in self._layers:
            if layer.words[x & layer.mask] & bits == bits:
                return True
        return False

    def __len__(self) -> int:
        return sum(layer.count for layer in self._layers)

    @property
    def layers(self) -> int:
        return len(self._layers)

    @property
    def bytes_used(self) -> int:
        return sum(8 * len(layer.words) for layer in self._layers)
