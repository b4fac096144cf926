"""The key-value interface the chain store needs, and an in-memory backend."""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterator, Protocol


class KeyValue(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key order."""
        ...

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes] = ..., *, sync: bool = True) -> None:
        """Apply all puts and deletes atomically (all or nothing), durably when ``sync``."""
        ...

    def close(self) -> None: ...


class MemoryKeyValue:
    """A dict with ordered prefix scans (sorted lazily). For tests and the simulator."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] | None = []

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        i = bisect_left(keys, prefix)
        out = []
        while i < len(keys) and keys[i].startswith(prefix):
            out.append((keys[i], self._data[keys[i]]))
            i += 1
        return iter(out)

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes] = (), *, sync: bool = True) -> None:  # type: ignore[assignment]
        for k in deletes:
            self._data.pop(k, None)
        self._data.update(puts)
        self._sorted = None

    def close(self) -> None:
        pass
